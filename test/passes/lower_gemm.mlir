// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=8 kc=8 mc=8 row-split-max-b=0}' | FileCheck %s
// (row-split-max-b=0: kernels split their column panels over the threads;
// lower_gemm_row_split.mlir has the split of the row tiles.)

// A constant B is packed at compile time into NR-wide panels (21 columns ->
// 3 panels of 8, zero-padded), and the matmul becomes a call to a GEMM
// function. It hands the 3 panels to the runtime (@qc_par_..., which splits
// them over threads), which calls the range function on panels [lo, hi):
// register-tiled loops, 4 rows x 1 vector of C held in iter_args across the
// k loop. The unpacked original is no longer used and is removed. The
// record's work (13 x 21 x 20 multiply-adds) lets the runtime keep a kernel
// this small on one thread. Four row tiles read each 8 x 8 chunk of a panel,
// so the k loop also prefetches (into L2) the same row of the next panel (the last
// panel's own: affine.min).
// CHECK:       module attributes {qc.parallel_kernels = [{name = "qc_sgemm_13x21x20_p4x8", operands = 3 : i64, panels = 3 : i64, work = 5460 : i64}]}
// CHECK:       memref.global "private" constant @w_packed8 : memref<3x20x8xf32> = dense<
// CHECK-NOT:   memref.global "private" constant @w :
// CHECK-LABEL: func.func @constant_b
// CHECK:         %[[BP:.+]] = memref.get_global @w_packed8 : memref<3x20x8xf32>
// CHECK:         call @[[K:qc_sgemm_13x21x20_p4x8]](%{{.+}}, %[[BP]], %{{.+}})
// CHECK-NOT:     linalg.matmul
// CHECK:       func.func @[[K]]_range(%{{.+}}: memref<13x20xf32, strided<[20, 1], offset: ?>>, %[[PB:.+]]: memref<3x20x8xf32>, %{{.+}}: memref<13x21xf32, strided<[21, 1], offset: ?>>, %[[LO:.+]]: index, %[[HI:.+]]: index) attributes {llvm.emit_c_interface}
// CHECK:         %[[HIFULL:.+]] = arith.minui %[[HI]], %c2 : index
// CHECK:         %[[JLO:.+]] = arith.muli %[[LO]], %c8 : index
// CHECK:         %[[JHI:.+]] = arith.muli %[[HIFULL]], %c8 : index
// CHECK:         %[[TAIL:.+]] = arith.cmpi ugt, %[[HI]], %c2 : index
// CHECK:         scf.for %[[KC:.+]] = %c0 to %c20 step %c8 {
// CHECK:         scf.for %[[J0:.+]] = %[[JLO]] to %[[JHI]] step %c8
// CHECK-NEXT:      %[[JP:.+]] = arith.divui %[[J0]], %c8 : index
// CHECK-NEXT:      %[[JNEXT:.+]] = affine.min #{{.+}}(%[[JP]])
// CHECK:         %{{.+}}:4 = scf.for %[[KK:.+]] = %[[KC]] to %{{.+}} step %c1 iter_args({{.+}}) -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// CHECK-NEXT:      vector.load %[[PB]][%[[JP]], %[[KK]], %c0] : memref<3x20x8xf32>, vector<8xf32>
// CHECK-NEXT:      memref.prefetch %[[PB]][%[[JNEXT]], %[[KK]], %c0], read, locality<2>, data : memref<3x20x8xf32>
// CHECK:           vector.broadcast %{{.+}} : f32 to vector<8xf32>
// CHECK:           vector.fma
// The 13 % 4 = 1 tail row runs on each panel right after the full row tiles
// of the last block of rows (the block ending at row 12), while the panel's
// chunk is still in L1, not in a second pass over all the panels.
// CHECK:           %[[LAST:.+]] = arith.cmpi eq, %{{.+}}, %c12 : index
// CHECK-NEXT:      scf.if %[[LAST]] {
// CHECK:             %{{.+}} = scf.for %{{.+}} = %[[KC]] to %{{.+}} step %c1 iter_args(%{{.+}}) -> (vector<8xf32>)
// CHECK-NEXT:          vector.load %[[PB]][%[[JP]],
// The 21 % 8 = 5 tail columns, only in the range that owns the last panel,
// are written through a mask.
// CHECK:         scf.if %[[TAIL]]
// CHECK:         vector.constant_mask [5] : vector<8xi1>
// CHECK:         vector.maskedstore
// CHECK:       func.func private @qc_par_sgemm_13x21x20_p4x8({{.+}}) attributes {llvm.emit_c_interface}
// CHECK:       func.func private @[[K]](
// CHECK-NEXT:    call @qc_par_sgemm_13x21x20_p4x8(
func.func @constant_b(%a: memref<13x20xf32>, %c: memref<13x21xf32>) {
  %b = memref.get_global @w : memref<20x21xf32>
  linalg.matmul ins(%a, %b : memref<13x20xf32>, memref<20x21xf32>) outs(%c : memref<13x21xf32>)
  return
}
memref.global "private" constant @w : memref<20x21xf32> = dense<1.0>

