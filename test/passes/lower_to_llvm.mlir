// RUN: qc opt %s -p qc-lower-to-llvm --split-input-file | FileCheck %s

// Memref arguments use the standard descriptor convention: a rank-2 memref is
// (allocated ptr, aligned ptr, offset, size0, size1, stride0, stride1). The
// entry also gets a C wrapper taking one pointer per descriptor, in argument
// order (inputs, then outputs): that is the only signature the runtime calls,
// and it has pointer arguments only. An intermediate buffer comes from the
// runtime's allocator (which reuses buffers across runs); element addresses are getelementptr on the aligned pointer with
// row-major offsets (i * 8 + j).
// CHECK-DAG:     llvm.func @_mlir_memref_to_llvm_alloc(i64) -> !llvm.ptr
// CHECK-DAG:     llvm.func @_mlir_memref_to_llvm_free(!llvm.ptr)
// CHECK-LABEL: llvm.func @qc_model
// CHECK-SAME:    (%{{[^:]+}}: !llvm.ptr, %[[X:[^:]+]]: !llvm.ptr, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64,
// CHECK-SAME:     %{{[^:]+}}: !llvm.ptr, %[[OUT:[^:]+]]: !llvm.ptr, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64, %{{[^:]+}}: i64)
// CHECK-SAME:    attributes {llvm.emit_c_interface}
// CHECK:         %[[TMP:.+]] = llvm.call @_mlir_memref_to_llvm_alloc
// CHECK:         %[[ROW:.+]] = llvm.mul %{{.+}}, %{{.+}} overflow<nsw, nuw> : i64
// CHECK-NEXT:    %[[IDX:.+]] = llvm.add %[[ROW]], %{{.+}} overflow<nsw, nuw> : i64
// CHECK-NEXT:    %[[P:.+]] = llvm.getelementptr inbounds|nuw %[[X]][%[[IDX]]] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK-NEXT:    llvm.load %[[P]] : !llvm.ptr -> f32
// CHECK:         llvm.getelementptr inbounds|nuw %[[OUT]][%{{.+}}] : (!llvm.ptr, i64) -> !llvm.ptr, f32
// CHECK:         llvm.call @_mlir_memref_to_llvm_free(%[[TMP]])
// CHECK-NEXT:    llvm.return{{$}}

// The C wrapper unpacks each descriptor and calls the entry.
// CHECK-LABEL: llvm.func @_mlir_ciface_qc_model
// CHECK-SAME:    (%[[DX:[^:]+]]: !llvm.ptr, %[[DOUT:[^:]+]]: !llvm.ptr) attributes {llvm.emit_c_interface}
// CHECK:         llvm.load %[[DX]] : !llvm.ptr -> !llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>
// CHECK:         llvm.load %[[DOUT]] : !llvm.ptr -> !llvm.struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>
// CHECK:         llvm.call @qc_model(
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

// Functions other than the entry (outlined loop nests) are internal and
// noinline, and get no C wrapper. A constant table becomes an
// llvm.mlir.global read through its address.
// CHECK:         llvm.mlir.global private constant @[[G:.+]](dense<[1, 2, 3]> : tensor<3xi32>)
// CHECK-LABEL: llvm.func internal @part
// CHECK-SAME:    passthrough = ["noinline"]
// CHECK:         llvm.mlir.addressof @[[G]] : !llvm.ptr
// CHECK-LABEL: llvm.func @qc_model
// CHECK:         llvm.call @part(
// CHECK-LABEL: llvm.func @_mlir_ciface_qc_model
// CHECK-NOT:     @_mlir_ciface_part
memref.global "private" constant @table : memref<3xi32> = dense<[1, 2, 3]>
func.func private @part(%s: memref<i32>, %out: memref<3xi32>) {
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
func.func @qc_model(%s: memref<i32>, %out: memref<3xi32>) {
  call @part(%s, %out) : (memref<i32>, memref<3xi32>) -> ()
  return
}

// -----

// A function a pass marked (qc-outline-ops' fills: optsize) keeps its
// attributes and is noinline too; an always-inlined helper stays as it is.
// CHECK-LABEL: llvm.func internal @fill
// CHECK-SAME:    passthrough = ["optsize", "noinline"]
// CHECK-LABEL: llvm.func @qc_model
func.func private @fill(%out: memref<16xf32>) attributes {passthrough = ["optsize"]} {
  %zero = arith.constant 0.0 : f32
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  scf.for %i = %c0 to %c16 step %c1 {
    memref.store %zero, %out[%i] : memref<16xf32>
  }
  return
}
func.func @qc_model(%out: memref<16xf32>) {
  call @fill(%out) : (memref<16xf32>) -> ()
  return
}
