// RUN: qc opt %s -p qc-bool-memory --split-input-file | FileCheck %s
// RUN: qc opt %s -p qc-bool-memory,qc-lower-to-scf,qc-lower-to-llvm --split-input-file | FileCheck %s --check-prefix=LLVM

// Arguments become byte buffers; a load reads a byte and truncates it, a
// store zero-extends the bool it writes.
// CHECK-LABEL: func.func @signature
// CHECK-SAME:    (%[[X:.+]]: memref<5xi8>, %[[Y:.+]]: memref<5xi8>)
// CHECK:         affine.for %[[I:.+]] = 0 to 5 {
// CHECK-NEXT:      %[[BYTE:.+]] = affine.load %[[X]][%[[I]]] : memref<5xi8>
// CHECK-NEXT:      %[[B:.+]] = arith.trunci %[[BYTE]] : i8 to i1
// CHECK-NEXT:      %[[N:.+]] = arith.xori %[[B]], %{{.+}} : i1
// CHECK-NEXT:      %[[OUT:.+]] = arith.extui %[[N]] : i1 to i8
// CHECK-NEXT:      affine.store %[[OUT]], %[[Y]][%[[I]]] : memref<5xi8>
// CHECK-NOT:     xi1>
// The lowering to LLVM, which asserts on i1 memory, goes through; memory
// holds i8 only.
// LLVM-LABEL: llvm.func internal @signature
// LLVM-NOT:    llvm.load {{.*}} -> i1
// LLVM-NOT:    llvm.store {{.*}} : i1,
// LLVM:        llvm.load %{{.+}} : !llvm.ptr -> i8
// LLVM:        llvm.store %{{.+}}, %{{.+}} : i8, !llvm.ptr
func.func @signature(%x: memref<5xi1>, %y: memref<5xi1>) {
  %true = arith.constant true
  affine.for %i = 0 to 5 {
    %b = affine.load %x[%i] : memref<5xi1>
    %n = arith.xori %b, %true : i1
    affine.store %n, %y[%i] : memref<5xi1>
  }
  return
}

// -----

// A bool stored as it was loaded (Transpose, Reshape, Identity) moves the
// byte: no trunci/extui pair.
// CHECK-LABEL: func.func @copy
// CHECK-SAME:    (%[[X:.+]]: memref<2x3xi8>, %[[Y:.+]]: memref<3x2xi8>)
// CHECK:         %[[BYTE:.+]] = affine.load %[[X]][%{{.+}}, %{{.+}}] : memref<2x3xi8>
// CHECK-NEXT:    affine.store %[[BYTE]], %[[Y]][%{{.+}}, %{{.+}}] : memref<3x2xi8>
// CHECK-NOT:     arith.trunci
// LLVM-LABEL: llvm.func internal @copy
func.func @copy(%x: memref<2x3xi1>, %y: memref<3x2xi1>) {
  affine.for %i = 0 to 3 {
    affine.for %j = 0 to 2 {
      %b = affine.load %x[%j, %i] : memref<2x3xi1>
      affine.store %b, %y[%i, %j] : memref<3x2xi1>
    }
  }
  return
}

// -----

// Globals keep their name, alignment and values, as bytes 1 and 0; a splat
// stays a splat.
// CHECK:       memref.global "private" constant @mask : memref<2xi8> = dense<[1, 0]> {alignment = 64 : i64}
// CHECK:       memref.global "private" constant @ones : memref<4xi8> = dense<1>
// CHECK-LABEL: func.func @global
// CHECK-SAME:    (%[[Y:.+]]: memref<2xi8>, %[[Z:.+]]: memref<4xi8>)
// CHECK:         %[[M:.+]] = memref.get_global @mask : memref<2xi8>
// CHECK:         %[[O:.+]] = memref.get_global @ones : memref<4xi8>
// CHECK:         %[[MB:.+]] = memref.load %[[M]][%{{.+}}] : memref<2xi8>
// CHECK:         %[[MBIT:.+]] = arith.trunci %[[MB]] : i8 to i1
// CHECK:         memref.store %[[MB]], %[[Y]]
// CHECK:         %[[OB:.+]] = memref.load %[[O]][%{{.+}}] : memref<4xi8>
// CHECK:         %[[OBIT:.+]] = arith.trunci %[[OB]] : i8 to i1
// CHECK:         %[[N:.+]] = arith.xori %[[MBIT]], %[[OBIT]] : i1
// CHECK:         %[[NB:.+]] = arith.extui %[[N]] : i1 to i8
// CHECK:         memref.store %[[NB]], %[[Z]]
// LLVM:        llvm.mlir.global private constant @mask(dense<[1, 0]> : tensor<2xi8>) {addr_space = 0 : i32, alignment = 64 : i64} : !llvm.array<2 x i8>
// LLVM-LABEL: llvm.func internal @global
memref.global "private" constant @mask : memref<2xi1> = dense<[true, false]> {alignment = 64 : i64}
memref.global "private" constant @ones : memref<4xi1> = dense<true>
func.func @global(%y: memref<2xi1>, %z: memref<4xi1>) {
  %m = memref.get_global @mask : memref<2xi1>
  %o = memref.get_global @ones : memref<4xi1>
  %c0 = arith.constant 0 : index
  %b = memref.load %m[%c0] : memref<2xi1>
  memref.store %b, %y[%c0] : memref<2xi1>
  %c = memref.load %o[%c0] : memref<4xi1>
  %n = arith.xori %b, %c : i1
  memref.store %n, %z[%c0] : memref<4xi1>
  return
}

