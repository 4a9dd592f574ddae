// RUN: qc opt %s -split-input-file -p qc-qconv-to-gemm | FileCheck %s

// int8 x int8 (the named op, which sign-extends both): im2col on the 8-bit
// input, tagged for qc-lower-qgemm's gather, then the contraction with the
// weights [F, C*KH*KW], accumulated in i32.
// CHECK-DAG:   #[[IM2COL:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 * 2 + d2, d5 * 2 + d3)>
// CHECK-DAG:   #[[A:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
// CHECK-DAG:   #[[B:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>
// CHECK-DAG:   #[[C:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @conv_s8
// CHECK:         %[[COL:.+]] = linalg.generic {indexing_maps = [#[[IM2COL]], {{.+}}]{{.*}}outs(%{{.+}} : tensor<1x4x3x3x4x4xi8>) attrs = {qc.im2col = array<i64: 3, 3, 2, 2, 1, 1>}
// CHECK:         %[[COL2:.+]] = tensor.collapse_shape %[[COL]] {{\[}}[0], [1, 2, 3], [4, 5]] : tensor<1x4x3x3x4x4xi8> into tensor<1x36x16xi8>
// CHECK:         %[[W2:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0], [1, 2, 3]] : tensor<8x4x3x3xi8> into tensor<8x36xi8>
// CHECK:         %[[GEMM:.+]] = linalg.generic {indexing_maps = [#[[A]], #[[B]], #[[C]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[W2]], %[[COL2]] : tensor<8x36xi8>, tensor<1x36x16xi8>) outs(%{{.+}} : tensor<1x8x16xi32>)
// CHECK:         ^bb0(%[[P:.+]]: i8, %[[Q:.+]]: i8, %[[ACC:.+]]: i32):
// CHECK:           %[[PW:.+]] = arith.extsi %[[P]] : i8 to i32
// CHECK:           %[[QW:.+]] = arith.extsi %[[Q]] : i8 to i32
// CHECK:           %[[M:.+]] = arith.muli %[[PW]], %[[QW]] : i32
// CHECK:           arith.addi %[[ACC]], %[[M]] : i32
// CHECK:         tensor.expand_shape %[[GEMM]] {{\[}}[0], [1], [2, 3]] {{.*}} : tensor<1x8x16xi32> into tensor<1x8x4x4xi32>
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
func.func @conv_s8(%x: tensor<1x4x9x9xi8>, %w: tensor<8x4x3x3xi8>, %init: tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32> {
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %w : tensor<1x4x9x9xi8>, tensor<8x4x3x3xi8>) outs(%init : tensor<1x8x4x4xi32>) -> tensor<1x8x4x4xi32>
  return %0 : tensor<1x8x4x4xi32>
}

// -----

