// RUN: qc opt %s -split-input-file -p 'qc-lower-qgemm{mr=2 nr=8 vector-bits=256 kc=256}' | FileCheck %s

// A GEMM of constant int8 weights and the requantization after it (the
// high word of acc * a per-row multiplier, plus a residual int8 input,
// clamped, narrowed): the kernel applies the generic's body to each
// register tile once its k loop is done and stores D; C is never stored
// and the generic is gone. The kernel takes D in C's place, then the
// per-row multiplier and the residual, both as the kernel reads them.
// CHECK-LABEL: func.func @requant
// CHECK-SAME:    (%[[B:.+]]: memref<4x12xi8>, %[[R:.+]]: memref<3x12xi8>, %[[D:.+]]: memref<3x12xi8>)
// CHECK-NOT:     memref.alloc
// CHECK:         %[[M:.+]] = memref.cast %{{.+}} : memref<3xi32> to memref<3xi32, strided<[1], offset: ?>>
// CHECK:         %[[RC:.+]] = memref.cast %[[R]] : memref<3x12xi8> to memref<3x12xi8, strided<[12, 1], offset: ?>>
// CHECK:         %[[DC:.+]] = memref.cast %[[D]] : memref<3x12xi8> to memref<3x12xi8, strided<[12, 1], offset: ?>>
// CHECK:         call @qc_qgemm_3x12x4_s2x8_ss_z_rq12_{{[0-9a-f]+}}(%{{.+}}, %{{.+}}, %[[DC]], %[[M]], %[[RC]])
// CHECK-NOT:     linalg.generic
// The k loop is not unrolled (LLVM would interleave its dot products with
// the requantization and spill). After it, per row of the tile: the row's
// multiplier broadcast, the residual's lanes loaded, the even and odd
// 32 x 32 -> 64-bit products merged into their high words, the residual
// added, the clamp, the narrowing, and one i8 vector stored into D.
// CHECK-LABEL: func.func @qc_par_qgemm_3x12x4_s2x8_ss_z_rq12_{{[0-9a-f]+}}_range
// CHECK-SAME:    %[[DA:[a-z0-9]+]]: memref<3x12xi8, strided<[12, 1], offset: ?>>, %[[MA:[a-z0-9]+]]: memref<3xi32, strided<[1], offset: ?>>, %[[RA:[a-z0-9]+]]: memref<3x12xi8, strided<[12, 1], offset: ?>>, %{{.+}}: index, %{{.+}}: index)
// CHECK:         %[[ACC:.+]]:2 = scf.for
// CHECK:         } {loop_annotation = #{{.+}}}
// CHECK-NEXT:    %[[MS:.+]] = memref.load %[[MA]][%c0]
// CHECK-NEXT:    %[[MB:.+]] = vector.broadcast %[[MS]] : i32 to vector<8xi32>
// CHECK-NEXT:    %[[RV:.+]] = vector.load %[[RA]][%c0, %[[J:.+]]] : memref<3x12xi8, strided<[12, 1], offset: ?>>, vector<8xi8>
// CHECK-NEXT:    vector.shuffle %[[ACC]]#0, %[[ACC]]#0 [1, 1, 3, 3, 5, 5, 7, 7]
// CHECK:         %[[HW:.+]] = vector.shuffle %{{.+}}, %{{.+}} [1, 9, 3, 11, 5, 13, 7, 15] : vector<8xi32>, vector<8xi32>
// CHECK-NEXT:    %[[RW:.+]] = arith.extsi %[[RV]] : vector<8xi8> to vector<8xi32>
// CHECK-NEXT:    %[[S:.+]] = arith.addi %[[HW]], %[[RW]] : vector<8xi32>
// CHECK-NEXT:    %[[LO:.+]] = arith.maxsi %[[S]]
// CHECK-NEXT:    %[[HI:.+]] = arith.minsi %[[LO]]
// CHECK-NEXT:    %[[Q:.+]] = arith.trunci %[[HI]] : vector<8xi32> to vector<8xi8>
// CHECK-NEXT:    vector.store %[[Q]], %[[DA]][%c0, %[[J]]] : memref<3x12xi8, strided<[12, 1], offset: ?>>, vector<8xi8>
// CHECK:         memref.load %[[MA]][%c1]
// CHECK:         vector.store %{{.+}}, %[[DA]][%c1, %[[J]]]
// CHECK:         memref.load %[[MA]][%c2]
// CHECK:         vector.store %{{.+}}, %[[DA]][%c2, %[[J]]]
// The last panel's 4 columns: the residual loaded and D stored under the tail mask.
// CHECK:         scf.if
// CHECK:         vector.maskedload %[[RA]][%c0, %c8], %[[TM:[^,]+]], %{{.+}} : memref<3x12xi8, strided<[12, 1], offset: ?>>, vector<8xi1>, vector<8xi8> into vector<8xi8>
// CHECK:         vector.maskedstore %[[DA]][%c0, %c8], %[[TM]], %{{.+}} : memref<3x12xi8, strided<[12, 1], offset: ?>>, vector<8xi1>, vector<8xi8>
// CHECK-NOT:     xi32, strided<[12, 1]