// -----

// Rows that fit one register tile (3 <= MR) read each panel of B once: K is
// one cache block (the k loop runs 0 to 20, not in blocks of kc=8), and
// nothing is prefetched.
// CHECK-LABEL: func.func @one_row_tile
// CHECK:         call @[[K:qc_sgemm_3x21x20_p4x8]]
// CHECK:       func.func @[[K]]_range(
// CHECK-NOT:     = %c0 to %c20 step %c8
// CHECK-NOT:     memref.prefetch
// CHECK:           scf.for %{{.+}} = %c0 to %c20 step %c1 iter_args
// CHECK-NOT:     memref.prefetch
// CHECK:       func.func private @qc_par_sgemm_3x21x20_p4x8(
func.func @one_row_tile(%a: memref<3x20xf32>, %c: memref<3x21xf32>) {
  %b = memref.get_global @w : memref<20x21xf32>
  linalg.matmul ins(%a, %b : memref<3x20xf32>, memref<20x21xf32>) outs(%c : memref<3x21xf32>)
  return
}
memref.global "private" constant @w : memref<20x21xf32> = dense<1.0>

// -----

// A run-time B with few rows of A to reuse it is read in place with its row
// stride; the tail is masked.
// CHECK-LABEL: func.func @runtime_b
// CHECK:         call @[[K:qc_sgemm_5x12x16_r4x8]]
// CHECK-NOT:     linalg.matmul
// CHECK:       func.func @[[K]]_range(%{{.+}}, %[[B:.+]]: memref<16x12xf32, strided<[12, 1], offset: ?>>,
// CHECK:         vector.maskedload %[[B]]
func.func @runtime_b(%a: memref<5x16xf32>, %b: memref<16x12xf32>, %c: memref<5x12xf32>) {
  linalg.matmul ins(%a, %b : memref<5x16xf32>, memref<16x12xf32>) outs(%c : memref<5x12xf32>)
  return
}

// -----

