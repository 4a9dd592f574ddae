// RUN: qc opt %s -p qc-bufferize | FileCheck %s

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
