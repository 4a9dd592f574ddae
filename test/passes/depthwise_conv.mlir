// RUN: qc opt %s -split-input-file -p qc-depthwise-conv | FileCheck %s

// The depthwise convolution becomes an all-parallel generic over the output
// with the 3x3 window unrolled: the body reads x at (n, c, 2*oh + i, 2*ow + j)
// from the loop indices (stride 2), w at (c, i, j) as operands, and sums an
// FMA chain from the init, in the named op's (kh, kw) order.
// CHECK-DAG:   #[[W00:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
// CHECK-DAG:   #[[W22:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, 2, 2)>
// CHECK-DAG:   #[[Y:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @depthwise_s2
// CHECK-SAME:    (%[[XIN:.+]]: tensor<1x8x9x9xf32>, %[[WIN:.+]]: tensor<8x3x3xf32>, %[[INIT:.+]]: tensor<1x8x4x4xf32>)
// CHECK:         linalg.generic {indexing_maps = [#[[W00]], {{.*}}, #[[W22]], #[[Y]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[WIN]], {{.*}}, %[[WIN]] : {{.*}}) outs(%[[INIT]] : tensor<1x8x4x4xf32>)
// CHECK:         ^bb0(%[[W0:[a-z0-9_]+]]: f32, {{.*}}, %[[ACC:[a-z0-9_]+]]: f32):
// CHECK:           %[[N:.+]] = linalg.index 0 : index
// CHECK:           %[[C:.+]] = linalg.index 1 : index
// CHECK:           %[[H:.+]] = linalg.index 2 : index
// CHECK:           %[[W:.+]] = linalg.index 3 : index
// CHECK:           %[[H2:.+]] = arith.muli %[[H]], %{{.+}} : index
// CHECK:           %[[W2:.+]] = arith.muli %[[W]], %{{.+}} : index
// CHECK:           %[[R:.+]] = arith.addi %[[H2]], %{{.+}} : index
// CHECK:           %[[S:.+]] = arith.addi %[[W2]], %{{.+}} : index
// CHECK:           %[[P:.+]] = tensor.extract %[[XIN]][%[[N]], %[[C]], %[[R]], %[[S]]] : tensor<1x8x9x9xf32>
// CHECK:           %[[M:.+]] = arith.mulf %[[P]], %[[W0]] fastmath<contract> : f32
// CHECK:           arith.addf %[[ACC]], %[[M]] fastmath<contract> : f32
// CHECK-COUNT-8:   tensor.extract %[[XIN]]
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
