// RUN: qc opt %s -p qc-lower-to-scf --split-input-file | FileCheck %s

// affine.for becomes scf.for over index constants, affine.load/store become
// memref.load/store, and the intermediate buffer is freed after its last use
// (the second nest), before the return.
// CHECK-LABEL: func.func @intermediate
// CHECK-SAME:    (%[[X:.+]]: memref<4x8xf32>, %[[OUT:.+]]: memref<4x8xf32>)
// CHECK-DAG:     %[[C0:.+]] = arith.constant 0 : index
// CHECK-DAG:     %[[C1:.+]] = arith.constant 1 : index
// CHECK-DAG:     %[[C4:.+]] = arith.constant 4 : index
// CHECK-DAG:     %[[C8:.+]] = arith.constant 8 : index
// CHECK:         %[[TMP:.+]] = memref.alloc() : memref<4x8xf32>
// CHECK:         scf.for %[[I:.+]] = %[[C0]] to %[[C4]] step %[[C1]] {
// CHECK-NEXT:      scf.for %[[J:.+]] = %[[C0]] to %[[C8]] step %[[C1]] {
// CHECK-NEXT:        memref.load %[[X]][%[[I]], %[[J]]]
// CHECK:             memref.store %{{.+}}, %[[TMP]][%[[I]], %[[J]]]
// CHECK-NOT:     memref.dealloc
// CHECK:         scf.for
// CHECK:             memref.load %[[TMP]]
// CHECK:             memref.store %{{.+}}, %[[OUT]]
// CHECK:         memref.dealloc %[[TMP]] : memref<4x8xf32>
// CHECK-NEXT:    return
// CHECK-NOT:     affine.
func.func @intermediate(%x: memref<4x8xf32>, %out: memref<4x8xf32>) {
  %tmp = memref.alloc() : memref<4x8xf32>
  affine.for %i = 0 to 4 {
    affine.for %j = 0 to 8 {
      %a = affine.load %x[%i, %j] : memref<4x8xf32>
      %t = math.tanh %a : f32
      affine.store %t, %tmp[%i, %j] : memref<4x8xf32>
    }
  }
  affine.for %i = 0 to 4 {
    affine.for %j = 0 to 8 {
      %b = affine.load %tmp[%i, %j] : memref<4x8xf32>
      %c = affine.load %x[%i, %j] : memref<4x8xf32>
      %p = arith.mulf %b, %c : f32
      affine.store %p, %out[%i, %j] : memref<4x8xf32>
    }
  }
  return
}

// -----

// Arguments are the caller's buffers: never freed. An affine map in an index
// becomes index arithmetic.
// CHECK-LABEL: func.func @no_alloc
// CHECK-SAME:    (%[[X:.+]]: memref<8xf32>, %[[OUT:.+]]: memref<4xf32>)
// CHECK-NOT:     memref.dealloc
// CHECK:         scf.for %[[I:.+]] =
// CHECK:           %[[TWICE:.+]] = arith.muli %[[I]], %{{.+}} : index
// CHECK:           memref.load %[[X]][%[[TWICE]]]
// CHECK-NOT:     memref.dealloc
// CHECK-NOT:     affine.
func.func @no_alloc(%x: memref<8xf32>, %out: memref<4xf32>) {
  affine.for %i = 0 to 4 {
    %a = affine.load %x[%i * 2] : memref<8xf32>
    affine.store %a, %out[%i] : memref<4xf32>
  }
  return
}
