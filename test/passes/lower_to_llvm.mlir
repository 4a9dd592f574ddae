// RUN: qc opt %s -p qc-lower-to-llvm --split-input-file | FileCheck %s

// Bare-pointer convention: each static memref argument becomes one !llvm.ptr
// (no descriptor structs, no extra offset/size/stride arguments), so the
// entry is `void qc_model(float *x, float *out)` for the C runtime. An
// intermediate buffer becomes malloc/free; element addresses are
// getelementptr with row-major offsets (i * 8 + j).
// CHECK-DAG:     llvm.func @malloc(i64) -> !llvm.ptr
// CHECK-DAG:     llvm.func @free(!llvm.ptr)
// CHECK-LABEL: llvm.func @qc_model
// CHECK-SAME:    (%[[X:[^:]+]]: !llvm.ptr, %[[OUT:[^:]+]]: !llvm.ptr) {
// CHECK-NOT:     llvm.struct
// CHECK:         %[[TMP:.+]] = llvm.call @malloc
// CHECK:         %[[ROW:.+]] = llvm.mul %[[I:.+]], %[[C8:.+]] overflow<nsw, nuw> : i64
// CHECK-NEXT:    %[[IDX:.+]] = llvm.add %[[ROW]], %{{.+}} overflow<nsw, nuw> : i64
// CHECK-NEXT:    %[[P:.+]] = llvm.getelementptr inbounds|nuw %[[X]][%[[IDX]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT:    llvm.load %[[P]] : !llvm.ptr -> f32
// CHECK:         llvm.store %{{.+}}, %{{.+}} : f32, !llvm.ptr
// CHECK:         llvm.call @free(%[[TMP]])
// CHECK-NEXT:    llvm.return{{$}}
// CHECK-NOT:     memref.
// CHECK-NOT:     scf.
// CHECK-NOT:     func.func
func.func @qc_model(%x: memref<4x8xf32>, %out: memref<4x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %tmp = memref.alloc() : memref<4x8xf32>
  scf.for %i = %c0 to %c4 step %c1 {
    scf.for %j = %c0 to %c8 step %c1 {
      %a = memref.load %x[%i, %j] : memref<4x8xf32>
      %t = math.tanh %a : f32
      memref.store %t, %tmp[%i, %j] : memref<4x8xf32>
    }
  }
  scf.for %i = %c0 to %c4 step %c1 {
    scf.for %j = %c0 to %c8 step %c1 {
      %b = memref.load %tmp[%i, %j] : memref<4x8xf32>
      %c = memref.load %x[%i, %j] : memref<4x8xf32>
      %p = arith.mulf %b, %c : f32
      memref.store %p, %out[%i, %j] : memref<4x8xf32>
    }
  }
  memref.dealloc %tmp : memref<4x8xf32>
  return
}

// -----

// Rank-0 and integer buffers are plain pointers too; a constant table becomes
// an llvm.mlir.global read through its address.
// CHECK:         llvm.mlir.global private constant @[[G:.+]](dense<[1, 2, 3]> : tensor<3xi32>)
// CHECK-LABEL: llvm.func @qc_model
// CHECK-SAME:    (%[[S:[^:]+]]: !llvm.ptr, %[[OUT:[^:]+]]: !llvm.ptr) {
// CHECK:         llvm.mlir.addressof @[[G]] : !llvm.ptr
// CHECK:         llvm.load %[[S]] : !llvm.ptr -> i32
// CHECK:         llvm.store %{{.+}}, %{{.+}} : i32, !llvm.ptr
memref.global "private" constant @table : memref<3xi32> = dense<[1, 2, 3]>
func.func @qc_model(%s: memref<i32>, %out: memref<3xi32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %t = memref.get_global @table : memref<3xi32>
  %v = memref.load %s[] : memref<i32>
  scf.for %i = %c0 to %c3 step %c1 {
    %a = memref.load %t[%i] : memref<3xi32>
    %b = arith.addi %a, %v : i32
    memref.store %b, %out[%i] : memref<3xi32>
  }
  return
}