// batch_matmul: one parallel loop over the column panels of all batches
// (3 batches x 2 panels of 8 columns): unit u is panel u mod 2 of batch
// u / 2, run by the kernel's range function on rank-2 subviews. A thread's
// units are whole batches where the split falls between them: listed as
// splitting C along its leading dim (`rows`), as qc-parallel-loops reads it.
// CHECK:       qc.parallel_kernels = [{{.*}}{name = "[[B:qc_sgemm_8x16x16_r4x8_x3_[0-9a-f]+]]", operands = 3 : i64, panels = 6 : i64, rows, work = 6144 : i64}]
// CHECK-LABEL: func.func @batched
// CHECK:         call @[[B]](%{{.+}}, %{{.+}}, %{{.+}}) : (memref<3x8x16xf32>, memref<3x16x16xf32>, memref<3x8x16xf32>) -> ()
// CHECK-NOT:     linalg.batch_matmul
// CHECK:       func.func @[[B]]_range(%[[A:.+]]: memref<3x8x16xf32>, %[[BB:.+]]: memref<3x16x16xf32>, %[[C:.+]]: memref<3x8x16xf32>, %[[LO:.+]]: index, %[[HI:.+]]: index)
// CHECK:         %[[B0:.+]] = arith.divui %[[LO]], %c2
// CHECK:         %[[HL:.+]] = arith.addi %[[HI]], %c1
// CHECK:         %[[B1:.+]] = arith.divui %[[HL]], %c2
// CHECK:         scf.for %[[I:.+]] = %[[B0]] to %[[B1]] step %c1
// CHECK:           %[[BASE:.+]] = arith.muli %[[I]], %c2
// CHECK:           %[[L:.+]] = arith.subi %[[LO]], %[[BASE]]
// CHECK:           %[[PLO:.+]] = arith.maxsi %[[L]], %c0
// CHECK:           %[[H:.+]] = arith.subi %[[HI]], %[[BASE]]
// CHECK:           %[[PHI:.+]] = arith.minsi %[[H]], %c2
// CHECK:           %[[AS:.+]] = memref.subview %[[A]][%[[I]], 0, 0] [1, 8, 16] [1, 1, 1]
// CHECK:           %[[BS:.+]] = memref.subview %[[BB]][%[[I]], 0, 0] [1, 16, 16] [1, 1, 1]
// CHECK:           %[[CS:.+]] = memref.subview %[[C]][%[[I]], 0, 0] [1, 8, 16] [1, 1, 1]
// CHECK:           call @qc_sgemm_8x16x16_r4x8_range(%[[AS]], %[[BS]], %[[CS]], %[[PLO]], %[[PHI]])
// CHECK:       func.func private @qc_par_sgemm_8x16x16_r4x8_x3_{{[0-9a-f]+}}(memref<3x8x16xf32>, memref<3x16x16xf32>, memref<3x8x16xf32>) attributes {llvm.emit_c_interface}
func.func @batched(%a: memref<3x8x16xf32>, %b: memref<3x16x16xf32>, %c: memref<3x8x16xf32>) {
  linalg.batch_matmul ins(%a, %b : memref<3x8x16xf32>, memref<3x16x16xf32>) outs(%c : memref<3x8x16xf32>)
  return
}

// -----

// A constant batched A (Winograd's transformed weights) is packed batch by
// batch into row panels Ap[b][M/MR][K][MR] (6 rows: 2 panels of 4, the
// second half zeros): at each k, the MR rows' values are next to each other,
// so the micro-kernel reads one stream. Each batch's subview of it has a
// dynamic offset, as the kernel's packed A takes.
// CHECK:       memref.global "private" constant @u_rows4 : memref<2x2x3x4xf32> = dense<{{\[}}{{\[}}{{\[}}[0.000000e+00, 3.000000e+00, 6.000000e+00, 9.000000e+00], [1.000000e+00,
// CHECK-SAME:    {{\[}}[1.200000e+01, 1.500000e+01, 0.000000e+00, 0.000000e+00],
// CHECK-LABEL: func.func @batched_constant_a
// CHECK:         %[[AP:.+]] = memref.get_global @u_rows4 : memref<2x2x3x4xf32>
// CHECK:         call @[[B:qc_sgemm_6x16x3_r4x8_pa_x2_[0-9a-f]+]](%[[AP]], %{{.+}}, %{{.+}}) : (memref<2x2x3x4xf32>, memref<2x3x16xf32>, memref<2x6x16xf32>) -> ()
// CHECK:       func.func @qc_sgemm_6x16x3_r4x8_pa_range(%[[A2:.+]]: memref<2x3x4xf32, strided<[12, 4, 1], offset: ?>>,
// CHECK:         memref.load %[[A2]][%{{.+}}, %{{.+}}, %c0] : memref<2x3x4xf32, strided<[12, 4, 1], offset: ?>>
// CHECK:       func.func @[[B]]_range(%[[A:.+]]: memref<2x2x3x4xf32>,
// CHECK:           %[[AS:.+]] = memref.subview %[[A]][%{{.+}}, 0, 0, 0] [1, 2, 3, 4] [1, 1, 1, 1] : memref<2x2x3x4xf32> to memref<2x3x4xf32, strided<[12, 4, 1], offset: ?>>
// CHECK:           call @qc_sgemm_6x16x3_r4x8_pa_range(%[[AS]],
func.func @batched_constant_a(%b: memref<2x3x16xf32>, %c: memref<2x6x16xf32>) {
  %a = memref.get_global @u : memref<2x6x3xf32>
  linalg.batch_matmul ins(%a, %b : memref<2x6x3xf32>, memref<2x3x16xf32>) outs(%c : memref<2x6x16xf32>)
  return
}
memref.global "private" constant @u : memref<2x6x3xf32> = dense<[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0], [9.0, 10.0, 11.0], [12.0, 13.0, 14.0], [15.0, 16.0, 17.0]], [[18.0, 19.0, 20.0], [21.0, 22.0, 23.0], [24.0, 25.0, 26.0], [27.0, 28.0, 29.0], [30.0, 31.0, 32.0], [33.0, 34.0, 35.0]]]>