// -----

// An intermediate bool buffer (a comparison whose result feeds a later
// nest) is allocated as bytes.
// CHECK-LABEL: func.func @alloc
// CHECK:         %[[T:.+]] = memref.alloc() {alignment = 64 : i64} : memref<8xi8>
// CHECK:         %[[S:.+]] = memref.alloca() : memref<8xi8>
// CHECK:         %[[P:.+]] = arith.cmpf ogt
// CHECK-NEXT:    %[[PB:.+]] = arith.extui %[[P]] : i1 to i8
// CHECK-NEXT:    affine.store %[[PB]], %[[T]][%{{.+}}] : memref<8xi8>
// CHECK:         %[[QB:.+]] = affine.load %[[T]][%{{.+}}] : memref<8xi8>
// CHECK-NEXT:    %[[Q:.+]] = arith.trunci %[[QB]] : i8 to i1
// CHECK:         arith.select %[[Q]]
// LLVM-LABEL: llvm.func internal @alloc
func.func @alloc(%x: memref<8xf32>, %y: memref<8xf32>) {
  %t = memref.alloc() {alignment = 64 : i64} : memref<8xi1>
  %s = memref.alloca() : memref<8xi1>
  %zero = arith.constant 0.0 : f32
  affine.for %i = 0 to 8 {
    %a = affine.load %x[%i] : memref<8xf32>
    %p = arith.cmpf ogt, %a, %zero : f32
    affine.store %p, %t[%i] : memref<8xi1>
  }
  affine.for %i = 0 to 8 {
    %p = affine.load %t[%i] : memref<8xi1>
    %a = affine.load %x[%i] : memref<8xf32>
    %r = arith.select %p, %a, %zero : f32
    affine.store %r, %y[%i] : memref<8xf32>
  }
  return
}

// -----

// Views keep their shapes, offsets and strides, counted in elements: one
// byte each.
// CHECK-LABEL: func.func @views
// CHECK-SAME:    (%[[X:.+]]: memref<2x6xi8>) -> i1
// CHECK:         %[[SUB:.+]] = memref.subview %[[X]][0, 1] [2, 4] [1, 1] : memref<2x6xi8> to memref<2x4xi8, strided<[6, 1], offset: 1>>
// CHECK:         %[[COL:.+]] = memref.collapse_shape %[[X]] {{\[}}[0, 1]] : memref<2x6xi8> into memref<12xi8>
// CHECK:         %[[EXP:.+]] = memref.expand_shape %[[COL]] {{\[}}[0, 1, 2]] output_shape [2, 3, 2] : memref<12xi8> into memref<2x3x2xi8>
// CHECK:         %[[DYN:.+]] = memref.cast %[[COL]] : memref<12xi8> to memref<?xi8>
// CHECK:         %[[RE:.+]] = memref.reinterpret_cast %[[X]] to offset: [0], sizes: [3, 4], strides: [4, 1] : memref<2x6xi8> to memref<3x4xi8>
// CHECK:         memref.load %[[SUB]]{{.+}} : memref<2x4xi8, strided<[6, 1], offset: 1>>
// CHECK-NEXT:    arith.trunci
// CHECK:         memref.load %[[EXP]]{{.+}} : memref<2x3x2xi8>
// CHECK-NEXT:    arith.trunci
// CHECK:         memref.load %[[DYN]]{{.+}} : memref<?xi8>
// CHECK-NEXT:    arith.trunci
// CHECK:         memref.load %[[RE]]{{.+}} : memref<3x4xi8>
// CHECK-NEXT:    arith.trunci
// LLVM-LABEL: llvm.func internal @views
func.func @views(%x: memref<2x6xi1>) -> i1 {
  %c0 = arith.constant 0 : index
  %sub = memref.subview %x[0, 1] [2, 4] [1, 1] : memref<2x6xi1> to memref<2x4xi1, strided<[6, 1], offset: 1>>
  %col = memref.collapse_shape %x [[0, 1]] : memref<2x6xi1> into memref<12xi1>
  %exp = memref.expand_shape %col [[0, 1, 2]] output_shape [2, 3, 2] : memref<12xi1> into memref<2x3x2xi1>
  %dyn = memref.cast %col : memref<12xi1> to memref<?xi1>
  %re = memref.reinterpret_cast %x to offset: [0], sizes: [3, 4], strides: [4, 1] : memref<2x6xi1> to memref<3x4xi1>
  %a = memref.load %sub[%c0, %c0] : memref<2x4xi1, strided<[6, 1], offset: 1>>
  %b = memref.load %exp[%c0, %c0, %c0] : memref<2x3x2xi1>
  %c = memref.load %dyn[%c0] : memref<?xi1>
  %d = memref.load %re[%c0, %c0] : memref<3x4xi1>
  %ab = arith.andi %a, %b : i1
  %cd = arith.andi %c, %d : i1
  %r = arith.andi %ab, %cd : i1
  return %r : i1
}

