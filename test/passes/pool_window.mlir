// RUN: qc opt %s -split-input-file -p qc-pool-window | FileCheck %s

// A 3x3 stride-2 max pool becomes an all-parallel generic over the output
// with the window unrolled: the body reads x at (n, c, 2*oh + i, 2*ow + j)
// from the loop indices and keeps the running max (x > acc ? x : acc),
// starting from the init's constant fill (the lowest float), so the fill
// is gone and the output is written once.
// CHECK-LABEL: func.func @max_s2
// CHECK-SAME:    (%[[X:.+]]: tensor<1x4x9x9xf32>)
// CHECK-NOT:     linalg.fill
// CHECK:         %[[E:.+]] = tensor.empty() : tensor<1x4x4x4xf32>
// CHECK:         linalg.generic {indexing_maps = [#{{.+}}], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      outs(%[[E]] : tensor<1x4x4x4xf32>)
// CHECK:         ^bb0(%{{.+}}: f32):
// CHECK:           %[[N:.+]] = linalg.index 0 : index
// CHECK:           %[[C:.+]] = linalg.index 1 : index
// CHECK:           %[[H:.+]] = linalg.index 2 : index
// CHECK:           %[[W:.+]] = linalg.index 3 : index
// CHECK:           %[[TWO:.+]] = arith.constant 2 : index
// CHECK:           %[[H2:.+]] = arith.muli %[[H]], %[[TWO]] : index
// CHECK:           %[[TWO2:.+]] = arith.constant 2 : index
// CHECK:           %[[W2:.+]] = arith.muli %[[W]], %[[TWO2]] : index
// CHECK:           %[[R:.+]] = arith.addi %[[H2]], %{{.+}} : index
// CHECK:           %[[S:.+]] = arith.addi %[[W2]], %{{.+}} : index
// CHECK:           %[[P:.+]] = tensor.extract %[[X]][%[[N]], %[[C]], %[[R]], %[[S]]] : tensor<1x4x9x9xf32>
// CHECK:           %[[GT:.+]] = arith.cmpf ogt, %[[P]], %[[LOW:.+]] : f32
// CHECK:           %[[M:.+]] = arith.select %[[GT]], %[[P]], %[[LOW]] : f32
// CHECK:           %[[Q:.+]] = tensor.extract %[[X]]
// CHECK:           %[[GT2:.+]] = arith.cmpf ogt, %[[Q]], %[[M]] : f32
// CHECK:           arith.select %[[GT2]], %[[Q]], %[[M]] : f32
// CHECK-COUNT-7:   tensor.extract %[[X]]
// CHECK-NOT:     linalg.pooling_nchw_max
func.func @max_s2(%x: tensor<1x4x9x9xf32>) -> tensor<1x4x4x4xf32> {
  %low = arith.constant -3.40282347E+38 : f32
  %e = tensor.empty() : tensor<1x4x4x4xf32>
  %init = linalg.fill ins(%low : f32) outs(%e : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %win = tensor.empty() : tensor<3x3xf32>
  %0 = linalg.pooling_nchw_max {dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>}
         ins(%x, %win : tensor<1x4x9x9xf32>, tensor<3x3xf32>) outs(%init : tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  return %0 : tensor<1x4x4x4xf32>
}

// -----

// A sum pool (AveragePool's, before its division) with dilation 2 and an
// init that is not a constant fill: the sum starts from the init's value
// (the block's argument) and adds the taps in (kh, kw) order, at rows and
// columns oh + 2*i, ow + 2*j.
// CHECK-LABEL: func.func @sum_dilated
// CHECK-SAME:    (%[[X:.+]]: tensor<1x2x6x7xf32>, %[[INIT:.+]]: tensor<1x2x4x5xf32>)
// CHECK:         linalg.generic {{.*}} outs(%[[INIT]] : tensor<1x2x4x5xf32>)
// CHECK:         ^bb0(%[[ACC:.+]]: f32):
// CHECK:           %[[P0:.+]] = tensor.extract %[[X]]
// CHECK:           %[[S0:.+]] = arith.addf %[[ACC]], %[[P0]] : f32
// CHECK:           %[[P1:.+]] = tensor.extract %[[X]]
// CHECK:           %[[S1:.+]] = arith.addf %[[S0]], %[[P1]] : f32
// CHECK-COUNT-2:   tensor.extract %[[X]]
// CHECK-NOT:       tensor.extract
// CHECK:           linalg.yield
// CHECK-NOT:     linalg.pooling_nchw_sum
func.func @sum_dilated(%x: tensor<1x2x6x7xf32>, %init: tensor<1x2x4x5xf32>) -> tensor<1x2x4x5xf32> {
  %win = tensor.empty() : tensor<2x2xf32>
  %0 = linalg.pooling_nchw_sum {dilations = dense<2> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %win : tensor<1x2x6x7xf32>, tensor<2x2xf32>) outs(%init : tensor<1x2x4x5xf32>) -> tensor<1x2x4x5xf32>
  return %0 : tensor<1x2x4x5xf32>
}

// -----

// Integer pooling (a QLinear model's MaxPool on uint8) is left to the loops.
// CHECK-LABEL: func.func @int_max
// CHECK:         linalg.pooling_nchw_max
func.func @int_max(%x: tensor<1x2x5x5xi8>, %init: tensor<1x2x3x3xi8>) -> tensor<1x2x3x3xi8> {
  %win = tensor.empty() : tensor<3x3xi8>
  %0 = linalg.pooling_nchw_max {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %win : tensor<1x2x5x5xi8>, tensor<3x3xi8>) outs(%init : tensor<1x2x3x3xi8>) -> tensor<1x2x3x3xi8>
  return %0 : tensor<1x2x3x3xi8>
}
