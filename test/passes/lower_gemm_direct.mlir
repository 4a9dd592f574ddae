// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=8 kc=18 mc=8}' | FileCheck %s

// A stride-1 3x3 convolution (C = 3, padded image 6 x 12, output 4 x 10)
// whose cache block holds whole channels (KC = 18 = 2 x 9 taps): a panel of
// NR = 8 output columns inside one output row (%contig: ow0 + 8 <= OW = 10)
// is read by the micro-kernel straight from the image, one channel per
// k-loop iteration with its nine taps unrolled at offsets kh*W + kw
// (0, 1, 2, 12, 13, 14, 24, 25, 26) from c*H*W + oh*W + ow0; the A row of
// tap t is k = 9c + t. A panel across two output rows is gathered into the
// scratch panel %S as before. K = 27 splits into channels [0, 2) and [2, 3).
// CHECK-LABEL: func.func @qc_sgemm_5x40x27_i4x8_i3x6x12_k3x3_s1x1_d1x1_pa_range(
// CHECK-SAME:      %[[A:[^:]+]]: memref<2x27x4xf32, strided<[108, 4, 1], offset: ?>>, %[[B:[^:]+]]: memref<216xf32, strided<[1], offset: ?>>, %[[S:[^:]+]]: memref<18x8xf32>
// CHECK:         scf.for %[[J0:.+]] = %{{.+}} to %{{.+}} step %c8 {
// CHECK:           %[[OH:.+]] = arith.divui %[[J0]], %c10 : index
// CHECK:           %[[OW0:.+]] = arith.remui %[[J0]], %c10 : index
// CHECK:           %[[ROW:.+]] = arith.muli %[[OH]], %c12 : index
// CHECK:           %[[OFF0:.+]] = arith.addi %[[ROW]], %[[OW0]] : index
// CHECK:           %[[END:.+]] = arith.addi %[[OW0]], %c8 : index
// CHECK:           %[[CONTIG:.+]] = arith.cmpi ule, %[[END]], %c10 : index
// CHECK:           scf.for %[[KC:.+]] = %c0 to %c27 step %c18 {
// CHECK:             %[[K1:.+]] = arith.addi %{{.+}}, %c18 : index
// CHECK:             scf.if %[[CONTIG]] {
// CHECK:               %[[C0:.+]] = arith.divui %[[KC]], %c9 : index
// CHECK:               %[[C1:.+]] = arith.divui %[[K1]], %c9 : index
// CHECK:               scf.for %[[C:.+]] = %[[C0]] to %[[C1]] step %c1 iter_args(
// CHECK:                 %[[CH:.+]] = arith.muli %[[C]], %c72 : index
// CHECK:                 %[[KB:.+]] = arith.muli %[[C]], %c9 : index
// CHECK:                 %[[P0:.+]] = arith.addi %[[CH]], %[[OFF0]] : index
// CHECK:                 %[[B0:.+]] = vector.load %[[B]][%[[P0]]] : memref<216xf32, strided<[1], offset: ?>>, vector<8xf32>
// CHECK:                 %[[A0:.+]] = memref.load %[[A]][%c0, %[[KB]], %c0] : memref<2x27x4xf32, strided<[108, 4, 1], offset: ?>>
// CHECK:                 %[[AB:.+]] = vector.broadcast %[[A0]] : f32 to vector<8xf32>
// CHECK:                 vector.fma %[[AB]], %[[B0]], %{{.+}} : vector<8xf32>
// CHECK-COUNT-3:         vector.fma
// CHECK:                 %[[K01:.+]] = arith.addi %[[KB]], %c1 : index
// CHECK:                 %[[T01:.+]] = arith.addi %[[CH]], %c1 : index
// CHECK:                 %[[P01:.+]] = arith.addi %[[T01]], %[[OFF0]] : index
// CHECK:                 vector.load %[[B]][%[[P01]]]
// CHECK:                 memref.load %[[A]][%c0, %[[K01]], %c0]
// CHECK:                 arith.addi %[[CH]], %c2 : index
// CHECK:                 arith.addi %[[CH]], %c12 : index
// CHECK:                 arith.addi %[[CH]], %c13 : index
// CHECK:                 arith.addi %[[CH]], %c14 : index
// CHECK:                 arith.addi %[[CH]], %c24 : index
// CHECK:                 arith.addi %[[CH]], %c25 : index
// CHECK:                 %[[K22:.+]] = arith.addi %[[KB]], %c8 : index
// CHECK:                 %[[T22:.+]] = arith.addi %[[CH]], %c26 : index
// CHECK:                 %[[P22:.+]] = arith.addi %[[T22]], %[[OFF0]] : index
// CHECK:                 vector.load %[[B]][%[[P22]]]
// CHECK:                 memref.load %[[A]][%c0, %[[K22]], %c3]
// CHECK:                 scf.yield
// CHECK-NOT:           vector.store %{{.+}}, %[[S]]
// CHECK:             } else {
// CHECK:               scf.for %[[PK:.+]] = %[[KC]] to %[[K1]] step %c1 {
// CHECK:                 vector.maskedload %[[B]]
// CHECK:                 vector.store %{{.+}}, %[[S]][%{{.+}}, %c0] : memref<18x8xf32>, vector<8xf32>
// CHECK:               scf.for %{{.+}} = %[[KC]] to %[[K1]] step %c1 iter_args(
// CHECK:                 vector.load %[[S]]
#x = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, oh + kh, ow + kw)>
#col = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, kh, kw, oh, ow)>
#ma = affine_map<(n, f, p, k) -> (f, k)>
#mb = affine_map<(n, f, p, k) -> (n, k, p)>
#mc = affine_map<(n, f, p, k) -> (n, f, p)>
memref.global "private" constant @w : memref<5x3x3x3xf32> = dense<0.5>
func.func @conv_direct(%x: memref<1x3x6x12xf32>, %y: memref<1x5x40xf32>) {
  %col = memref.alloc() : memref<1x3x3x3x4x10xf32>
  linalg.generic {indexing_maps = [#x, #col], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x3x6x12xf32>) outs(%col : memref<1x3x3x3x4x10xf32>) attrs = {qc.im2col = array<i64: 3, 3, 1, 1, 1, 1>} {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  %b = memref.collapse_shape %col [[0], [1, 2, 3], [4, 5]] : memref<1x3x3x3x4x10xf32> into memref<1x27x40xf32>
  %w4 = memref.get_global @w : memref<5x3x3x3xf32>
  %a = memref.collapse_shape %w4 [[0], [1, 2, 3]] : memref<5x3x3x3xf32> into memref<5x27xf32>
  linalg.generic {indexing_maps = [#ma, #mb, #mc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<5x27xf32>, memref<1x27x40xf32>) outs(%y : memref<1x5x40xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Stride 2 (image 2 x 9 x 23, output 4 x 11): a panel's row (c, kh, kw) is
// every other image value. Inside one output row: two loads from
// c*H*W + kh*W + kw + oh*2*W + 2*ow0 (the second without its last lane, which
// may lie past the image) and the even lanes. Across two rows: the same from
// both rows' starts (the second at + 2*W - 2*OW = 24) and a select of the
// first row's lanes (ow < OW). The partial last panel is gathered. Inside
// one row, each row of the panel also prefetches the image line two panels
// on (2 * NR * 2 = 32 values further).
// CHECK-LABEL: func.func @qc_sgemm_4x44x18_i4x8_i2x9x23_k3x3_s2x2_d1x1_pa_range(
// CHECK-SAME:      %{{[^:]+}}: memref<1x18x4xf32, strided<[72, 4, 1], offset: ?>>, %[[B:[^:]+]]: memref<414xf32, strided<[1], offset: ?>>, %[[S:[^:]+]]: memref<18x8xf32>
// CHECK:         %[[ODD:.+]] = vector.constant_mask [7] : vector<8xi1>
// CHECK:         scf.for %[[J0:.+]] = %{{.+}} to %{{.+}} step %c8 {
// CHECK:           %[[OH:.+]] = arith.divui %[[J0]], %c11 : index
// CHECK:           %[[OW0:.+]] = arith.remui %[[J0]], %c11 : index
// CHECK:           %[[ROW:.+]] = arith.muli %[[OH]], %c46 : index
// CHECK:           %[[COL:.+]] = arith.muli %[[OW0]], %c2 : index
// CHECK:           %[[OFF:.+]] = arith.addi %[[ROW]], %[[COL]] : index
// CHECK:           %[[OFFB:.+]] = arith.addi %[[OFF]], %c24 : index
// CHECK:           %[[MA:.+]] = vector.create_mask %{{.+}} : vector<8xi1>
// CHECK:           scf.if %{{.+}} {
// CHECK:             scf.for
// CHECK:               %[[P:.+]] = arith.addi %{{.+}}, %[[OFF]] : index
// CHECK:               %[[AHEAD:.+]] = arith.addi %[[P]], %c32 : index
// CHECK:               memref.prefetch %[[B]][%[[AHEAD]]], read, locality<3>, data
// CHECK:               %[[LO:.+]] = vector.load %[[B]][%[[P]]]
// CHECK:               %[[P8:.+]] = arith.addi %[[P]], %c8 : index
// CHECK:               %[[HI:.+]] = vector.maskedload %[[B]][%[[P8]]], %[[ODD]]
// CHECK:               %[[EV:.+]] = vector.shuffle %[[LO]], %[[HI]] [0, 2, 4, 6, 8, 10, 12, 14] : vector<8xf32>, vector<8xf32>
// CHECK:               vector.store %[[EV]], %[[S]]
// CHECK:           } else {
// CHECK:             scf.for
// CHECK:               %[[PA:.+]] = arith.addi %[[R:.+]], %[[OFF]] : index
// CHECK:               %[[PB:.+]] = arith.addi %[[R]], %[[OFFB]] : index
// CHECK:               %[[EA:.+]] = vector.shuffle
// CHECK:               vector.load %[[B]][%[[PB]]]
// CHECK:               %[[EB:.+]] = vector.shuffle
// CHECK:               %[[V:.+]] = arith.select %[[MA]], %[[EA]], %[[EB]] : vector<8xi1>, vector<8xf32>
// CHECK:               vector.store %[[V]], %[[S]]
// CHECK:         scf.if
// CHECK:           vector.gather %[[B]]
#x = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, 2 * oh + kh, 2 * ow + kw)>
#col = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, kh, kw, oh, ow)>
#ma = affine_map<(n, f, p, k) -> (f, k)>
#mb = affine_map<(n, f, p, k) -> (n, k, p)>
#mc = affine_map<(n, f, p, k) -> (n, f, p)>
memref.global "private" constant @w : memref<4x2x3x3xf32> = dense<0.5>
func.func @conv_stride2(%x: memref<1x2x9x23xf32>, %y: memref<1x4x44xf32>) {
  %col = memref.alloc() : memref<1x2x3x3x4x11xf32>
  linalg.generic {indexing_maps = [#x, #col], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x2x9x23xf32>) outs(%col : memref<1x2x3x3x4x11xf32>) attrs = {qc.im2col = array<i64: 3, 3, 2, 2, 1, 1>} {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  %b = memref.collapse_shape %col [[0], [1, 2, 3], [4, 5]] : memref<1x2x3x3x4x11xf32> into memref<1x18x44xf32>
  %w4 = memref.get_global @w : memref<4x2x3x3xf32>
  %a = memref.collapse_shape %w4 [[0], [1, 2, 3]] : memref<4x2x3x3xf32> into memref<4x18xf32>
  linalg.generic {indexing_maps = [#ma, #mb, #mc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<4x18xf32>, memref<1x18x44xf32>) outs(%y : memref<1x4x44xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  return
}
