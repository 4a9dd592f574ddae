// RUN: qc opt %s -split-input-file -p qc-winograd-conv | FileCheck %s

// A 3x3 stride-1 convolution of 32 -> 32 channels on a 16x16 map takes
// F(4x4, 3x3) (4x4 = 16 tiles of 4x4 outputs): the input transform reads
// each tile's 6x6 window (rows 4*th + i, columns 4*tw + j) into
// V[36, C, N, TH, TW] against the 36x6x6 products of B^T's rows; 36 GEMMs
// of the transformed weights [36, F, C] by V viewed as [36, C, N*TH*TW];
// the output transform adds each 4x4 block into the convolution's init.
// CHECK-DAG:   #[[WIN:.+]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d2, d1, d3 * 4 + d5, d4 * 4 + d6)>
// CHECK-DAG:   #[[BB:.+]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d0, d5, d6)>
// CHECK-DAG:   #[[TILE:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d4, d1, d0, d2 floordiv 4, d3 floordiv 4)>
// CHECK-DAG:   #[[WITHIN:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d2 mod 4, d3 mod 4, d4)>
// CHECK-LABEL: func.func @f4
// CHECK-SAME:    %[[X:[a-z0-9]+]]: tensor<1x32x18x18xf32>, %[[INIT:[a-z0-9]+]]: tensor<1x32x16x16xf32>
// CHECK:         %[[ZV:.+]] = linalg.fill {{.*}} -> tensor<36x32x1x4x4xf32>
// CHECK:         %[[V:.+]] = linalg.generic {indexing_maps = [#[[WIN]], #[[BB]], {{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "reduction", "reduction"]} ins(%[[X]], %{{.+}} : tensor<1x32x18x18xf32>, tensor<36x6x6xf32>) outs(%[[ZV]] : tensor<36x32x1x4x4xf32>) attrs = {qc.winograd = "input"}
// CHECK:         %[[VM:.+]] = tensor.collapse_shape %[[V]] {{\[}}[0], [1], [2, 3, 4]] : tensor<36x32x1x4x4xf32> into tensor<36x32x16xf32>
// CHECK:         %[[M:.+]] = linalg.batch_matmul ins(%{{.+}}, %[[VM]] : tensor<36x32x32xf32>, tensor<36x32x16xf32>)
// CHECK:         %[[M5:.+]] = tensor.expand_shape %[[M]] {{\[}}[0], [1], [2, 3, 4]]
// CHECK:         %[[Y:.+]] = linalg.generic {indexing_maps = [#[[TILE]], #[[WITHIN]], {{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel", "reduction"]} ins(%[[M5]], %{{.+}} : tensor<36x32x1x4x4xf32>, tensor<4x4x36xf32>) outs(%[[INIT]] : tensor<1x32x16x16xf32>) attrs = {qc.winograd = "output"}
// CHECK-NOT:     linalg.conv_2d_nchw_fchw
// CHECK:         return %[[Y]]
func.func @f4(%x: tensor<1x32x18x18xf32>, %init: tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x18x18xf32>, tensor<32x32x3x3xf32>) outs(%init : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  return %0 : tensor<1x32x16x16xf32>
}

// -----

// A 12x12 map has 9 tiles of 4x4, too few: it takes F(2x2, 3x3), 6x6 = 36
// tiles of 2x2 outputs, each read from a 4x4 window (rows 2*th + i, columns
// 2*tw + j) into V[16, C, N, TH, TW]; 16 GEMMs; each 2x2 block added into
// the init.
// CHECK-DAG:   #[[WIN:.+]] = affine_map<(d0, d1, d2, d3, d4, d5, d6) -> (d2, d1, d3 * 2 + d5, d4 * 2 + d6)>
// CHECK-DAG:   #[[TILE:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d4, d1, d0, d2 floordiv 2, d3 floordiv 2)>
// CHECK-DAG:   #[[PARITY:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d2 mod 2, d3 mod 2, d4)>
// CHECK-LABEL: func.func @f2
// CHECK-SAME:    %[[X:[a-z0-9]+]]: tensor<1x32x14x14xf32>, %[[INIT:[a-z0-9]+]]: tensor<1x32x12x12xf32>
// CHECK:         %[[V:.+]] = linalg.generic {indexing_maps = [#[[WIN]], {{.+}}]{{.*}} ins(%[[X]], %{{.+}} : tensor<1x32x14x14xf32>, tensor<16x4x4xf32>) outs(%{{.+}} : tensor<16x32x1x6x6xf32>) attrs = {qc.winograd = "input"}
// CHECK:         %[[VM:.+]] = tensor.collapse_shape %[[V]] {{\[}}[0], [1], [2, 3, 4]] : tensor<16x32x1x6x6xf32> into tensor<16x32x36xf32>
// CHECK:         linalg.batch_matmul ins(%{{.+}}, %[[VM]] : tensor<16x32x32xf32>, tensor<16x32x36xf32>)
// CHECK:         %[[Y:.+]] = linalg.generic {indexing_maps = [#[[TILE]], #[[PARITY]], {{.+}}]{{.*}} ins(%{{.+}}, %{{.+}} : tensor<16x32x1x6x6xf32>, tensor<2x2x16xf32>) outs(%[[INIT]] : tensor<1x32x12x12xf32>) attrs = {qc.winograd = "output"}
// CHECK:         return %[[Y]]
func.func @f2(%x: tensor<1x32x14x14xf32>, %init: tensor<1x32x12x12xf32>) -> tensor<1x32x12x12xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x14x14xf32>, tensor<32x32x3x3xf32>) outs(%init : tensor<1x32x12x12xf32>) -> tensor<1x32x12x12xf32>
  return %0 : tensor<1x32x12x12xf32>
}

