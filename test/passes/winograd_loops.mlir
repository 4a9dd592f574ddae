// RUN: qc opt %s -p 'qc-winograd-conv,qc-bufferize,qc-winograd-loops' | FileCheck %s

// qc-winograd-conv's transforms, bufferized, as all-parallel loops of adds
// over (channel, image, tile row, tile column):
// - V and M become flat allocations of 16 planes of 2064 floats (32 x 64
//   values, then 16 more: each plane one cache line on, mod 4 KiB, from the
//   one before), viewed as [16, ...] with that plane stride;
// - V is written whole by the input transform: its zero fill is gone;
// - the input transform reads the 4x4 window at 16 constant offsets of X
//   and writes V at 16 constant planes; the output transform reads M's 16
//   planes and adds into Y's 2x2 block at (2th + a, 2tw + b). No multiplies.
// CHECK-DAG:   #[[X00:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d0, d2 * 2, d3 * 2)>
// CHECK-DAG:   #[[X33:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d0, d2 * 2 + 3, d3 * 2 + 3)>
// CHECK-DAG:   #[[V0:.+]] = affine_map<(d0, d1, d2, d3) -> (0, d0, d1, d2, d3)>
// CHECK-DAG:   #[[V15:.+]] = affine_map<(d0, d1, d2, d3) -> (15, d0, d1, d2, d3)>
// CHECK-DAG:   #[[M15:.+]] = affine_map<(d0, d1, d2, d3) -> (15, d1, d0, d2, d3)>
// CHECK-DAG:   #[[Y11:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2 * 2 + 1, d3 * 2 + 1)>
// CHECK-LABEL: func.func @even
// CHECK-SAME:    %[[X:[a-z0-9]+]]: memref<1x32x18x18xf32>, %{{.+}}: memref<1x32x16x16xf32>, %[[Y:[a-z0-9]+]]: memref<1x32x16x16xf32>
// CHECK:         %[[VF:.+]] = memref.alloc() {alignment = 64 : i64} : memref<33024xf32>
// CHECK:         %[[V:.+]] = memref.reinterpret_cast %[[VF]] to offset: [0], sizes: [16, 32, 1, 8, 8], strides: [2064, 64, 64, 8, 1]
// CHECK-NOT:     linalg.fill
// CHECK:         linalg.generic {indexing_maps = [#[[X00]], {{.*}}#[[X33]], #[[V0]], {{.*}}#[[V15]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]] :
// CHECK-SAME:      outs(%[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]] :
// CHECK-NOT:       arith.mulf
// CHECK-COUNT-32:  arith.{{add|sub}}f
// CHECK-NEXT:      linalg.yield
// CHECK:         %[[VM:.+]] = memref.collapse_shape %[[V]] {{\[}}[0], [1], [2, 3, 4]] {{.*}} into memref<16x32x64xf32, strided<[2064, 64, 1]>>
// CHECK:         %[[MF:.+]] = memref.alloc() {alignment = 64 : i64} : memref<33024xf32>
// CHECK:         %[[M:.+]] = memref.reinterpret_cast %[[MF]] to offset: [0], sizes: [16, 32, 64], strides: [2064, 64, 1]
// CHECK:         linalg.fill ins(%{{.+}} : f32) outs(%[[M]] :
// CHECK:         linalg.batch_matmul ins(%{{.+}}, %[[VM]] : memref<16x32x32xf32>, memref<16x32x64xf32, strided<[2064, 64, 1]>>) outs(%[[M]] :
// CHECK:         %[[M5:.+]] = memref.expand_shape %[[M]] {{.*}} into memref<16x32x1x8x8xf32, strided<[2064, 64, 64, 8, 1]>>
// CHECK:         linalg.generic {indexing_maps = [{{.*}}#[[M15]], {{.*}}#[[Y11]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]] :
// CHECK-SAME:      outs(%[[Y]], %[[Y]], %[[Y]], %[[Y]] :
// CHECK-NOT:       arith.mulf
// CHECK-COUNT-28:  arith.{{add|sub}}f
// CHECK-NEXT:      linalg.yield
// CHECK-NOT:     qc.winograd
func.func @even(%x: tensor<1x32x18x18xf32>, %init: tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x18x18xf32>, tensor<32x32x3x3xf32>) outs(%init : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  return %0 : tensor<1x32x16x16xf32>
}