// uint8 activations x int8 weights: the frontend's generic convolution
// (loops n, f, oh, ow, c, kh, kw; dilation 2) keeps its extensions: the
// weights sign-extended, the image columns zero-extended.
// CHECK-DAG:   #[[IM2COL:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 + d2 * 2, d5 + d3 * 2)>
// CHECK-LABEL: func.func @conv_u8s8_generic
// CHECK:         linalg.generic {indexing_maps = [#[[IM2COL]], {{.+}}]{{.*}}outs(%{{.+}} : tensor<1x2x3x3x5x5xi8>) attrs = {qc.im2col = array<i64: 3, 3, 1, 1, 2, 2>}
// CHECK:         linalg.generic {{.*}} ins(%{{.+}}, %{{.+}} : tensor<3x18xi8>, tensor<1x18x25xi8>) outs(%{{.+}} : tensor<1x3x25xi32>)
// CHECK:         ^bb0(%[[P:.+]]: i8, %[[Q:.+]]: i8, %{{.+}}: i32):
// CHECK:           arith.extsi %[[P]] : i8 to i32
// CHECK:           arith.extui %[[Q]] : i8 to i32
// CHECK-NOT:     iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]
#x = affine_map<(n, f, oh, ow, c, kh, kw) -> (n, c, oh + kh * 2, ow + kw * 2)>
#w = affine_map<(n, f, oh, ow, c, kh, kw) -> (f, c, kh, kw)>
#y = affine_map<(n, f, oh, ow, c, kh, kw) -> (n, f, oh, ow)>
func.func @conv_u8s8_generic(%x: tensor<1x2x9x9xi8>, %w: tensor<3x2x3x3xi8>, %init: tensor<1x3x5x5xi32>) -> tensor<1x3x5x5xi32> {
  %0 = linalg.generic {indexing_maps = [#x, #w, #y],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]}
      ins(%x, %w : tensor<1x2x9x9xi8>, tensor<3x2x3x3xi8>) outs(%init : tensor<1x3x5x5xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %1 = arith.extui %a : i8 to i32
    %2 = arith.extsi %b : i8 to i32
    %3 = arith.muli %1, %2 : i32
    %4 = arith.addi %acc, %3 : i32
    linalg.yield %4 : i32
  } -> tensor<1x3x5x5xi32>
  return %0 : tensor<1x3x5x5xi32>
}

// -----

// 1x1, stride 1: no copy, the 8-bit input itself is the [C, H*W] matrix.
// CHECK-LABEL: func.func @conv1x1_s8
// CHECK-SAME:    %[[X:[a-z0-9]+]]: tensor<1x16x7x7xi8>
// CHECK-NOT:     qc.im2col
// CHECK:         tensor.collapse_shape %[[X]] {{\[}}[0], [1], [2, 3]] : tensor<1x16x7x7xi8> into tensor<1x16x49xi8>
// CHECK:         linalg.generic {{.*}} outs(%{{.+}} : tensor<1x32x49xi32>)
func.func @conv1x1_s8(%x: tensor<1x16x7x7xi8>, %w: tensor<32x16x1x1xi8>, %init: tensor<1x32x7x7xi32>) -> tensor<1x32x7x7xi32> {
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x16x7x7xi8>, tensor<32x16x1x1xi8>) outs(%init : tensor<1x32x7x7xi32>) -> tensor<1x32x7x7xi32>
  return %0 : tensor<1x32x7x7xi32>
}

// -----

// Left alone: f32 (qc-conv-to-gemm's), and a generic whose payload is not a
// product of extended 8-bit values (a window sum of the input).
// CHECK-LABEL: func.func @not_int8
// CHECK:         linalg.conv_2d_nchw_fchw
// CHECK:         linalg.generic
// CHECK-SAME:      iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]
// CHECK-NOT:     qc.im2col
func.func @not_int8(%x: tensor<1x2x9x9xf32>, %w: tensor<3x2x3x3xf32>, %init: tensor<1x3x7x7xf32>,
                    %xi: tensor<1x2x9x9xi8>, %wi: tensor<3x2x3x3xi8>, %initi: tensor<1x3x7x7xi32>)
    -> (tensor<1x3x7x7xf32>, tensor<1x3x7x7xi32>) {
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x2x9x9xf32>, tensor<3x2x3x3xf32>) outs(%init : tensor<1x3x7x7xf32>) -> tensor<1x3x7x7xf32>
  %1 = linalg.generic {indexing_maps = [affine_map<(n, f, oh, ow, c, kh, kw) -> (n, c, oh + kh, ow + kw)>,
                                        affine_map<(n, f, oh, ow, c, kh, kw) -> (f, c, kh, kw)>,
                                        affine_map<(n, f, oh, ow, c, kh, kw) -> (n, f, oh, ow)>],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction", "reduction", "reduction"]}
      ins(%xi, %wi : tensor<1x2x9x9xi8>, tensor<3x2x3x3xi8>) outs(%initi : tensor<1x3x7x7xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %2 = arith.extsi %a : i8 to i32
    %3 = arith.addi %acc, %2 : i32
    linalg.yield %3 : i32
  } -> tensor<1x3x7x7xi32>
  return %0, %1 : tensor<1x3x7x7xf32>, tensor<1x3x7x7xi32>
}