// -----

// A map that is not a multiple of the tile (15x13 outputs, F(4x4, 3x3): 4x4
// tiles): the input gets one more zero row and 3 more zero columns, the
// output is computed 16x16 into a padded init and sliced.
// CHECK-LABEL: func.func @odd
// CHECK-SAME:    %[[X:[a-z0-9]+]]: tensor<2x32x17x15xf32>, %[[INIT:[a-z0-9]+]]: tensor<2x32x15x13xf32>
// CHECK:         %[[XP:.+]] = tensor.pad %[[X]] low[0, 0, 0, 0] high[0, 0, 1, 3]
// CHECK:         tensor<2x32x17x15xf32> to tensor<2x32x18x18xf32>
// CHECK:         %[[IP:.+]] = tensor.pad %[[INIT]] low[0, 0, 0, 0] high[0, 0, 1, 3]
// CHECK:         linalg.generic {{.*}} ins(%[[XP]], %{{.+}} : tensor<2x32x18x18xf32>, tensor<36x6x6xf32>) outs(%{{.+}} : tensor<36x32x2x4x4xf32>)
// CHECK:         linalg.batch_matmul ins(%{{.+}}, %{{.+}} : tensor<36x32x32xf32>, tensor<36x32x32xf32>)
// CHECK:         %[[Y:.+]] = linalg.generic {{.*}} outs(%[[IP]] : tensor<2x32x16x16xf32>)
// CHECK:         %[[S:.+]] = tensor.extract_slice %[[Y]][0, 0, 0, 0] [2, 32, 15, 13] [1, 1, 1, 1]
// CHECK:         return %[[S]]
func.func @odd(%x: tensor<2x32x17x15xf32>, %init: tensor<2x32x15x13xf32>) -> tensor<2x32x15x13xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<2x32x17x15xf32>, tensor<32x32x3x3xf32>) outs(%init : tensor<2x32x15x13xf32>) -> tensor<2x32x15x13xf32>
  return %0 : tensor<2x32x15x13xf32>
}

// -----

// The same map with a bias broadcast as the init: the broadcast is computed
// again at the padded shape (16x16), not padded, so that qc-winograd-loops
// folds it into the output transform; the pixels it adds read the bias too.
// CHECK-DAG:   #[[CH:.+]] = affine_map<(d0, d1, d2, d3) -> (d1)>
// CHECK-DAG:   #[[ID:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @odd_bias
// CHECK-SAME:    %[[BIAS:[a-z0-9]+]]: tensor<32xf32>
// CHECK-NOT:     tensor.pad %{{.+}} low[0, 0, 0, 0] high[0, 0, 1, 3] {{.*}}tensor<2x32x15x13xf32>
// CHECK:         %[[E:.+]] = tensor.empty() : tensor<2x32x16x16xf32>
// CHECK:         %[[B16:.+]] = linalg.generic {indexing_maps = [#[[CH]], #[[ID]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%[[BIAS]] : tensor<32xf32>) outs(%[[E]] : tensor<2x32x16x16xf32>)
// CHECK-NEXT:    ^bb0(%[[IN:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT:      linalg.yield %[[IN]] : f32
// CHECK:         linalg.generic {{.*}} outs(%[[B16]] : tensor<2x32x16x16xf32>) attrs = {qc.winograd = "output"}
// CHECK:         tensor.extract_slice {{.*}} [2, 32, 15, 13]
func.func @odd_bias(%x: tensor<2x32x17x15xf32>, %bias: tensor<32xf32>) -> tensor<2x32x15x13xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %e = tensor.empty() : tensor<2x32x15x13xf32>
  %b = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d1)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
                       iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
         ins(%bias : tensor<32xf32>) outs(%e : tensor<2x32x15x13xf32>) {
  ^bb0(%in: f32, %out: f32):
    linalg.yield %in : f32
  } -> tensor<2x32x15x13xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<2x32x17x15xf32>, tensor<32x32x3x3xf32>) outs(%b : tensor<2x32x15x13xf32>) -> tensor<2x32x15x13xf32>
  return %0 : tensor<2x32x15x13xf32>
}

