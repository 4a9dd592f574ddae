// RUN: qc opt %s -split-input-file -p qc-qdepthwise-conv | FileCheck %s

// int8 depthwise, stride 2: one all-parallel loop nest over the output; the
// body reads the 9 taps of x at (n, c, 2*oh + i, 2*ow + j) from the loop
// indices and w at (c, i, j) as operands; each product of two sign-extended
// int8 values is exact in i16 ([-16256, 16384]) and sign-extended into the
// i32 sum, which starts from the init as it is not a constant fill.
// CHECK-DAG:   #[[W00:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
// CHECK-DAG:   #[[W22:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, 2, 2)>
// CHECK-DAG:   #[[Y:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @depthwise_s8
// CHECK-SAME:    (%[[XIN:.+]]: tensor<1x4x9x9xi8>, %[[WIN:.+]]: tensor<4x3x3xi8>, %[[INIT:.+]]: tensor<1x4x4x4xi32>)
// CHECK:         linalg.generic {indexing_maps = [#[[W00]], {{.*}}, #[[W22]], #[[Y]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[WIN]], {{.*}}, %[[WIN]] : {{.*}}) outs(%[[INIT]] : tensor<1x4x4x4xi32>)
// CHECK:         ^bb0(%[[Q:[a-z0-9_]+]]: i8, {{.*}}, %[[ACC:[a-z0-9_]+]]: i32):
// CHECK:           %[[P:.+]] = tensor.extract %[[XIN]][{{.*}}] : tensor<1x4x9x9xi8>
// CHECK:           %[[P16:.+]] = arith.extsi %[[P]] : i8 to i16
// CHECK:           %[[Q16:.+]] = arith.extsi %[[Q]] : i8 to i16
// CHECK:           %[[M:.+]] = arith.muli %[[P16]], %[[Q16]] : i16
// CHECK:           %[[M32:.+]] = arith.extsi %[[M]] : i16 to i32
// CHECK:           arith.addi %[[ACC]], %[[M32]] : i32
// CHECK-COUNT-8:   arith.muli %{{.+}}, %{{.+}} : i16
// CHECK-NOT:     linalg.depthwise_conv_2d_nchw_chw
func.func @depthwise_s8(%x: tensor<1x4x9x9xi8>, %w: tensor<4x3x3xi8>, %init: tensor<1x4x4x4xi32>) -> tensor<1x4x4x4xi32> {
  %0 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %w : tensor<1x4x9x9xi8>, tensor<4x3x3xi8>) outs(%init : tensor<1x4x4x4xi32>) -> tensor<1x4x4x4xi32>
  return %0 : tensor<1x4x4x4xi32>
}

// -----

// Stride 1 from a zero fill: the sum starts at the fill's constant and the
// output is a fresh tensor, so the fill is gone (no memset before the loop).
// CHECK-LABEL: func.func @depthwise_from_zero
// CHECK:         %[[ZERO:.+]] = arith.constant 0 : i32
// CHECK-NOT:     linalg.fill
// CHECK:         %[[E:.+]] = tensor.empty() : tensor<1x2x5x5xi32>
// CHECK-NOT:     linalg.fill
// CHECK:         linalg.generic {{.*}} outs(%[[E]] : tensor<1x2x5x5xi32>)
// CHECK:           %[[M:.+]] = arith.extsi %{{.+}} : i16 to i32
// CHECK:           arith.addi %[[ZERO]], %[[M]] : i32
func.func @depthwise_from_zero(%x: tensor<1x2x7x7xi8>, %w: tensor<2x3x3xi8>) -> tensor<1x2x5x5xi32> {
  %zero = arith.constant 0 : i32
  %e = tensor.empty() : tensor<1x2x5x5xi32>
  %init = linalg.fill ins(%zero : i32) outs(%e : tensor<1x2x5x5xi32>) -> tensor<1x2x5x5xi32>
  %0 = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x2x7x7xi8>, tensor<2x3x3xi8>) outs(%init : tensor<1x2x5x5xi32>) -> tensor<1x2x5x5xi32>
  return %0 : tensor<1x2x5x5xi32>
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
