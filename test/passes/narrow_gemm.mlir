// RUN: qc opt %s -split-input-file -p qc-narrow-gemm | FileCheck %s

// A 1x1 convolution to 64 channels on a 7 x 7 map (49 pixels: 7 of 56 lanes
// wasted) becomes Y^T[49, 64] = X^T[49, 16] . W^T[16, 64]: the pixel-major
// gather of X, the matmul with the weights transposed at compile time, the
// bias as a start per column, the Relu moved ahead of the transpose back.
#bias = affine_map<(d0, d1, d2, d3) -> (d1)>
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG:   #[[GATHER:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (0, d2, d0 + d3, d1 + d4)>
// CHECK-DAG:   #[[COL:map[0-9]*]] = affine_map<(d0, d1) -> (d1)>
// CHECK-DAG:   #[[BACK:map[0-9]*]] = affine_map<(d0, d1, d2) -> (d2, d0, d1)>
// CHECK-LABEL: func.func @conv1x1_relu
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK:         %[[XT:.+]] = linalg.generic {indexing_maps = [#[[GATHER]], #{{map[0-9]*}}]{{.+}} ins(%arg0 : tensor<1x16x7x7xf32>) outs(%{{.+}} : tensor<7x7x16x1x1xf32>)
// CHECK:         %[[X2:.+]] = tensor.collapse_shape %[[XT]] {{\[}}[0, 1], [2, 3, 4]] : tensor<7x7x16x1x1xf32> into tensor<49x16xf32>
// CHECK:         %[[WT:.+]] = arith.constant dense<{{.+}}> : tensor<16x64xf32>
// CHECK:         %[[START:.+]] = linalg.generic {indexing_maps = [#[[COL]], #{{map[0-9]*}}]{{.+}} ins(%arg1 : tensor<64xf32>) outs(%{{.+}} : tensor<49x64xf32>)
// CHECK:         %[[YT:.+]] = linalg.matmul ins(%[[X2]], %[[WT]] : tensor<49x16xf32>, tensor<16x64xf32>) outs(%[[START]] : tensor<49x64xf32>)
// CHECK:         %[[R:.+]] = linalg.generic {{.+}} ins(%[[YT]] : tensor<49x64xf32>) outs(%{{.+}} : tensor<49x64xf32>)
// CHECK:           arith.maximumf %{{.+}}, %{{.+}} fastmath<nsz> : f32
// CHECK:         %[[R3:.+]] = tensor.expand_shape %[[R]] {{\[}}[0, 1], [2]] output_shape [7, 7, 64]
// CHECK:         %[[D:.+]] = tensor.collapse_shape %[[E:.+]] {{\[}}[0, 1], [2], [3]] : tensor<1x64x7x7xf32> into tensor<64x7x7xf32>
// CHECK:         %[[Y:.+]] = linalg.generic {indexing_maps = [#{{map[0-9]*}}, #[[BACK]]]{{.+}} ins(%[[R3]] : tensor<7x7x64xf32>) outs(%[[D]] : tensor<64x7x7xf32>)
// CHECK:         %[[Y4:.+]] = tensor.expand_shape %[[Y]] {{\[}}[0, 1], [2], [3]] output_shape [1, 64, 7, 7]
// CHECK:         return %[[Y4]]
func.func @conv1x1_relu(%x: tensor<1x16x7x7xf32>, %b: tensor<64xf32>) -> tensor<1x64x7x7xf32> {
  %w = arith.constant dense<0.5> : tensor<64x16x1x1xf32>
  %e = tensor.empty() : tensor<1x64x7x7xf32>
  %init = linalg.generic {indexing_maps = [#bias, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%b : tensor<64xf32>) outs(%e : tensor<1x64x7x7xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  } -> tensor<1x64x7x7xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<1x16x7x7xf32>, tensor<64x16x1x1xf32>) outs(%init : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  %zero = arith.constant 0.0 : f32
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c : tensor<1x64x7x7xf32>) outs(%e : tensor<1x64x7x7xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.maximumf %v, %zero fastmath<nsz> : f32
    linalg.yield %m : f32
  } -> tensor<1x64x7x7xf32>
  return %r : tensor<1x64x7x7xf32>
}

// -----

// The Relu wrote the interior of the next convolution's padded input
// (qc-pad-into-producer): the transpose back, now after it, writes there
// instead, so the padded tensor is built in place, with no copy of Y.
#bias = affine_map<(d0, d1, d2, d3) -> (d1)>
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @conv1x1_relu_into_pad
// CHECK:         %[[F:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<1x64x9x9xf32>)
// CHECK:         %[[S:.+]] = tensor.extract_slice %[[F]][0, 0, 1, 1] [1, 64, 7, 7] [1, 1, 1, 1]
// CHECK:         linalg.matmul
// CHECK:         %[[D:.+]] = tensor.collapse_shape %[[S]] {{\[}}[0, 1], [2], [3]] : tensor<1x64x7x7xf32> into tensor<64x7x7xf32>
// CHECK:         %[[Y:.+]] = linalg.generic {{.+}} ins(%{{.+}} : tensor<7x7x64xf32>) outs(%[[D]] : tensor<64x7x7xf32>)
// CHECK:         %[[Y4:.+]] = tensor.expand_shape %[[Y]] {{\[}}[0, 1], [2], [3]] output_shape [1, 64, 7, 7]
// CHECK:         %[[P:.+]] = tensor.insert_slice %[[Y4]] into %[[F]][0, 0, 1, 1] [1, 64, 7, 7] [1, 1, 1, 1]
// CHECK:         return %[[P]]
func.func @conv1x1_relu_into_pad(%x: tensor<1x16x7x7xf32>, %b: tensor<64xf32>) -> tensor<1x64x9x9xf32> {
  %w = arith.constant dense<0.5> : tensor<64x16x1x1xf32>
  %zero = arith.constant 0.0 : f32
  %ep = tensor.empty() : tensor<1x64x9x9xf32>
  %f = linalg.fill ins(%zero : f32) outs(%ep : tensor<1x64x9x9xf32>) -> tensor<1x64x9x9xf32>
  %s = tensor.extract_slice %f[0, 0, 1, 1] [1, 64, 7, 7] [1, 1, 1, 1] : tensor<1x64x9x9xf32> to tensor<1x64x7x7xf32>
  %e = tensor.empty() : tensor<1x64x7x7xf32>
  %init = linalg.generic {indexing_maps = [#bias, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%b : tensor<64xf32>) outs(%e : tensor<1x64x7x7xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  } -> tensor<1x64x7x7xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<1x16x7x7xf32>, tensor<64x16x1x1xf32>) outs(%init : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%c : tensor<1x64x7x7xf32>) outs(%s : tensor<1x64x7x7xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.maximumf %v, %zero fastmath<nsz> : f32
    linalg.yield %m : f32
  } -> tensor<1x64x7x7xf32>
  %p = tensor.insert_slice %r into %f[0, 0, 1, 1] [1, 64, 7, 7] [1, 1, 1, 1] : tensor<1x64x7x7xf32> into tensor<1x64x9x9xf32>
  return %p : tensor<1x64x9x9xf32>
}

// -----

// A 3x3 stride-2 convolution of a padded 15 x 15 image to 7 x 7: the gather
// reads X[0, c, 2*oh + kh, 2*ow + kw]; the splat start is a fill; without a
// unary op after it the transpose back is the convolution's result.
// CHECK-DAG:   #[[G:map[0-9]*]] = affine_map<(d0, d1, d2, d3, d4) -> (0, d2, d0 * 2 + d3, d1 * 2 + d4)>
// CHECK-LABEL: func.func @conv3x3_stride2
// CHECK:         linalg.generic {indexing_maps = [#[[G]], #{{map[0-9]*}}]{{.+}} outs(%{{.+}} : tensor<7x7x8x3x3xf32>)
// CHECK:         %[[F:.+]] = linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : tensor<49x64xf32>)
// CHECK:         linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<49x72xf32>, tensor<72x64xf32>) outs(%[[F]] : tensor<49x64xf32>)
func.func @conv3x3_stride2(%x: tensor<1x8x15x15xf32>) -> tensor<1x64x7x7xf32> {
  %w = arith.constant dense<0.25> : tensor<64x8x3x3xf32>
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<1x64x7x7xf32>
  %init = linalg.fill ins(%one : f32) outs(%e : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
      ins(%x, %w : tensor<1x8x15x15xf32>, tensor<64x8x3x3xf32>) outs(%init : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  return %c : tensor<1x64x7x7xf32>
}

// -----

// Not taken: 14 x 14 pixels (196 of 200 lanes used), weights that are not
// constant.
// CHECK-LABEL: func.func @kept
// CHECK-COUNT-2: linalg.conv_2d_nchw_fchw
func.func @kept(%x: tensor<1x16x14x14xf32>, %x7: tensor<1x16x7x7xf32>, %w7: tensor<64x16x1x1xf32>)
    -> (tensor<1x64x14x14xf32>, tensor<1x64x7x7xf32>) {
  %w = arith.constant dense<0.5> : tensor<64x16x1x1xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x64x14x14xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %c = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x, %w : tensor<1x16x14x14xf32>, tensor<64x16x1x1xf32>) outs(%init : tensor<1x64x14x14xf32>) -> tensor<1x64x14x14xf32>
  %e7 = tensor.empty() : tensor<1x64x7x7xf32>
  %init7 = linalg.fill ins(%zero : f32) outs(%e7 : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  %c7 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
      ins(%x7, %w7 : tensor<1x16x7x7xf32>, tensor<64x16x1x1xf32>) outs(%init7 : tensor<1x64x7x7xf32>) -> tensor<1x64x7x7xf32>
  return %c, %c7 : tensor<1x64x14x14xf32>, tensor<1x64x7x7xf32>
}
