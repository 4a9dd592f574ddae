// RUN: qc opt %s -split-input-file -p qc-qdepthwise-conv | FileCheck %s

// int8 depthwise, stride 2: loops (n, c, kh, kw, oh, ow), the input read along
// the output row; each product of two sign-extended int8 values is exact in
// i16 ([-16256, 16384]) and sign-extended into the i32 sum.
// CHECK-DAG:   #[[X:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 * 2 + d2, d5 * 2 + d3)>
// CHECK-DAG:   #[[W:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d1, d2, d3)>
// CHECK-DAG:   #[[Y:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4, d5)>
// CHECK-LABEL: func.func @depthwise_s8
// CHECK:         linalg.generic {indexing_maps = [#[[X]], #[[W]], #[[Y]]], iterator_types = ["parallel", "parallel", "reduction", "reduction", "parallel", "parallel"]}
// CHECK:         ^bb0(%[[P:.+]]: i8, %[[Q:.+]]: i8, %[[ACC:.+]]: i32):
// CHECK:           %[[P16:.+]] = arith.extsi %[[P]] : i8 to i16
// CHECK:           %[[Q16:.+]] = arith.extsi %[[Q]] : i8 to i16
// CHECK:           %[[M:.+]] = arith.muli %[[P16]], %[[Q16]] : i16
// CHECK:           %[[M32:.+]] = arith.extsi %[[M]] : i16 to i32
// CHECK:           arith.addi %[[ACC]], %[[M32]] : i32
// CHECK-NOT:     linalg.depthwise_conv_2d_nchw_chw
func.func @depthwise_s8(%x: tensor<1x4x9x9xi8>, %w: tensor<4x3x3xi8>, %init: tensor<1x4x4x4xi32>) -> tensor<1x4x4x4xi32> {
  %0 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %w : tensor<1x4x9x9xi8>, tensor<4x3x3xi8>) outs(%init : tensor<1x4x4x4xi32>) -> tensor<1x4x4x4xi32>
  return %0 : tensor<1x4x4x4xi32>
}

// -----

// Floats are qc-depthwise-conv's.
// CHECK-LABEL: func.func @depthwise_f32
// CHECK:         linalg.depthwise_conv_2d_nchw_chw
func.func @depthwise_f32(%x: tensor<1x4x9x9xf32>, %w: tensor<4x3x3xf32>, %init: tensor<1x4x7x7xf32>) -> tensor<1x4x7x7xf32> {
  %0 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x4x9x9xf32>, tensor<4x3x3xf32>) outs(%init : tensor<1x4x7x7xf32>) -> tensor<1x4x7x7xf32>
  return %0 : tensor<1x4x7x7xf32>
}
