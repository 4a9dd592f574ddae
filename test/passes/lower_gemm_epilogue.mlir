// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=8 kc=8 mc=8}' | FileCheck %s

// A bias broadcast along the rows of C before the GEMM, and a Clip (max 0,
// min 6) from C into D after it: both fold into the kernel. It starts its
// accumulators from the bias, clamps each register tile before storing it,
// and writes D; the fill, the Clip and C's buffer are gone.
// CHECK-LABEL: func.func @bias_rows_clip
// CHECK-SAME:    (%[[A:.+]]: memref<5x8xf32>, %[[B:.+]]: memref<8x12xf32>, %[[BIAS:.+]]: memref<5xf32>, %[[D:.+]]: memref<5x12xf32>)
// CHECK-NOT:     memref.alloc
// CHECK-NOT:     linalg.generic
// CHECK:         %[[DC:.+]] = memref.cast %[[D]]
// CHECK:         %[[BC:.+]] = memref.cast %[[BIAS]] : memref<5xf32> to memref<5xf32, strided<[1], offset: ?>>
// CHECK:         call @[[K:qc_sgemm_5x12x8_r4x8_ebrmax0min6]](%{{.+}}, %{{.+}}, %[[DC]], %[[BC]])
// CHECK:       func.func @[[K]]_range({{.+}}, %[[C:.+]]: memref<5x12xf32, strided<[12, 1], offset: ?>>, %[[KB:.+]]: memref<5xf32, strided<[1], offset: ?>>, %{{.+}}: index, %{{.+}}: index)
// CHECK-DAG:     %[[LO:.+]] = arith.constant dense<0.000000e+00> : vector<8xf32>
// CHECK-DAG:     %[[HI:.+]] = arith.constant dense<6.000000e+00> : vector<8xf32>
// CHECK:         %[[R0:.+]] = memref.load %[[KB]][%{{.+}}] : memref<5xf32, strided<[1], offset: ?>>
// CHECK:         %[[ACC:.+]] = vector.broadcast %[[R0]] : f32 to vector<8xf32>
// CHECK-NOT:     vector.load %[[C]]
// CHECK:         scf.for {{.+}} iter_args
// CHECK:         %[[M1:.+]] = arith.maximumf %{{.+}}, %[[LO]] fastmath<nsz> : vector<8xf32>
// CHECK:         %[[M2:.+]] = arith.minimumf %[[M1]], %[[HI]] fastmath<nsz> : vector<8xf32>
// CHECK:         vector.store %[[M2]], %[[C]]
#rows = affine_map<(d0, d1) -> (d0)>
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @bias_rows_clip(%a: memref<5x8xf32>, %b: memref<8x12xf32>, %bias: memref<5xf32>, %d: memref<5x12xf32>) {
  %c = memref.alloc() : memref<5x12xf32>
  linalg.generic {indexing_maps = [#rows, #id], iterator_types = ["parallel", "parallel"]}
      ins(%bias : memref<5xf32>) outs(%c : memref<5x12xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  }
  linalg.matmul ins(%a, %b : memref<5x8xf32>, memref<8x12xf32>) outs(%c : memref<5x12xf32>)
  %zero = arith.constant 0.0 : f32
  %six = arith.constant 6.0 : f32
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<5x12xf32>) outs(%d : memref<5x12xf32>) {
  ^bb0(%x: f32, %o: f32):
    %m = arith.maximumf %x, %zero : f32
    %n = arith.minimumf %m, %six : f32
    linalg.yield %n : f32
  }
  return
}

// -----

// A bias along the columns (Gemm's C row) and a residual Add, with K = 20
// over cache blocks of 8: the first block (peeled) starts from the bias, the
// rest accumulate, then one pass over the range adds R. R is an output of
// layers long before: each row of the pass prefetches R's row two panels on
// (column j0 + 16).
// CHECK-LABEL: func.func @bias_cols_residual
// CHECK:         call @[[K:qc_sgemm_4x16x20_r4x8_ebcr]](
// CHECK:       func.func @[[K]]_range({{.+}}, %[[C:.+]]: memref<4x16xf32, strided<[16, 1], offset: ?>>, %[[KB:.+]]: memref<16xf32, strided<[1], offset: ?>>, %[[R:.+]]: memref<4x16xf32, strided<[16, 1], offset: ?>>, %{{.+}}: index, %{{.+}}: index)
// CHECK:         vector.load %[[KB]][%{{.+}}] : memref<16xf32, strided<[1], offset: ?>>, vector<8xf32>
// CHECK:         scf.for %{{.+}} = %c8 to %c20 step %c8
// CHECK:           vector.load %[[C]]
// CHECK:         scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %c8
// CHECK:         scf.for %[[I:.+]] = %c0 to %c4 step %c1
// CHECK:           %[[AHEAD:.+]] = arith.addi %[[J]], %c16 : index
// CHECK:           memref.prefetch %[[R]][%[[I]], %[[AHEAD]]], read, locality<3>, data
// CHECK:           %[[CV:.+]] = vector.load %[[C]][%[[I]], %{{.+}}]
// CHECK:           %[[RV:.+]] = vector.load %[[R]][%[[I]], %{{.+}}]
// CHECK:           %[[S:.+]] = arith.addf %[[CV]], %[[RV]] : vector<8xf32>
// CHECK:           vector.store %[[S]], %[[C]][%[[I]], %{{.+}}]
#cols = affine_map<(d0, d1) -> (d1)>
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @bias_cols_residual(%a: memref<4x20xf32>, %b: memref<20x16xf32>, %bias: memref<16xf32>, %r: memref<4x16xf32>, %d: memref<4x16xf32>) {
  %c = memref.alloc() : memref<4x16xf32>
  linalg.generic {indexing_maps = [#cols, #id], iterator_types = ["parallel", "parallel"]}
      ins(%bias : memref<16xf32>) outs(%c : memref<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  }
  linalg.matmul ins(%a, %b : memref<4x20xf32>, memref<20x16xf32>) outs(%c : memref<4x16xf32>)
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%r, %c : memref<4x16xf32>, memref<4x16xf32>) outs(%d : memref<4x16xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// C is an output of the function: the Relu after it must still read it, so
// only the zero fill folds in (the accumulators start at zero).
// CHECK-LABEL: func.func @c_is_an_output
// CHECK:         call @qc_sgemm_4x8x8_r4x8_ez(
// CHECK:         linalg.generic
// CHECK:           arith.maximumf
func.func @c_is_an_output(%a: memref<4x8xf32>, %b: memref<8x8xf32>, %c: memref<4x8xf32>, %d: memref<4x8xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<4x8xf32>)
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x8xf32>) outs(%c : memref<4x8xf32>)
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<4x8xf32>) outs(%d : memref<4x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %m = arith.maximumf %x, %zero : f32
    linalg.yield %m : f32
  }
  return
}

// -----

// A grouped 1x1 convolution as the frontend leaves it: a batch of GEMMs over
// the groups (C viewed [G, M, N]) with a bias per group and row ([G, M],
// broadcast by a generic over (n, g, m, h, w)) and a Relu after. Both fold
// into the kernel; the call of group g takes row g of the bias.
// CHECK-LABEL: func.func @grouped_bias_relu
// CHECK-SAME:    (%{{[^:]+}}: memref<3x5x4xf32>, %{{[^:]+}}: memref<1x12x2x3xf32>, %[[BIAS:[^:]+]]: memref<3x5xf32>, %[[D:[^:]+]]: memref<1x15x2x3xf32>)
// CHECK-NOT:     memref.alloc
// CHECK-NOT:     linalg.generic
// CHECK:         scf.for %[[G:.+]] = %c0 to %c3 step %c1 {
// CHECK:           %[[ROW:.+]] = memref.subview %[[BIAS]][%[[G]], 0] [1, 5] [1, 1] : memref<3x5xf32> to memref<5xf32, strided<[1], offset: ?>>
// CHECK:           func.call @qc_sgemm_5x6x4_r4x8_ebrmax0(%{{.+}}, %{{.+}}, %{{.+}}, %[[ROW]])
#wmap = affine_map<(g, m, p, k) -> (g, m, k)>
#xmap = affine_map<(g, m, p, k) -> (g, k, p)>
#ymap = affine_map<(g, m, p, k) -> (g, m, p)>
#bmap = affine_map<(n, g, m, h, w) -> (g, m)>
#id5 = affine_map<(n, g, m, h, w) -> (n, g, m, h, w)>
func.func @grouped_bias_relu(%w: memref<3x5x4xf32>, %x: memref<1x12x2x3xf32>, %bias: memref<3x5xf32>, %d: memref<1x15x2x3xf32>) {
  %cst = arith.constant 0.0 : f32
  %xg = memref.expand_shape %x [[0], [1, 2], [3], [4]] output_shape [1, 3, 4, 2, 3] : memref<1x12x2x3xf32> into memref<1x3x4x2x3xf32>
  %dg = memref.expand_shape %d [[0], [1, 2], [3], [4]] output_shape [1, 3, 5, 2, 3] : memref<1x15x2x3xf32> into memref<1x3x5x2x3xf32>
  %c = memref.alloc() : memref<1x3x5x2x3xf32>
  linalg.generic {indexing_maps = [#bmap, #id5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%bias : memref<3x5xf32>) outs(%c : memref<1x3x5x2x3xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  %xm = memref.collapse_shape %xg [[0, 1], [2], [3, 4]] : memref<1x3x4x2x3xf32> into memref<3x4x6xf32>
  %cm = memref.collapse_shape %c [[0, 1], [2], [3, 4]] : memref<1x3x5x2x3xf32> into memref<3x5x6xf32>
  linalg.generic {indexing_maps = [#wmap, #xmap, #ymap], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%w, %xm : memref<3x5x4xf32>, memref<3x4x6xf32>) outs(%cm : memref<3x5x6xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#id5, #id5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%c : memref<1x3x5x2x3xf32>) outs(%dg : memref<1x3x5x2x3xf32>) {
  ^bb0(%v: f32, %o: f32):
    %r = arith.maximumf %v, %cst : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A bias of equal values (written by a generic yielding one constant, as
// after folding a BatchNormalization of constant fills): the accumulators
// start from that constant; the Relu after folds as well.
// CHECK-LABEL: func.func @splat_bias_relu
// CHECK-NOT:     linalg.generic
// CHECK:         call @[[K:qc_sgemm_5x12x8_r4x8_es0p5max0]](
// CHECK:       func.func @[[K]]_range(
// CHECK-DAG:     %[[SPLAT:.+]] = arith.constant dense<5.000000e-01> : vector<8xf32>
// CHECK:         scf.for {{.+}} iter_args(%{{.+}} = %[[SPLAT]], %{{.+}} = %[[SPLAT]]
// CHECK:         arith.maximumf
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @splat_bias_relu(%a: memref<5x8xf32>, %b: memref<8x12xf32>, %d: memref<5x12xf32>) {
  %half = arith.constant 0.5 : f32
  %zero = arith.constant 0.0 : f32
  %c = memref.alloc() : memref<5x12xf32>
  linalg.generic {indexing_maps = [#id2], iterator_types = ["parallel", "parallel"]} outs(%c : memref<5x12xf32>) {
  ^bb0(%o: f32):
    linalg.yield %half : f32
  }
  linalg.matmul ins(%a, %b : memref<5x8xf32>, memref<8x12xf32>) outs(%c : memref<5x12xf32>)
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]} ins(%c : memref<5x12xf32>) outs(%d : memref<5x12xf32>) {
  ^bb0(%v: f32, %o: f32):
    %r = arith.maximumf %v, %zero : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A Concat's part: the Relu writes a slice of the Concat's result, which is
// allocated (and sliced) after the GEMM. Both views move ahead of the GEMM,
// and the kernel writes the slice (offset 24 of the 8x12 result) itself;
// C's buffer and the Relu loop are gone.
// CHECK-LABEL: func.func @relu_into_concat_slice
// CHECK:         %[[OUT:.+]] = memref.alloc() : memref<1x8x12xf32>
// CHECK:         %[[S:.+]] = memref.subview %[[OUT]][0, 2, 0] [1, 4, 12] [1, 1, 1]
// CHECK-SAME:      to memref<1x4x12xf32, strided<[96, 12, 1], offset: 24>>
// CHECK:         %[[S2:.+]] = memref.collapse_shape %[[S]] {{\[}}[0, 1], [2]] : memref<1x4x12xf32, strided<[96, 12, 1], offset: 24>> into memref<4x12xf32, strided<[12, 1], offset: 24>>
// CHECK:         %[[SC:.+]] = memref.cast %[[S2]]
// CHECK:         call @qc_sgemm_4x12x8_r4x8_ezmax0(%{{.+}}, %{{.+}}, %[[SC]])
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[OUT]]
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @relu_into_concat_slice(%a: memref<4x8xf32>, %b: memref<8x12xf32>) -> memref<1x8x12xf32> {
  %c = memref.alloc() : memref<1x4x12xf32>
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<1x4x12xf32>)
  %cc = memref.collapse_shape %c [[0, 1], [2]] : memref<1x4x12xf32> into memref<4x12xf32>
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x12xf32>) outs(%cc : memref<4x12xf32>)
  %out = memref.alloc() : memref<1x8x12xf32>
  %s = memref.subview %out[0, 2, 0] [1, 4, 12] [1, 1, 1] : memref<1x8x12xf32> to memref<1x4x12xf32, strided<[96, 12, 1], offset: 24>>
  linalg.generic {indexing_maps = [#id3, #id3], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%c : memref<1x4x12xf32>) outs(%s : memref<1x4x12xf32, strided<[96, 12, 1], offset: 24>>) {
  ^bb0(%x: f32, %o: f32):
    %m = arith.maximumf %x, %zero : f32
    linalg.yield %m : f32
  }
  return %out : memref<1x8x12xf32>
}

// -----

// C zero-filled through a reshape of all of it (bufferization's view of the
// conv's [1, F, H*W] output), then a Relu into D, allocated after the GEMM:
// the fill folds (suffix z), D's allocation moves ahead of the GEMM, and the
// kernel writes D; C's buffer and both loops are gone.
// CHECK-LABEL: func.func @fill_of_a_view_relu_into_new_buffer
// CHECK-NOT:     linalg.fill
// CHECK:         %[[D:.+]] = memref.alloc() : memref<4x16xf32>
// CHECK:         call @qc_sgemm_4x16x8_r4x8_ezmax0(%{{.+}}, %{{.+}}, %{{.+}})
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[D]]
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @fill_of_a_view_relu_into_new_buffer(%a: memref<4x8xf32>, %b: memref<8x16xf32>) -> memref<4x16xf32> {
  %zero = arith.constant 0.0 : f32
  %c = memref.alloc() : memref<4x16xf32>
  %cv = memref.expand_shape %c [[0], [1, 2]] output_shape [4, 4, 4] : memref<4x16xf32> into memref<4x4x4xf32>
  linalg.fill ins(%zero : f32) outs(%cv : memref<4x4x4xf32>)
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x16xf32>) outs(%c : memref<4x16xf32>)
  %d = memref.alloc() : memref<4x16xf32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<4x16xf32>) outs(%d : memref<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %m = arith.maximumf %x, %zero : f32
    linalg.yield %m : f32
  }
  return %d : memref<4x16xf32>
}

// -----

// C starts from a copy (no init the kernel can make): a Relu into another
// buffer D stays a loop, since a kernel writing D would load D's old values
// as its start instead of C's.
// CHECK-LABEL: func.func @copied_init_keeps_chain
// CHECK:         linalg.copy
// CHECK:         call @qc_sgemm_4x16x8_r4x8(
// CHECK:         linalg.generic
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @copied_init_keeps_chain(%a: memref<4x8xf32>, %b: memref<8x16xf32>, %c0: memref<4x16xf32>, %d: memref<4x16xf32>) {
  %zero = arith.constant 0.0 : f32
  %c = memref.alloc() : memref<4x16xf32>
  linalg.copy ins(%c0 : memref<4x16xf32>) outs(%c : memref<4x16xf32>)
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x16xf32>) outs(%c : memref<4x16xf32>)
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<4x16xf32>) outs(%d : memref<4x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %m = arith.maximumf %x, %zero : f32
    linalg.yield %m : f32
  }
  return
}

// -----

// The residual Add with K = 8 in one cache block: the micro-kernel adds R
// before its stores, and first prefetches R's rows two panels on (column
// j0 + 16) for the row tile that will need them; the partial last panel
// (N = 20) has none after it and prefetches nothing.
// CHECK-LABEL: func.func @residual_one_block
// CHECK:         call @[[K:qc_sgemm_4x20x8_r4x8_ezr]](
// CHECK:       func.func @[[K]]_range({{.+}}, %[[C:.+]]: memref<4x20xf32, strided<[20, 1], offset: ?>>, %[[R:.+]]: memref<4x20xf32, strided<[20, 1], offset: ?>>, %{{.+}}: index, %{{.+}}: index)
// CHECK:         scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %c8
// CHECK:           %[[ACC:.+]]:4 = scf.for
// CHECK:             vector.fma
// CHECK:           }
// CHECK:           %[[AHEAD:.+]] = arith.addi %[[J]], %c16 : index
// CHECK-NEXT:      memref.prefetch %[[R]][%c0, %[[AHEAD]]], read, locality<3>, data
// CHECK-NEXT:      memref.prefetch %[[R]][%c1, %[[AHEAD]]], read, locality<3>, data
// CHECK-NEXT:      memref.prefetch %[[R]][%c2, %[[AHEAD]]], read, locality<3>, data
// CHECK-NEXT:      memref.prefetch %[[R]][%c3, %[[AHEAD]]], read, locality<3>, data
// CHECK-NEXT:      %[[RV:.+]] = vector.load %[[R]][%c0, %[[J]]]
// CHECK-NEXT:      arith.addf %[[ACC]]#0, %[[RV]] : vector<8xf32>
// CHECK:         scf.if
// CHECK-NOT:       memref.prefetch
// CHECK:           vector.maskedload %[[R]]
// CHECK-NOT:       memref.prefetch
// CHECK:         return
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @residual_one_block(%a: memref<4x8xf32>, %b: memref<8x20xf32>, %r: memref<4x20xf32>, %d: memref<4x20xf32>) {
  %c = memref.alloc() : memref<4x20xf32>
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<4x20xf32>)
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x20xf32>) outs(%c : memref<4x20xf32>)
  linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%r, %c : memref<4x20xf32>, memref<4x20xf32>) outs(%d : memref<4x20xf32>) {
  ^bb0(%x: f32, %y: f32, %o: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  }
  return
}