// -----

// A splat fill as the init (a constant bias): filled again at 16x16.
// CHECK-LABEL: func.func @odd_fill
// CHECK:         %[[C:.+]] = arith.constant 5.000000e-01 : f32
// CHECK-NOT:     tensor.pad %{{.+}} low[0, 0, 0, 0] high[0, 0, 1, 3] {{.*}}tensor<2x32x15x13xf32>
// CHECK:         %[[F16:.+]] = linalg.fill ins(%[[C]] : f32) outs(%{{.+}} : tensor<2x32x16x16xf32>)
// CHECK:         linalg.generic {{.*}} outs(%[[F16]] : tensor<2x32x16x16xf32>) attrs = {qc.winograd = "output"}
func.func @odd_fill(%x: tensor<2x32x17x15xf32>) -> tensor<2x32x15x13xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %c = arith.constant 0.5 : f32
  %e = tensor.empty() : tensor<2x32x15x13xf32>
  %b = linalg.fill ins(%c : f32) outs(%e : tensor<2x32x15x13xf32>) -> tensor<2x32x15x13xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<2x32x17x15xf32>, tensor<32x32x3x3xf32>) outs(%b : tensor<2x32x15x13xf32>) -> tensor<2x32x15x13xf32>
  return %0 : tensor<2x32x15x13xf32>
}

// -----

// Left as convolutions: stride 2, a 5x5 filter, too few channels (16 < 32),
// too few tiles (8x8 outputs: 4 of 4x4 < 16, 16 of 2x2 < 32), weights
// computed at run time.
// CHECK-LABEL: func.func @kept
// CHECK-NOT:     qc.winograd
// CHECK-COUNT-5: linalg.conv_2d_nchw_fchw
// CHECK-NOT:     linalg.batch_matmul
func.func @kept(%x: tensor<1x32x18x18xf32>, %x16: tensor<1x16x18x18xf32>, %x10: tensor<1x32x10x10xf32>,
                %wr: tensor<32x32x3x3xf32>, %i8: tensor<1x32x8x8xf32>, %i14: tensor<1x32x14x14xf32>,
                %i16: tensor<1x32x16x16xf32>) -> (tensor<1x32x8x8xf32>, tensor<1x32x14x14xf32>, tensor<1x32x16x16xf32>,
                                                  tensor<1x32x8x8xf32>, tensor<1x32x16x16xf32>) {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %w5 = arith.constant dense<1.0> : tensor<32x32x5x5xf32>
  %w16 = arith.constant dense<1.0> : tensor<32x16x3x3xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x18x18xf32>, tensor<32x32x3x3xf32>) outs(%i8 : tensor<1x32x8x8xf32>) -> tensor<1x32x8x8xf32>
  %1 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w5 : tensor<1x32x18x18xf32>, tensor<32x32x5x5xf32>) outs(%i14 : tensor<1x32x14x14xf32>) -> tensor<1x32x14x14xf32>
  %2 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x16, %w16 : tensor<1x16x18x18xf32>, tensor<32x16x3x3xf32>) outs(%i16 : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  %3 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x10, %w : tensor<1x32x10x10xf32>, tensor<32x32x3x3xf32>) outs(%i8 : tensor<1x32x8x8xf32>) -> tensor<1x32x8x8xf32>
  %4 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %wr : tensor<1x32x18x18xf32>, tensor<32x32x3x3xf32>) outs(%i16 : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  return %0, %1, %2, %3, %4 : tensor<1x32x8x8xf32>, tensor<1x32x14x14xf32>, tensor<1x32x16x16xf32>, tensor<1x32x8x8xf32>, tensor<1x32x16x16xf32>
}