#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
memref.global "private" constant @w : memref<3x4xi8> = dense<[[1, 2, 3, 4], [-1, -2, -3, -4], [5, 6, 7, 8]]>
memref.global "private" constant @mult : memref<3xi32> = dense<[1073741824, 1500000000, 2000000000]>
func.func @requant(%b: memref<4x12xi8>, %r: memref<3x12xi8>, %d: memref<3x12xi8>) {
  %c0 = arith.constant 0 : i32
  %c32 = arith.constant 32 : i64
  %lo = arith.constant -128 : i32
  %hi = arith.constant 127 : i32
  %w = memref.get_global @w : memref<3x4xi8>
  %m = memref.get_global @mult : memref<3xi32>
  %c = memref.alloc() : memref<3x12xi32>
  linalg.fill ins(%c0 : i32) outs(%c : memref<3x12xi32>)
  linalg.matmul ins(%w, %b : memref<3x4xi8>, memref<4x12xi8>) outs(%c : memref<3x12xi32>)
  linalg.generic {indexing_maps = [#id, #row, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%c, %m, %r : memref<3x12xi32>, memref<3xi32>, memref<3x12xi8>) outs(%d : memref<3x12xi8>) {
  ^bb0(%acc: i32, %mu: i32, %res: i8, %out: i8):
    %a64 = arith.extsi %acc : i32 to i64
    %m64 = arith.extsi %mu : i32 to i64
    %p = arith.muli %a64, %m64 : i64
    %h = arith.shrsi %p, %c32 : i64
    %h32 = arith.trunci %h : i64 to i32
    %r32 = arith.extsi %res : i8 to i32
    %s = arith.addi %h32, %r32 : i32
    %x = arith.maxsi %s, %lo : i32
    %y = arith.minsi %x, %hi : i32
    %q = arith.trunci %y : i32 to i8
    linalg.yield %q : i8
  }
  return
}

// -----

// The requantization writes the interior of a padded image (the next
// convolution's input): D is the padded image's rows from the interior's
// first value, rows of 12 columns 14 apart. A vector from column 8 of a row
// holds 4 values of that row and 4 of the next: two masked stores, the
// second 2 columns further on (over the pad columns, which keep their value).
// CHECK-LABEL: func.func @pitched
// CHECK:         %[[SV:.+]] = memref.subview %{{.+}}[0, 0, 1, 1] [1, 2, 2, 12] [1, 1, 1, 1]
// CHECK:         memref.reinterpret_cast %[[SV]] to offset: [15], sizes: [1, 2, 26], strides: [112, 56, 1]
// CHECK:         call @qc_qgemm_2x24x3_s2x8_ss_s24_56_z_rq56_{{[0-9a-f]+}}(
// CHECK-NOT:     linalg.generic
// CHECK-LABEL: func.func @qc_par_qgemm_2x24x3_s2x8_ss_s24_56_z_rq56_{{[0-9a-f]+}}_range
// CHECK-SAME:    %[[DA:[a-z0-9]+]]: memref<2x26xi8, strided<[56, 1], offset: ?>>, %[[BA:[a-z0-9]+]]: memref<2xi32, strided<[1], offset: ?>>
// CHECK:         } {loop_annotation = #{{.+}}}
// CHECK-NEXT:    %[[Y:.+]] = arith.divui %[[J:.+]], %c12 : index
// CHECK-NEXT:    %[[X:.+]] = arith.remui %[[J]], %c12 : index
// CHECK-NEXT:    %[[YW:.+]] = arith.muli %[[Y]], %c14 : index
// CHECK-NEXT:    %[[P:.+]] = arith.addi %[[YW]], %[[X]] : index
// CHECK-NEXT:    %[[LEFT:.+]] = arith.subi %c12, %[[X]] : index
// CHECK-NEXT:    %[[CROSS:.+]] = arith.cmpi ult, %[[LEFT]], %c8 : index
// CHECK-NEXT:    %[[FIRST:.+]] = vector.create_mask %[[LEFT]] : vector<8xi1>
// CHECK-NEXT:    %[[REST:.+]] = arith.xori %[[FIRST]], %{{.+}} : vector<8xi1>
// CHECK-NEXT:    %[[P2:.+]] = arith.addi %[[P]], %c2 : index
// CHECK:         %[[Q:.+]] = arith.trunci %{{.+}} : vector<8xi32> to vector<8xi8>
// CHECK-NEXT:    scf.if %[[CROSS]] {
// CHECK-NEXT:      vector.maskedstore %[[DA]][%c0, %[[P]]], %[[FIRST]], %[[Q]]
// CHECK-NEXT:      vector.maskedstore %[[DA]][%c0, %[[P2]]], %[[REST]], %[[Q]]
// CHECK-NEXT:    } else {
// CHECK-NEXT:      vector.store %[[Q]], %[[DA]][%c0, %[[P]]]
// CHECK:         vector.maskedstore %[[DA]][%c1, %[[P]]], %[[FIRST]]

#a = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
#b = affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>
#c = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#ch = affine_map<(d0, d1, d2, d3) -> (d1)>
memref.global "private" constant @w : memref<2x3xi8> = dense<[[1, 2, 3], [-4, 5, -6]]>
memref.global "private" constant @bias : memref<2xi32> = dense<[7, -9]>
func.func @pitched(%x: memref<1x3x24xi8>, %p: memref<1x2x4x14xi8>) {
  %c0 = arith.constant 0 : i32
  %lo = arith.constant -128 : i32
  %hi = arith.constant 127 : i32
  %w = memref.get_global @w : memref<2x3xi8>
  %bias = memref.get_global @bias : memref<2xi32>
  %c = memref.alloc() : memref<1x2x2x12xi32>
  %cc = memref.collapse_shape %c [[0], [1], [2, 3]] : memref<1x2x2x12xi32> into memref<1x2x24xi32>
  linalg.fill ins(%c0 : i32) outs(%cc : memref<1x2x24xi32>)
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%w, %x : memref<2x3xi8>, memref<1x3x24xi8>) outs(%cc : memref<1x2x24xi32>) {
  ^bb0(%in: i8, %in_1: i8, %out: i32):
    %0 = arith.extsi %in : i8 to i32
    %1 = arith.extsi %in_1 : i8 to i32
    %2 = arith.muli %0, %1 : i32
    %3 = arith.addi %out, %2 : i32
    linalg.yield %3 : i32
  }
  %d = memref.subview %p[0, 0, 1, 1] [1, 2, 2, 12] [1, 1, 1, 1] : memref<1x2x4x14xi8> to memref<1x2x2x12xi8, strided<[112, 56, 14, 1], offset: 15>>
  linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c, %bias : memref<1x2x2x12xi32>, memref<2xi32>) outs(%d : memref<1x2x2x12xi8, strided<[112, 56, 14, 1], offset: 15>>) {
  ^bb0(%acc: i32, %bi: i32, %out: i8):
    %s = arith.addi %acc, %bi : i32
    %x1 = arith.maxsi %s, %lo : i32
    %y = arith.minsi %x1, %hi : i32
    %q = arith.trunci %y : i32 to i8
    linalg.yield %q : i8
  }
  return
}

