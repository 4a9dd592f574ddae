// RUN: qc opt %s -p qc-bufferize | FileCheck %s

// One value returned as two outputs (identical nodes merged by CSE): each
// output gets its own out-parameter; the second is a copy of the first.
// CHECK-LABEL: func.func @qc_model
// CHECK-SAME:    (%[[X:.+]]: memref<4xf32>, %[[OUT0:.+]]: memref<4xf32>, %[[OUT1:.+]]: memref<4xf32>)
// CHECK:         linalg.generic {{.+}} ins(%[[X]] : memref<4xf32>) outs(%[[OUT0]] : memref<4xf32>)
// CHECK:         linalg.copy {{.*}}ins(%[[OUT0]] : memref<4xf32>) outs(%[[OUT1]] : memref<4xf32>)
// CHECK-NEXT:    return
#id = affine_map<(d0) -> (d0)>
func.func @qc_model(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%x : tensor<4xf32>) outs(%e : tensor<4xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.maximumf %a, %zero : f32
    linalg.yield %m : f32
  } -> tensor<4xf32>
  return %r, %r : tensor<4xf32>, tensor<4xf32>
}
