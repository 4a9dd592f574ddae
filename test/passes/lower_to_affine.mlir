// RUN: qc opt %s -p qc-lower-to-affine --split-input-file | FileCheck %s
// RUN: qc opt %s -p 'qc-lower-to-affine{fuse=true}' --split-input-file | FileCheck %s --check-prefix=FUSE

// Each linalg op becomes one affine.for nest, one loop per iteration dim;
// the intermediate buffer is written by the first nest and read by the second.
// CHECK-LABEL: func.func @two_elementwise
// CHECK-SAME:    (%[[X:.+]]: memref<4x8xf32>, %[[OUT:.+]]: memref<4x8xf32>)
// CHECK:         %[[TMP:.+]] = memref.alloc() : memref<4x8xf32>
// CHECK:         affine.for %[[I:.+]] = 0 to 4 {
// CHECK-NEXT:      affine.for %[[J:.+]] = 0 to 8 {
// CHECK-NEXT:        %[[A:.+]] = affine.load %[[X]][%[[I]], %[[J]]] : memref<4x8xf32>
// CHECK-NEXT:        %[[T:.+]] = math.tanh %[[A]] : f32
// CHECK-NEXT:        affine.store %[[T]], %[[TMP]][%[[I]], %[[J]]] : memref<4x8xf32>
// CHECK:         affine.for %[[I2:.+]] = 0 to 4 {
// CHECK-NEXT:      affine.for %[[J2:.+]] = 0 to 8 {
// CHECK-NEXT:        %[[B:.+]] = affine.load %[[TMP]][%[[I2]], %[[J2]]]
// CHECK-NEXT:        %[[C:.+]] = affine.load %[[X]][%[[I2]], %[[J2]]]
// CHECK-NEXT:        %[[P:.+]] = arith.mulf %[[B]], %[[C]] : f32
// CHECK-NEXT:        affine.store %[[P]], %[[OUT]][%[[I2]], %[[J2]]]
// CHECK-NOT:     linalg.

// With fusion the two nests become one and the intermediate disappears:
// tanh's result goes straight to the multiply (scalar replacement).
// FUSE-LABEL: func.func @two_elementwise
// FUSE-SAME:    (%[[X:.+]]: memref<4x8xf32>, %[[OUT:.+]]: memref<4x8xf32>)
// FUSE-NOT:     memref.alloc
// FUSE:         affine.for %[[I:.+]] = 0 to 4 {
// FUSE-NEXT:      affine.for %[[J:.+]] = 0 to 8 {
// FUSE-NEXT:        %[[A:.+]] = affine.load %[[X]][%[[I]], %[[J]]]
// FUSE-NEXT:        %[[T:.+]] = math.tanh %[[A]] : f32
// FUSE-NEXT:        %[[P:.+]] = arith.mulf %[[T]], %[[A]] : f32
// FUSE-NEXT:        affine.store %[[P]], %[[OUT]][%[[I]], %[[J]]]
// FUSE-NEXT:      }
// FUSE-NEXT:    }
// FUSE-NEXT:    return
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @two_elementwise(%x: memref<4x8xf32>, %out: memref<4x8xf32>) {
  %tmp = memref.alloc() : memref<4x8xf32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<4x8xf32>) outs(%tmp : memref<4x8xf32>) {
  ^bb0(%i: f32, %o: f32):
    %v = math.tanh %i : f32
    linalg.yield %v : f32
  }
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%tmp, %x : memref<4x8xf32>, memref<4x8xf32>) outs(%out : memref<4x8xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %v = arith.mulf %i, %j : f32
    linalg.yield %v : f32
  }
  return
}

// -----

// A matmul is an (m, n, k) nest that accumulates into the output buffer.
// CHECK-LABEL: func.func @matmul
// CHECK-SAME:    (%[[A:.+]]: memref<4x8xf32>, %[[B:.+]]: memref<8x3xf32>, %[[C:.+]]: memref<4x3xf32>)
// CHECK:         affine.for %[[M:.+]] = 0 to 4 {
// CHECK-NEXT:      affine.for %[[N:.+]] = 0 to 3 {
// CHECK-NEXT:        affine.for %[[K:.+]] = 0 to 8 {
// CHECK-DAG:           %[[X:.+]] = affine.load %[[A]][%[[M]], %[[K]]]
// CHECK-DAG:           %[[Y:.+]] = affine.load %[[B]][%[[K]], %[[N]]]
// CHECK-DAG:           %[[ACC:.+]] = affine.load %[[C]][%[[M]], %[[N]]]
// CHECK:               %[[P:.+]] = arith.mulf %[[X]], %[[Y]] : f32
// CHECK-NEXT:          %[[S:.+]] = arith.addf %[[ACC]], %[[P]] : f32
// CHECK-NEXT:          affine.store %[[S]], %[[C]][%[[M]], %[[N]]]
// FUSE-LABEL: func.func @matmul
func.func @matmul(%a: memref<4x8xf32>, %b: memref<8x3xf32>, %c: memref<4x3xf32>) {
  linalg.matmul ins(%a, %b : memref<4x8xf32>, memref<8x3xf32>) outs(%c : memref<4x3xf32>)
  return
}