// -----

// C is read again after the requantization: the kernel stores C, and the
// requantization stays a loop.
// CHECK-LABEL: func.func @c_read_later
// CHECK:         call @qc_qgemm_2x8x4_s2x8_ss_z(
// CHECK:         linalg.generic
// CHECK:         memref.copy

#id2 = affine_map<(d0, d1) -> (d0, d1)>
memref.global "private" constant @w : memref<2x4xi8> = dense<[[1, 2, 3, 4], [-1, -2, -3, -4]]>
func.func @c_read_later(%b: memref<4x8xi8>, %d: memref<2x8xi8>, %e: memref<2x8xi32>) {
  %c0 = arith.constant 0 : i32
  %w = memref.get_global @w : memref<2x4xi8>
  %c = memref.alloc() : memref<2x8xi32>
  linalg.fill ins(%c0 : i32) outs(%c : memref<2x8xi32>)
  linalg.matmul ins(%w, %b : memref<2x4xi8>, memref<4x8xi8>) outs(%c : memref<2x8xi32>)
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<2x8xi32>) outs(%d : memref<2x8xi8>) {
  ^bb0(%acc: i32, %out: i8):
    %q = arith.trunci %acc : i32 to i8
    linalg.yield %q : i8
  }
  memref.copy %c, %e : memref<2x8xi32> to memref<2x8xi32>
  return
}
