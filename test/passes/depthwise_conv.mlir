// RUN: qc opt %s -split-input-file -p qc-depthwise-conv | FileCheck %s

// The depthwise convolution becomes an all-parallel generic over the output
// with the 3x3 window unrolled: 9 views of x (stride 2: 7 x 7 windows read
// with map (n, c, 2*oh, 2*ow)), w at (c, i, j), and an FMA chain from the
// init, in the named op's (kh, kw) order.
// CHECK-DAG:   #[[X:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2 * 2, d3 * 2)>
// CHECK-DAG:   #[[W00:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
// CHECK-DAG:   #[[W22:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, 2, 2)>
// CHECK-DAG:   #[[Y:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @depthwise_s2
// CHECK-SAME:    (%[[XIN:.+]]: tensor<1x8x9x9xf32>, %[[WIN:.+]]: tensor<8x3x3xf32>, %[[INIT:.+]]: tensor<1x8x4x4xf32>)
// CHECK:         %[[T00:.+]] = tensor.extract_slice %[[XIN]][0, 0, 0, 0] [1, 8, 7, 7] [1, 1, 1, 1]
// CHECK:         %[[T22:.+]] = tensor.extract_slice %[[XIN]][0, 0, 2, 2] [1, 8, 7, 7] [1, 1, 1, 1]
// CHECK:         linalg.generic {indexing_maps = [#[[X]], {{.*}}, #[[X]], #[[W00]], {{.*}}, #[[W22]], #[[Y]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[T00]], {{.*}}, %[[T22]], %[[WIN]], {{.*}}, %[[WIN]] : {{.*}}) outs(%[[INIT]] : tensor<1x8x4x4xf32>)
// CHECK:         ^bb0(%[[P:[a-z0-9_]+]]: f32, {{.*}}, %[[ACC:[a-z0-9_]+]]: f32):
// CHECK:           %[[M:.+]] = arith.mulf %[[P]], %{{.+}} fastmath<contract> : f32
// CHECK:           arith.addf %[[ACC]], %[[M]] fastmath<contract> : f32
// CHECK-COUNT-8:   arith.mulf
// CHECK-NOT:     linalg.depthwise_conv_2d_nchw_chw
func.func @depthwise_s2(%x: tensor<1x8x9x9xf32>, %w: tensor<8x3x3xf32>, %init: tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32> {
  %0 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %w : tensor<1x8x9x9xf32>, tensor<8x3x3xf32>) outs(%init : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  return %0 : tensor<1x8x4x4xf32>
}

// -----

// A bias broadcast into the init (what the frontend makes of Conv's B): the
// bias vector becomes one more operand with its map (c) and the sum starts
// from it; the broadcast loop is gone.
#bias = affine_map<(d0, d1, d2, d3) -> (d1)>
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG:   #[[C:.+]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-LABEL: func.func @depthwise_bias
// CHECK-SAME:    (%{{.+}}: tensor<1x2x7x7xf32>, %{{.+}}: tensor<2x3x3xf32>, %[[B:.+]]: tensor<2xf32>)
// CHECK:         %[[E:.+]] = tensor.empty() : tensor<1x2x5x5xf32>
// CHECK:         linalg.generic {indexing_maps = [{{.*}}, #[[C]], #{{.+}}]
// CHECK-SAME:      ins({{.*}}, %[[B]] : {{.*}}, tensor<2xf32>) outs(%[[E]] : tensor<1x2x5x5xf32>)
// CHECK:         ^bb0(%{{.+}}: f32, {{.*}}, %[[BIAS:[a-z0-9_]+]]: f32, %{{[a-z0-9_]+}}: f32):
// CHECK:           %[[M:.+]] = arith.mulf
// CHECK:           arith.addf %[[BIAS]], %[[M]] fastmath<contract> : f32
// CHECK:           linalg.yield
// CHECK-NOT:     linalg.generic
// CHECK:         return
func.func @depthwise_bias(%x: tensor<1x2x7x7xf32>, %w: tensor<2x3x3xf32>, %b: tensor<2xf32>) -> tensor<1x2x5x5xf32> {
  %e = tensor.empty() : tensor<1x2x5x5xf32>
  %init = linalg.generic {indexing_maps = [#bias, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%b : tensor<2xf32>) outs(%e : tensor<1x2x5x5xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<1x2x5x5xf32>
  %0 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x2x7x7xf32>, tensor<2x3x3xf32>) outs(%init : tensor<1x2x5x5xf32>) -> tensor<1x2x5x5xf32>
  return %0 : tensor<1x2x5x5xf32>
}
