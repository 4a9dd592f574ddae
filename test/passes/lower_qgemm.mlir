// RUN: qc opt %s -split-input-file -p 'qc-lower-qgemm{mr=2 nr=8 vector-bits=256 kc=256}' | FileCheck %s

// A run-time int8 A times a constant int8 B (a MatMul's weights): B is
// packed at compile time into panels [N/NR][K/2][NR] of i16 pairs, the even
// k in the low half: B[0, j] = j, B[1, j] = 1 gives 65536 + j; the odd K's
// last row B[2, j] = -1 pairs with 0 and gives 65535.
// CHECK:       memref.global "private" constant @b_qcols8s : memref<1x2x8xi32> = dense<{{\[\[\[}}65536, 65537, 65538, 65539, 65540, 65541, 65542, 65543], [65535, 65535, 65535, 65535, 65535, 65535, 65535, 65535]]]>
// CHECK-LABEL: func.func @packed_b
// CHECK-SAME:    (%[[A:.+]]: memref<3x3xi8>, %[[C:.+]]: memref<3x8xi32>)
// CHECK:         %[[BP:.+]] = memref.get_global @b_qcols8s : memref<1x2x8xi32>
// CHECK:         %[[AC:.+]] = memref.cast %[[A]] : memref<3x3xi8> to memref<3x3xi8, strided<[3, 1], offset: ?>>
// CHECK:         %[[CC:.+]] = memref.cast %[[C]] : memref<3x8xi32> to memref<3x8xi32, strided<[8, 1], offset: ?>>
// CHECK:         call @qc_qgemm_3x8x3_p2x8_ss_a3s(%[[AC]], %[[BP]], %[[CC]])
// CHECK-NOT:     linalg.matmul
// The range function: the runtime's threads call it on their column panels.
// Per k pair it loads a panel vector of B, broadcasts a pair of A per row
// and sums sext(a) * sext(b) over the even and odd i16 lanes (vpmaddwd on
// x86) into 2 rows x 1 vector of i32 accumulators.
// CHECK-LABEL: func.func @qc_par_qgemm_3x8x3_p2x8_ss_range
// CHECK-SAME:    (%{{.+}}: memref<2x2x2xi32>, %{{.+}}: memref<1x2x8xi32>, %{{.+}}: memref<3x8xi32, strided<[8, 1], offset: ?>>, %{{.+}}: index, %{{.+}}: index)
// CHECK:         scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args({{.+}}) -> (vector<8xi32>, vector<8xi32>)
// CHECK:           %[[BV:.+]] = vector.load %{{.+}} : memref<1x2x8xi32>, vector<8xi32>
// CHECK:           %[[BH:.+]] = vector.bitcast %[[BV]] : vector<8xi32> to vector<16xi16>
// CHECK:           %[[BW:.+]] = arith.extsi %[[BH]] : vector<16xi16> to vector<16xi32>
// CHECK:           %[[AV:.+]] = memref.load %{{.+}} : memref<2x2x2xi32>
// CHECK:           %[[AB:.+]] = vector.broadcast %[[AV]] : i32 to vector<8xi32>
// CHECK:           %[[AH:.+]] = vector.bitcast %[[AB]] : vector<8xi32> to vector<16xi16>
// CHECK:           %[[AW:.+]] = arith.extsi %[[AH]] : vector<16xi16> to vector<16xi32>
// CHECK:           %[[P:.+]] = arith.muli %[[AW]], %[[BW]] : vector<16xi32>
// CHECK:           %[[EV:.+]] = vector.shuffle %[[P]], %[[P]] [0, 2, 4, 6, 8, 10, 12, 14] : vector<16xi32>, vector<16xi32>
// CHECK:           %[[OD:.+]] = vector.shuffle %[[P]], %[[P]] [1, 3, 5, 7, 9, 11, 13, 15] : vector<16xi32>, vector<16xi32>
// CHECK:           %[[S:.+]] = arith.addi %[[EV]], %[[OD]] : vector<8xi32>
// CHECK:           arith.addi %{{.+}}, %[[S]] : vector<8xi32>
// The row tail (M = 3 = 2 + 1): one row, one accumulator.
// CHECK:         scf.for %{{.+}} -> (vector<8xi32>)
// The kernel's entry is the runtime's (declared), called by the kernel function.
// CHECK-LABEL: func.func private @qc_par_qgemm_3x8x3_p2x8_ss(memref<2x2x2xi32>, memref<1x2x8xi32>, memref<3x8xi32, strided<[8, 1], offset: ?>>) attributes {llvm.emit_c_interface}
// The run-time A is packed into row panels [M/MR][K/2][MR] of i16 pairs
// first: the low half is the even k, the high half the odd one (0 past K).
// CHECK-LABEL: func.func private @qc_qgemm_3x8x3_p2x8_ss_a3s
// CHECK:         %[[AP:.+]] = memref.alloc() {alignment = 64 : i64} : memref<2x2x2xi32>
// CHECK:           arith.extsi %{{.+}} : i8 to i32
// CHECK:           arith.andi %{{.+}}, %{{.+}} : i32
// CHECK:           arith.shli %{{.+}}, %{{.+}} : i32
// CHECK:           arith.ori
// CHECK:           memref.store %{{.+}}, %[[AP]]
// CHECK:         call @qc_par_qgemm_3x8x3_p2x8_ss(%[[AP]], %{{.+}}, %{{.+}})
memref.global "private" constant @b : memref<3x8xi8> = dense<[[0, 1, 2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 1, 1, 1, 1], [-1, -1, -1, -1, -1, -1, -1, -1]]>
func.func @packed_b(%a: memref<3x3xi8>, %c: memref<3x8xi32>) {
  %b = memref.get_global @b : memref<3x8xi8>
  linalg.matmul ins(%a, %b : memref<3x3xi8>, memref<3x8xi8>) outs(%c : memref<3x8xi32>)
  return
}