// -----

// Not f32: left alone for the generic loop lowering.
// CHECK-LABEL: func.func @f64_untouched
// CHECK:         linalg.matmul
func.func @f64_untouched(%a: memref<4x4xf64>, %b: memref<4x4xf64>, %c: memref<4x4xf64>) {
  linalg.matmul ins(%a, %b : memref<4x4xf64>, memref<4x4xf64>) outs(%c : memref<4x4xf64>)
  return
}

// -----

// A contraction that elementwise fusion made out of MatMul + Reshape (heads
// split from N, and merged back into K): its dims collapse into one 2-D GEMM.
// CHECK-LABEL: func.func @reshaped_contraction
// CHECK-DAG:     %[[A2:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0], [1, 2]] : memref<16x4x8xf32> into memref<16x32xf32>
// CHECK-DAG:     %[[C2:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0], [1, 2]] : memref<16x2x8xf32> into memref<16x16xf32>
// CHECK-NOT:     linalg.generic
// CHECK:         call @qc_sgemm_16x16x32
#a = affine_map<(m, n1, n2, k1, k2) -> (m, k1, k2)>
#b = affine_map<(m, n1, n2, k1, k2) -> (k1, k2, n1, n2)>
#c = affine_map<(m, n1, n2, k1, k2) -> (m, n1, n2)>
func.func @reshaped_contraction(%a: memref<16x4x8xf32>, %b: memref<4x8x2x8xf32>, %c: memref<16x2x8xf32>) {
  linalg.generic {indexing_maps = [#a, #b, #c], iterator_types = ["parallel", "parallel", "parallel", "reduction", "reduction"]}
      ins(%a, %b : memref<16x4x8xf32>, memref<4x8x2x8xf32>) outs(%c : memref<16x2x8xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// B is one channel block of a larger buffer (a Split output): its unit batch
// dim has the whole buffer's stride (96, not 32) and it starts at an offset,
// but its rows are dense, so it is still a matrix for the kernel, read with
// row stride 8.
// CHECK-LABEL: func.func @sliced_b
// CHECK:         memref.subview %{{.+}}[0, 0, 0] [1, 4, 8] [1, 1, 1] : memref<1x4x8xf32, strided<[96, 8, 1], offset: 32>> to memref<4x8xf32, strided<[8, 1], offset: 32>>
// CHECK-NOT:     linalg.generic
// CHECK:         call @qc_sgemm_6x8x4_r4x8(%{{.+}}, %{{.+}}, %{{.+}}) : (memref<6x4xf32, strided<[4, 1], offset: ?>>, memref<4x8xf32, strided<[8, 1], offset: ?>>, memref<6x8xf32, strided<[8, 1], offset: ?>>) -> ()
#sa = affine_map<(b, m, n, k) -> (m, k)>
#sb = affine_map<(b, m, n, k) -> (b, k, n)>
#sc = affine_map<(b, m, n, k) -> (b, m, n)>
func.func @sliced_b(%a: memref<6x4xf32>, %x: memref<1x12x8xf32>, %c: memref<1x6x8xf32>) {
  %b = memref.subview %x[0, 4, 0] [1, 4, 8] [1, 1, 1] : memref<1x12x8xf32> to memref<1x4x8xf32, strided<[96, 8, 1], offset: 32>>
  linalg.generic {indexing_maps = [#sa, #sb, #sc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<6x4xf32>, memref<1x4x8xf32, strided<[96, 8, 1], offset: 32>>) outs(%c : memref<1x6x8xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A transposed operand (B indexed [n, k]) is not this kernel's layout: left alone.
// CHECK-LABEL: func.func @transposed_b_untouched
// CHECK:         linalg.generic
#ta = affine_map<(m, n, k) -> (m, k)>
#tb = affine_map<(m, n, k) -> (n, k)>
#tc = affine_map<(m, n, k) -> (m, n)>
func.func @transposed_b_untouched(%a: memref<8x16xf32>, %b: memref<8x16xf32>, %c: memref<8x8xf32>) {
  linalg.generic {indexing_maps = [#ta, #tb, #tc], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<8x16xf32>, memref<8x16xf32>) outs(%c : memref<8x8xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A deep run-time B (k >= 128) is packed at run time, one KC x NR panel at
// a time into the calling thread's scratch buffer (%S, which the runtime
// passes in: the kernel allocates nothing), right before every row tile of
// A uses it.
// CHECK:       module attributes {qc.parallel_kernels = [{name = "qc_sgemm_4x16x130_s4x8", operands = 3 : i64, panels = 2 : i64, scratch = array<i64: 8, 8>, work = 8320 : i64}]}
// CHECK-LABEL: func.func @runtime_b_packed
// CHECK:       func.func @qc_sgemm_4x16x130_s4x8_range(%{{.+}}, %[[B:.+]]: memref<130x16xf32, strided<[16, 1], offset: ?>>, %[[S:.+]]: memref<8x8xf32>, %{{.+}}, %[[LO:.+]]: index, %{{.+}}: index)
// CHECK:         scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %c8
// CHECK:           scf.for %[[KC:.+]] = %c0 to %c130 step %c8
// CHECK:             scf.for %[[K:.+]] = %[[KC]] to %{{.+}} step %c1
// CHECK:               %[[R:.+]] = arith.subi %[[K]], %[[KC]] : index
// CHECK:               %[[V:.+]] = vector.load %[[B]][%[[K]], %[[J]]] : memref<130x16xf32, strided<[16, 1], offset: ?>>, vector<8xf32>
// CHECK:               vector.store %[[V]], %[[S]][%[[R]], %c0] : memref<8x8xf32>, vector<8xf32>
// CHECK:             scf.for {{.+}} iter_args
// CHECK:               vector.load %[[S]]
// CHECK:               vector.fma
// (B, 8 KiB, stays in L2: nothing is prefetched.)
// CHECK-NOT:     memref.prefetch
// CHECK:       func.func private @qc_sgemm_4x16x130_s4x8(
// CHECK-NOT:     memref.alloc
// CHECK:         call @qc_par_sgemm_4x16x130_s4x8(%{{.+}}, %{{.+}}, %{{.+}}) :
func.func @runtime_b_packed(%a: memref<4x130xf32>, %b: memref<130x16xf32>, %c: memref<4x16xf32>) {
  linalg.matmul ins(%a, %b : memref<4x130xf32>, memref<130x16xf32>) outs(%c : memref<4x16xf32>)
  return
}

// -----

// A short k loop (K = 16 <= 160) in one of several row tiles (M = 8, MR = 4)
// of a C of 512 KiB (8 x 16384 floats): after its k loop, the micro-kernel
// prefetches for writing the lines of C it will store two panels on (column
// j0 + 16), one per row, then stores. With K = 168, or a C of 8 x 24, it
// does not. K = 168 takes several cache blocks, though: the first starts
// from zero, and each later one loads C's tiles and then prefetches, for
// reading, the lines of C two panels on, which the later blocks will load.
// (K = 16 is shallow and C large: each row tile runs across all the panels,
// `rows_outer`, reading B in place.)
// CHECK-LABEL: func.func @qc_sgemm_8x16384x16_r4x8_ez_range(
// CHECK-SAME:      %{{[^:]+}}: memref<8x16xf32{{.*}}>, %{{[^:]+}}: memref<16x16384xf32{{.*}}>, %[[C:[^:]+]]: memref<8x16384xf32
// CHECK:         scf.for %[[IC:.+]] = %c0 to %c8 step %c4
// CHECK:           scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %c8
// CHECK:         scf.for %[[I:.+]] = %[[IC]] to %{{.+}} step %c4
// CHECK:           %[[ACC:.+]]:4 = scf.for
// CHECK:           }
// CHECK:           %[[AHEAD:.+]] = arith.addi %[[J]], %c16 : index
// CHECK-NEXT:      memref.prefetch %[[C]][%[[I]], %[[AHEAD]]], write, locality<3>, data
// CHECK-NEXT:      memref.prefetch %[[C]][%{{.+}}, %[[AHEAD]]], write, locality<3>, data
// CHECK-NEXT:      memref.prefetch %[[C]][%{{.+}}, %[[AHEAD]]], write, locality<3>, data
// CHECK-NEXT:      memref.prefetch %[[C]][%{{.+}}, %[[AHEAD]]], write, locality<3>, data
// CHECK-NEXT:      vector.store %[[ACC]]#0, %[[C]][%[[I]], %[[J]]]
// B (168 x 16384 floats, 11 MB) outgrows L2 and is packed panel by panel:
// as the micro-kernel reads row k of a packed panel, it prefetches (into L2)
// row k of the next panel of B, which the next pack reads.
// CHECK-LABEL: func.func @qc_sgemm_8x16384x168_s4x8_ez_range(
// CHECK-SAME:      %[[B2:[^:]+]]: memref<168x16384xf32, {{.+}}>, %{{[^:]+}}: memref<8x8xf32>, %[[C2:[^:]+]]: memref<8x16384xf32
// CHECK:         scf.for %[[J2:.+]] = %{{.+}} to %{{.+}} step %c8 {
// CHECK:           scf.for %[[KK2:.+]] = %c0 to %c8 step %c1 iter_args(%{{.+}} = %cst,
// CHECK-NEXT:        vector.load
// CHECK-NEXT:        %[[NEXT2:.+]] = arith.addi %[[J2]], %c8 : index
// CHECK-NEXT:        memref.prefetch %[[B2]][%[[KK2]], %[[NEXT2]]], read, locality<2>, data
// CHECK-NOT:       memref.prefetch %[[C2]]
// CHECK:           scf.for %[[KC2:.+]] = %c8 to %c168 step %c8 {
// CHECK:             scf.for %[[I2:.+]] = %c0 to %c8 step %c4 {
// CHECK:               vector.load %[[C2]][%[[I2]], %[[J2]]]
// CHECK:               scf.for
// CHECK:               }
// CHECK-NEXT:          %[[AHEAD2:.+]] = arith.addi %[[J2]], %c16 : index
// CHECK-NEXT:          memref.prefetch %[[C2]][%[[I2]], %[[AHEAD2]]], read, locality<3>, data
// CHECK-NEXT:          memref.prefetch %[[C2]][%{{.+}}, %[[AHEAD2]]], read, locality<3>, data
// CHECK-NEXT:          memref.prefetch %[[C2]][%{{.+}}, %[[AHEAD2]]], read, locality<3>, data
// CHECK-NEXT:          memref.prefetch %[[C2]][%{{.+}}, %[[AHEAD2]]], read, locality<3>, data
// CHECK-NEXT:          vector.store
// CHECK-NOT:     write
// CHECK:         return
// CHECK-LABEL: func.func @qc_sgemm_8x24x16_r4x8_ez_range(
// CHECK-NOT:     memref.prefetch
// CHECK:         return
func.func @short_k(%a: memref<8x16xf32>, %b: memref<16x16384xf32>, %c: memref<8x16384xf32>,
                   %a2: memref<8x168xf32>, %b2: memref<168x16384xf32>, %c2: memref<8x16384xf32>,
                   %b3: memref<16x24xf32>, %c3: memref<8x24xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<8x16384xf32>)
  linalg.matmul ins(%a, %b : memref<8x16xf32>, memref<16x16384xf32>) outs(%c : memref<8x16384xf32>)
  linalg.fill ins(%zero : f32) outs(%c2 : memref<8x16384xf32>)
  linalg.matmul ins(%a2, %b2 : memref<8x168xf32>, memref<168x16384xf32>) outs(%c2 : memref<8x16384xf32>)
  linalg.fill ins(%zero : f32) outs(%c3 : memref<8x24xf32>)
  linalg.matmul ins(%a, %b3 : memref<8x16xf32>, memref<16x24xf32>) outs(%c3 : memref<8x24xf32>)
  return
}

// -----

// A last column alone past whole vectors (9 = 8 + 1) runs across the rows
// of the packed constant A: its accumulator holds the tile's rows (lane r:
// row i0 + r), started from C's column, and each k step multiplies a masked
// load of A's MR values by B's value broadcast; it is stored one row at a
// time. The column's own loop has no vector of B.
// CHECK-LABEL: func.func @qc_sgemm_6x9x8_r4x8_pa_range(
// CHECK-SAME:      %[[A:[^:]+]]: memref<2x8x4xf32, strided<[32, 4, 1], offset: ?>>, %[[B:[^:]+]]: memref<8x9xf32, strided<[9, 1], offset: ?>>, %[[C:[^:]+]]: memref<6x9xf32, strided<[9, 1], offset: ?>>
// CHECK:         scf.if
// CHECK:           %[[C0:.+]] = memref.load %[[C]][%c0, %c8]
// CHECK-NEXT:      %[[V0:.+]] = vector.insert %[[C0]], %{{.+}} [0] : f32 into vector<8xf32>
// CHECK:           %[[V3:.+]] = vector.insert %{{.+}}, %{{.+}} [3] : f32 into vector<8xf32>
// CHECK-NEXT:      %[[COL:.+]] = scf.for %[[K:.+]] = %c0 to %c8 step %c1 iter_args(%[[ACC:.+]] = %[[V3]]) -> (vector<8xf32>) {
// CHECK-NEXT:        %[[M:.+]] = vector.constant_mask [4] : vector<8xi1>
// CHECK-NEXT:        %[[AV:.+]] = vector.maskedload %[[A]][%c0, %[[K]], %c0], %[[M]], %{{.+}} : memref<2x8x4xf32, strided<[32, 4, 1], offset: ?>>, vector<8xi1>, vector<8xf32> into vector<8xf32>
// CHECK-NEXT:        %[[BS:.+]] = memref.load %[[B]][%[[K]], %c8]
// CHECK-NEXT:        %[[BB:.+]] = vector.broadcast %[[BS]] : f32 to vector<8xf32>
// CHECK-NEXT:        %[[F:.+]] = vector.fma %[[AV]], %[[BB]], %[[ACC]] : vector<8xf32>
// CHECK-NEXT:        scf.yield %[[F]] : vector<8xf32>
// CHECK:           %[[X0:.+]] = vector.extract %[[COL]][0] : f32 from vector<8xf32>
// CHECK-NEXT:      memref.store %[[X0]], %[[C]][%c0, %c8]
// CHECK:           %[[X3:.+]] = vector.extract %[[COL]][3] : f32 from vector<8xf32>
// CHECK-NEXT:      memref.store %[[X3]], %[[C]][%c3, %c8]
func.func @lone_column(%b: memref<8x9xf32>, %c: memref<6x9xf32>) {
  %a = memref.get_global @wl : memref<6x8xf32>
  linalg.matmul ins(%a, %b : memref<6x8xf32>, memref<8x9xf32>) outs(%c : memref<6x9xf32>)
  return
}
memref.global "private" constant @wl : memref<6x8xf32> = dense<1.0>
