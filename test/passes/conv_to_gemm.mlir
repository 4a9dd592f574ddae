// RUN: qc opt %s -split-input-file -p qc-conv-to-gemm | FileCheck %s

// 3x3, stride 2: an im2col copy (the input indexed by oh*2 + kh, ow*2 + kw),
// viewed as [N, C*KH*KW, OH*OW], then the product with the [F, C*KH*KW] weights.
// CHECK-DAG:   #[[IM2COL:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 * 2 + d2, d5 * 2 + d3)>
// CHECK-DAG:   #[[A:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d3)>
// CHECK-DAG:   #[[B:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>
// CHECK-DAG:   #[[C:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @conv3x3_s2
// CHECK:         %[[COL:.+]] = linalg.generic {indexing_maps = [#[[IM2COL]], {{.+}}]{{.*}}outs(%{{.+}} : tensor<2x4x3x3x4x4xf32>)
// CHECK:         %[[COL2:.+]] = tensor.collapse_shape %[[COL]] {{\[}}[0], [1, 2, 3], [4, 5]] : tensor<2x4x3x3x4x4xf32> into tensor<2x36x16xf32>
// CHECK:         %[[W2:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0], [1, 2, 3]] : tensor<8x4x3x3xf32> into tensor<8x36xf32>
// CHECK:         %[[GEMM:.+]] = linalg.generic {indexing_maps = [#[[A]], #[[B]], #[[C]]], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[W2]], %[[COL2]] : tensor<8x36xf32>, tensor<2x36x16xf32>)
// CHECK:           arith.mulf
// CHECK:           arith.addf
// CHECK:         tensor.expand_shape %[[GEMM]] {{\[}}[0], [1], [2, 3]] {{.*}} : tensor<2x8x16xf32> into tensor<2x8x4x4xf32>
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
func.func @conv3x3_s2(%x: tensor<2x4x9x9xf32>, %w: tensor<8x4x3x3xf32>, %init: tensor<2x8x4x4xf32>) -> tensor<2x8x4x4xf32> {
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %w : tensor<2x4x9x9xf32>, tensor<8x4x3x3xf32>) outs(%init : tensor<2x8x4x4xf32>) -> tensor<2x8x4x4xf32>
  return %0 : tensor<2x8x4x4xf32>
}

// -----

// 1x1, stride 1: no copy, the input itself is the [C, H*W] matrix.
// CHECK-LABEL: func.func @conv1x1
// CHECK-SAME:    %[[X:[a-z0-9]+]]: tensor<1x16x7x7xf32>
// CHECK-NOT:     linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]
// CHECK:         tensor.collapse_shape %[[X]] {{\[}}[0], [1], [2, 3]] : tensor<1x16x7x7xf32> into tensor<1x16x49xf32>
// CHECK:         linalg.generic
// CHECK-SAME:      iterator_types = ["parallel", "parallel", "parallel", "reduction"]
func.func @conv1x1(%x: tensor<1x16x7x7xf32>, %w: tensor<32x16x1x1xf32>, %init: tensor<1x32x7x7xf32>) -> tensor<1x32x7x7xf32> {
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x16x7x7xf32>, tensor<32x16x1x1xf32>) outs(%init : tensor<1x32x7x7xf32>) -> tensor<1x32x7x7xf32>
  return %0 : tensor<1x32x7x7xf32>
}

// -----

// Dilation 2 reads the input every other pixel within the window.
// CHECK: affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 + d2 * 2, d5 + d3 * 2)>
// CHECK-LABEL: func.func @dilated
func.func @dilated(%x: tensor<1x2x9x9xf32>, %w: tensor<3x2x3x3xf32>, %init: tensor<1x3x5x5xf32>) -> tensor<1x3x5x5xf32> {
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<2> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x2x9x9xf32>, tensor<3x2x3x3xf32>) outs(%init : tensor<1x3x5x5xf32>) -> tensor<1x3x5x5xf32>
  return %0 : tensor<1x3x5x5xf32>
}

// -----

// A grouped 3x3 conv, stride 2, of one image (2 groups of 4 channels, 6
// filters each): the image viewed as [G, C, H, W], so that the groups are the
// batch of the im2col copy, then a batch of GEMMs over the groups with each
// group's [F, C*KH*KW] weights. A batch of two images stays a loop nest.
// CHECK-DAG:   #[[GCOL:.+]] = affine_map<(d0, d1, d2, d3, d4, d5) -> (d0, d1, d4 * 2 + d2, d5 * 2 + d3)>
// CHECK-DAG:   #[[GA:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3)>
// CHECK-DAG:   #[[GB:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>
// CHECK-LABEL: func.func @grouped3x3_s2
// CHECK:         %[[XG:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3], [4]] : tensor<1x2x4x9x9xf32> into tensor<2x4x9x9xf32>
// CHECK:         %[[COL:.+]] = linalg.generic {indexing_maps = [#[[GCOL]], {{.+}}]{{.*}}ins(%[[XG]] : tensor<2x4x9x9xf32>) outs(%{{.+}} : tensor<2x4x3x3x4x4xf32>)
// CHECK:         %[[COL2:.+]] = tensor.collapse_shape %[[COL]] {{\[}}[0], [1, 2, 3], [4, 5]] : tensor<2x4x3x3x4x4xf32> into tensor<2x36x16xf32>
// CHECK:         %[[W2:.+]] = tensor.collapse_shape %{{.+}} {{\[}}[0], [1], [2, 3, 4]] : tensor<2x6x4x3x3xf32> into tensor<2x6x36xf32>
// CHECK:         %[[GEMM:.+]] = linalg.generic {indexing_maps = [#[[GA]], #[[GB]], {{.+}}], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%[[W2]], %[[COL2]] : tensor<2x6x36xf32>, tensor<2x36x16xf32>)
// CHECK:         tensor.expand_shape %[[GEMM]] {{\[}}[0, 1], [2], [3, 4]] {{.*}} : tensor<2x6x16xf32> into tensor<1x2x6x4x4xf32>
// CHECK-LABEL: func.func @grouped_batch2
// CHECK:         linalg.conv_2d_ngchw_gfchw
func.func @grouped3x3_s2(%x: tensor<1x2x4x9x9xf32>, %w: tensor<2x6x4x3x3xf32>, %init: tensor<1x2x6x4x4xf32>) -> tensor<1x2x6x4x4xf32> {
  %0 = linalg.conv_2d_ngchw_gfchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %w : tensor<1x2x4x9x9xf32>, tensor<2x6x4x3x3xf32>) outs(%init : tensor<1x2x6x4x4xf32>) -> tensor<1x2x6x4x4xf32>
  return %0 : tensor<1x2x6x4x4xf32>
}
func.func @grouped_batch2(%x: tensor<2x2x4x9x9xf32>, %w: tensor<2x6x4x3x3xf32>, %init: tensor<2x2x6x4x4xf32>) -> tensor<2x2x6x4x4xf32> {
  %0 = linalg.conv_2d_ngchw_gfchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %w : tensor<2x2x4x9x9xf32>, tensor<2x6x4x3x3xf32>) outs(%init : tensor<2x2x6x4x4xf32>) -> tensor<2x2x6x4x4xf32>
  return %0 : tensor<2x2x6x4x4xf32>
}