// -----

// uint8 x int8 with both operands at run time (the frontend's generic with
// extui / extsi): per cache block of k pairs, each panel of B is packed into
// the thread's scratch buffer: two rows of 8 bytes, sign-extended to i16 and
// interleaved into pairs. The module lists the kernel for the runtime glue,
// with its panel count and scratch shape (in 4-byte units).
// CHECK:       qc.parallel_kernels = [{name = "qc_par_qgemm_4x10x5_s2x8_us", operands = 3 : i64, panels = 2 : i64, scratch = array<i64: 3, 8>}]
// CHECK-LABEL: func.func @runtime_b
// CHECK:         call @qc_qgemm_4x10x5_s2x8_us_a5u(
// CHECK-NOT:     linalg.generic
// CHECK-LABEL: func.func @qc_par_qgemm_4x10x5_s2x8_us_range
// CHECK-SAME:    %[[S:[a-z0-9]+]]: memref<3x8xi32>
// CHECK:         scf.for
// CHECK:           %[[R0:.+]] = vector.load %{{.+}} : memref<5x10xi8, strided<[10, 1], offset: ?>>, vector<8xi8>
// An odd K: row 2p + 1 past K reads as zeros.
// CHECK:           %[[R1:.+]] = arith.select %{{.+}}, %{{.+}}, %{{.+}} : vector<8xi8>
// CHECK:           %[[W0:.+]] = arith.extsi %[[R0]] : vector<8xi8> to vector<8xi16>
// CHECK:           %[[W1:.+]] = arith.extsi %[[R1]] : vector<8xi8> to vector<8xi16>
// CHECK:           %[[Z:.+]] = vector.interleave %[[W0]], %[[W1]] : vector<8xi16> -> vector<16xi16>
// CHECK:           %[[ZI:.+]] = vector.bitcast %[[Z]] : vector<16xi16> to vector<8xi32>
// CHECK:           vector.store %[[ZI]], %[[S]][%{{.+}}, %{{.+}}] : memref<3x8xi32>, vector<8xi32>
// The kernel reads the panel from the scratch buffer.
// CHECK:           vector.load %[[S]][%{{.+}}, %{{.+}}] : memref<3x8xi32>, vector<8xi32>
// The last panel has 2 of 8 columns: C is loaded and stored with a mask, and
// B's rows with a mask too.
// CHECK:         scf.if
// CHECK:           vector.maskedload %{{.+}} : memref<5x10xi8, strided<[10, 1], offset: ?>>, vector<8xi1>, vector<8xi8> into vector<8xi8>
// CHECK:           vector.maskedstore %{{.+}} : memref<4x10xi32, strided<[10, 1], offset: ?>>, vector<8xi1>, vector<8xi32>
// The A packing zero-extends uint8.
// CHECK-LABEL: func.func private @qc_qgemm_4x10x5_s2x8_us_a5u
// CHECK:         arith.extui %{{.+}} : i8 to i32
#mk = affine_map<(d0, d1, d2) -> (d0, d2)>
#kn = affine_map<(d0, d1, d2) -> (d2, d1)>
#mn = affine_map<(d0, d1, d2) -> (d0, d1)>
func.func @runtime_b(%a: memref<4x5xi8>, %b: memref<5x10xi8>, %c: memref<4x10xi32>) {
  linalg.generic {indexing_maps = [#mk, #kn, #mn], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<4x5xi8>, memref<5x10xi8>) outs(%c : memref<4x10xi32>) {
  ^bb0(%x: i8, %y: i8, %acc: i32):
    %0 = arith.extui %x : i8 to i32
    %1 = arith.extsi %y : i8 to i32
    %2 = arith.muli %0, %1 : i32
    %3 = arith.addi %acc, %2 : i32
    linalg.yield %3 : i32
  }
  return
}

// -----

// A 3x3 convolution after qc-qconv-to-gemm and bufferization: constant
// weights (A, packed into row panels at compile time) times the im2col
// matrix of a padded 2 x 7 x 20 image. The kernel gathers B's panels from
// the image, so the im2col copy and its buffer are gone. Each im2col row
// (c, kh, kw) starts at c*140 + kh*20 + kw in the image (a table of K = 18
// entries, one per row of the 9 pairs). Output rows of 18 >= 8 columns: a
// panel inside one output row is one plain load per im2col row; a panel
// across two is two loads merged by a byte mask made once per panel. Loads
// that would leave the image become a gather.
// CHECK:       memref.global "private" constant @w_qrows2s : memref<1x9x2xi32>
// CHECK-LABEL: func.func @implicit_im2col
// CHECK-NOT:     qc.im2col
// CHECK-NOT:     memref.alloc() {{.*}} : memref<1x2x3x3x5x18xi8>
// The loop over the one image folds away; the kernel takes the image flat.
// CHECK:         call @qc_qgemm_2x90x18_i2x8_ss_i2x7x20_k3x3_s1x1_d1x1(%{{.+}}, %{{.+}}, %{{.+}}) : (memref<1x9x2xi32>, memref<280xi8, strided<[1], offset: ?>>, memref<2x90xi32, strided<[90, 1], offset: ?>>) -> ()
// CHECK:       memref.global "private" constant @qc_qgemm_2x90x18_i2x8_ss_i2x7x20_k3x3_s1x1_d1x1_rows : memref<18xi32> = dense<[0, 1, 2, 20, 21, 22, 40, 41, 42, 140, 141, 142, 160, 161, 162, 180, 181, 182]>
// CHECK-LABEL: func.func @qc_par_qgemm_2x90x18_i2x8_ss_i2x7x20_k3x3_s1x1_d1x1_range
// CHECK:         %[[ONE:.+]] = arith.cmpi uge, %{{.+}}, %{{.+}} : index
// CHECK:         %[[MA:.+]] = vector.create_mask %{{.+}} : vector<8xi1>
// CHECK:         %[[MA8:.+]] = arith.extsi %[[MA]] : vector<8xi1> to vector<8xi8>
// CHECK:         %[[MB8:.+]] = arith.xori %[[MA8]], %{{.+}} : vector<8xi8>
// CHECK:         scf.if %[[ONE]] {
// CHECK:           %[[T:.+]] = memref.load %{{.+}} : memref<18xi32>
// CHECK:           %[[FITS:.+]] = arith.cmpi sle
// CHECK:           scf.if %[[FITS]] -> (vector<8xi8>) {
// CHECK-NEXT:        arith.addi
// CHECK-NEXT:        %[[V:.+]] = vector.load %{{.+}} : memref<280xi8, strided<[1], offset: ?>>, vector<8xi8>
// CHECK-NEXT:        scf.yield %[[V]] : vector<8xi8>
// CHECK-NEXT:      } else {
// CHECK-NEXT:        vector.gather
// CHECK:           arith.extsi %{{.+}} : vector<8xi8> to vector<8xi16>
// CHECK:         } else {
// CHECK:           scf.if %{{.+}} -> (vector<8xi8>) {
// CHECK:             %[[VA:.+]] = vector.load %{{.+}} : memref<280xi8, strided<[1], offset: ?>>, vector<8xi8>
// CHECK:             %[[VB:.+]] = vector.load %{{.+}} : memref<280xi8, strided<[1], offset: ?>>, vector<8xi8>
// CHECK:             %[[X:.+]] = arith.andi %[[VA]], %[[MA8]] : vector<8xi8>
// CHECK:             %[[Y:.+]] = arith.andi %[[VB]], %[[MB8]] : vector<8xi8>
// CHECK:             arith.ori %[[X]], %[[Y]] : vector<8xi8>
// CHECK:           } else {
// CHECK:             vector.gather
#im = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2 + d4, d3 + d5)>
#id6 = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d2, d3, d4, d5)>
#fk = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#nkp = affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>
#nfp = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
memref.global "private" constant @w : memref<2x18xi8> = dense<1>
func.func @implicit_im2col(%x: memref<1x2x7x20xi8>, %y: memref<1x2x90xi32>) {
  %w = memref.get_global @w : memref<2x18xi8>
  %col = memref.alloc() {alignment = 64 : i64} : memref<1x2x3x3x5x18xi8>
  linalg.generic {indexing_maps = [#im, #id6], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x2x7x20xi8>) outs(%col : memref<1x2x3x3x5x18xi8>) attrs = {qc.im2col = array<i64: 3, 3, 1, 1, 1, 1>} {
  ^bb0(%in: i8, %out: i8):
    linalg.yield %in : i8
  }
  %b = memref.collapse_shape %col [[0], [1, 2, 3], [4, 5]] : memref<1x2x3x3x5x18xi8> into memref<1x18x90xi8>
  linalg.generic {indexing_maps = [#fk, #nkp, #nfp], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%w, %b : memref<2x18xi8>, memref<1x18x90xi8>) outs(%y : memref<1x2x90xi32>) {
  ^bb0(%p: i8, %q: i8, %acc: i32):
    %0 = arith.extsi %p : i8 to i32
    %1 = arith.extsi %q : i8 to i32
    %2 = arith.muli %0, %1 : i32
    %3 = arith.addi %acc, %2 : i32
    linalg.yield %3 : i32
  }
  return
}

// -----

// Not 8-bit operands into i32: left to the loop lowering.
// CHECK-LABEL: func.func @not_int8
// CHECK:         linalg.matmul
// CHECK-NOT:     call @qc_qgemm
func.func @not_int8(%a: memref<4x4xi32>, %b: memref<4x4xi32>, %c: memref<4x4xi32>) {
  linalg.matmul ins(%a, %b : memref<4x4xi32>, memref<4x4xi32>) outs(%c : memref<4x4xi32>)
  return
}

// -----

// C filled with zeros right before the product (the frontend's init), and
// nothing reads it in between: the kernel writes C (A · B) instead of adding
// to it, and the fill is gone. K = 600 is 300 pairs, two cache blocks of 150:
// the first starts its accumulators at zero, the second loads C.
// CHECK-LABEL: func.func @zero_init
// CHECK-NOT:     linalg.fill
// CHECK:         call @qc_qgemm_2x8x600_s2x8_ss_z_a600s
// CHECK-LABEL: func.func @qc_par_qgemm_2x8x600_s2x8_ss_z_range
// CHECK:         %[[FIRST:.+]] = arith.cmpi eq, %{{.+}}, %{{.+}} : index
// CHECK:         scf.if %[[FIRST]] -> (vector<8xi32>, vector<8xi32>) {
// CHECK-NEXT:      scf.yield %{{.+}}, %{{.+}} : vector<8xi32>, vector<8xi32>
// CHECK-NEXT:    } else {
// CHECK-NEXT:      vector.load
// CHECK-NEXT:      vector.load
func.func @zero_init(%a: memref<2x600xi8>, %b: memref<600x8xi8>, %c: memref<2x8xi32>) {
  %zero = arith.constant 0 : i32
  linalg.fill ins(%zero : i32) outs(%c : memref<2x8xi32>)
  linalg.matmul ins(%a, %b : memref<2x600xi8>, memref<600x8xi8>) outs(%c : memref<2x8xi32>)
  return
}

// -----

// The zeros are read in between (a copy out of C): C keeps its fill and the
// kernel adds to it.
// CHECK-LABEL: func.func @zero_init_read
// CHECK:         linalg.fill
// CHECK:         linalg.copy
// CHECK:         call @qc_qgemm_2x8x4_s2x8_ss_a4s(
func.func @zero_init_read(%a: memref<2x4xi8>, %b: memref<4x8xi8>, %c: memref<2x8xi32>, %d: memref<2x8xi32>) {
  %zero = arith.constant 0 : i32
  linalg.fill ins(%zero : i32) outs(%c : memref<2x8xi32>)
  linalg.copy ins(%c : memref<2x8xi32>) outs(%d : memref<2x8xi32>)
  linalg.matmul ins(%a, %b : memref<2x4xi8>, memref<4x8xi8>) outs(%c : memref<2x8xi32>)
  return
}