// -----

// Private functions (qc-outline-ops' loop nests), their calls and
// declarations change together; scalar i1 arguments stay i1.
// CHECK-LABEL: func.func @caller
// CHECK-SAME:    (%[[X:.+]]: memref<4xi8>, %[[Y:.+]]: memref<4xi8>)
// CHECK:         call @callee(%[[X]], %[[Y]]) : (memref<4xi8>, memref<4xi8>) -> ()
// CHECK-LABEL: func.func private @callee
// CHECK-SAME:    (%[[A:.+]]: memref<4xi8>, %[[B:.+]]: memref<4xi8>)
// CHECK:         memref.copy %[[A]], %[[B]] : memref<4xi8> to memref<4xi8>
// CHECK:       func.func private @extern(memref<?xi8>, i1) -> memref<4xi8>
func.func @caller(%x: memref<4xi1>, %y: memref<4xi1>) {
  call @callee(%x, %y) : (memref<4xi1>, memref<4xi1>) -> ()
  return
}
func.func private @callee(%x: memref<4xi1>, %y: memref<4xi1>) {
  memref.copy %x, %y : memref<4xi1> to memref<4xi1>
  return
}
func.func private @extern(memref<?xi1>, i1) -> memref<4xi1>

// -----

// Vector loads and stores move vectors of bytes; transfer_read's padding is
// an element, so it is widened too.
// CHECK-LABEL: func.func @vectors
// CHECK-SAME:    (%[[X:.+]]: memref<16xi8>, %[[Y:.+]]: memref<16xi8>)
// CHECK:         %[[VB:.+]] = vector.load %[[X]][%{{.+}}] : memref<16xi8>, vector<8xi8>
// CHECK-NEXT:    %[[V:.+]] = arith.trunci %[[VB]] : vector<8xi8> to vector<8xi1>
// CHECK-NEXT:    %[[N:.+]] = arith.xori %[[V]], %[[V]] : vector<8xi1>
// CHECK-NEXT:    %[[NB:.+]] = arith.extui %[[N]] : vector<8xi1> to vector<8xi8>
// CHECK-NEXT:    vector.store %[[NB]], %[[Y]][%{{.+}}] : memref<16xi8>, vector<8xi8>
// CHECK-NEXT:    %[[PAD:.+]] = arith.extui %{{.+}} : i1 to i8
// CHECK-NEXT:    %[[WB:.+]] = vector.transfer_read %[[X]][%{{.+}}], %[[PAD]] : memref<16xi8>, vector<8xi8>
// CHECK-NEXT:    %[[W:.+]] = arith.trunci %[[WB]] : vector<8xi8> to vector<8xi1>
// CHECK-NEXT:    %[[M:.+]] = arith.xori %[[W]], %[[V]] : vector<8xi1>
// CHECK-NEXT:    %[[MB:.+]] = arith.extui %[[M]] : vector<8xi1> to vector<8xi8>
// CHECK-NEXT:    vector.transfer_write %[[MB]], %[[Y]][%{{.+}}] : vector<8xi8>, memref<16xi8>
// LLVM-LABEL: llvm.func internal @vectors
// LLVM-NOT:    vector<8xi1>, !llvm.ptr
// LLVM:        llvm.load %{{.+}} {alignment = 1 : i64} : !llvm.ptr -> vector<8xi8>
func.func @vectors(%x: memref<16xi1>, %y: memref<16xi1>) {
  %c0 = arith.constant 0 : index
  %false = arith.constant false
  %v = vector.load %x[%c0] : memref<16xi1>, vector<8xi1>
  %n = arith.xori %v, %v : vector<8xi1>
  vector.store %n, %y[%c0] : memref<16xi1>, vector<8xi1>
  %w = vector.transfer_read %x[%c0], %false : memref<16xi1>, vector<8xi1>
  %m = arith.xori %w, %v : vector<8xi1>
  vector.transfer_write %m, %y[%c0] : vector<8xi1>, memref<16xi1>
  return
}
