// RUN: qc opt %s -p qc-bufferize | FileCheck %s

// The caller owns the inputs: a matmul accumulating into an input tensor
// copies it into the output first and never writes the argument.
// CHECK-LABEL: func.func @qc_model
// CHECK-SAME:    (%[[A:.+]]: memref<4x8xf32>, %[[B:.+]]: memref<8x3xf32>, %[[C:.+]]: memref<4x3xf32>, %[[OUT:.+]]: memref<4x3xf32>)
// CHECK:         linalg.copy {{.*}}ins(%[[C]] : memref<4x3xf32>) outs(%[[OUT]] : memref<4x3xf32>)
// CHECK-NEXT:    linalg.matmul ins(%[[A]], %[[B]] : {{.+}}) outs(%[[OUT]] : memref<4x3xf32>)
func.func @qc_model(%a: tensor<4x8xf32>, %b: tensor<8x3xf32>, %c: tensor<4x3xf32>) -> tensor<4x3xf32> {
  %m = linalg.matmul ins(%a, %b : tensor<4x8xf32>, tensor<8x3xf32>) outs(%c : tensor<4x3xf32>) -> tensor<4x3xf32>
  return %m : tensor<4x3xf32>
}
