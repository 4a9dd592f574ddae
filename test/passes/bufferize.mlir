// RUN: qc opt %s -p qc-bufferize --split-input-file | FileCheck %s

// The entry becomes destination-passing: the result is an out-parameter and
// the matmul writes straight into it (no copy, no alloc).
// CHECK-LABEL: func.func @qc_model
// CHECK-SAME:    (%[[A:.+]]: memref<4x8xf32>, %[[B:.+]]: memref<8x3xf32>, %[[OUT:.+]]: memref<4x3xf32>)
// CHECK-NOT:     memref.alloc
// CHECK:         linalg.fill ins(%{{.+}} : f32) outs(%[[OUT]] : memref<4x3xf32>)
// CHECK:         linalg.matmul ins(%[[A]], %[[B]] : memref<4x8xf32>, memref<8x3xf32>) outs(%[[OUT]] : memref<4x3xf32>)
// CHECK-NEXT:    return
// CHECK-NOT:     memref.copy
func.func @qc_model(%a: tensor<4x8xf32>, %b: tensor<8x3xf32>) -> tensor<4x3xf32> {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x3xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<4x3xf32>) -> tensor<4x3xf32>
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x3xf32>) outs(%f : tensor<4x3xf32>) -> tensor<4x3xf32>
  return %m : tensor<4x3xf32>
}

// -----

// Two computed outputs and one that is an input. Each result becomes an
// out-parameter after the inputs, in result order; the computed ones are
// written in place (the second generic reads the first output's buffer), the
// input is copied into its out-parameter. Nothing is allocated.
// CHECK-LABEL: func.func @qc_model
// CHECK-SAME:    (%[[X:.+]]: memref<8xf32>, %[[O1:.+]]: memref<8xf32>, %[[O2:.+]]: memref<8xf32>, %[[O3:.+]]: memref<8xf32>)
// CHECK-NOT:     -> 
// CHECK-NOT:     memref.alloc
// CHECK:         linalg.generic {{.+}} ins(%[[X]] : memref<8xf32>) outs(%[[O1]] : memref<8xf32>)
// CHECK:           math.tanh
// CHECK:         linalg.generic {{.+}} ins(%[[O1]] : memref<8xf32>) outs(%[[O2]] : memref<8xf32>)
// CHECK:           arith.mulf
// CHECK:         {{memref|linalg}}.copy {{.*}}%[[X]]{{.*}}%[[O3]]
// CHECK-NEXT:    return{{$}}
#id = affine_map<(d0) -> (d0)>
func.func @qc_model(%x: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>, tensor<8xf32>) {
  %e0 = tensor.empty() : tensor<8xf32>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%x : tensor<8xf32>) outs(%e0 : tensor<8xf32>) {
  ^bb0(%i: f32, %o: f32):
    %v = math.tanh %i : f32
    linalg.yield %v : f32
  } -> tensor<8xf32>
  %e1 = tensor.empty() : tensor<8xf32>
  %y = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%t : tensor<8xf32>) outs(%e1 : tensor<8xf32>) {
  ^bb0(%i: f32, %o: f32):
    %v = arith.mulf %i, %i : f32
    linalg.yield %v : f32
  } -> tensor<8xf32>
  return %t, %y, %x : tensor<8xf32>, tensor<8xf32>, tensor<8xf32>
}

// -----

// An intermediate that is not a result stays a memref.alloc.
// CHECK-LABEL: func.func @qc_model
// CHECK-SAME:    (%[[X:.+]]: memref<8xf32>, %[[OUT:.+]]: memref<8xf32>)
// CHECK:         %[[TMP:.+]] = memref.alloc() {{.*}}: memref<8xf32>
// CHECK:         linalg.generic {{.+}} ins(%[[X]] : memref<8xf32>) outs(%[[TMP]] : memref<8xf32>)
// CHECK:         linalg.generic {{.+}} ins(%[[TMP]], %[[X]] : memref<8xf32>, memref<8xf32>) outs(%[[OUT]] : memref<8xf32>)
#id = affine_map<(d0) -> (d0)>
func.func @qc_model(%x: tensor<8xf32>) -> tensor<8xf32> {
  %e0 = tensor.empty() : tensor<8xf32>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%x : tensor<8xf32>) outs(%e0 : tensor<8xf32>) {
  ^bb0(%i: f32, %o: f32):
    %v = math.tanh %i : f32
    linalg.yield %v : f32
  } -> tensor<8xf32>
  %e1 = tensor.empty() : tensor<8xf32>
  %y = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}
      ins(%t, %x : tensor<8xf32>, tensor<8xf32>) outs(%e1 : tensor<8xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %v = arith.mulf %i, %j : f32
    linalg.yield %v : f32
  } -> tensor<8xf32>
  return %y : tensor<8xf32>
}
