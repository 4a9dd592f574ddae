// RUN: qc opt %s -p qc-round-to-integer --split-input-file | FileCheck %s

// A round half to even that only feeds a conversion to an integer is one
// lrint (vcvtps2dq on x86), for scalars and vectors.
// CHECK-LABEL: llvm.func @quantize
// CHECK-NOT:   llvm.intr.roundeven
// CHECK:       %[[S:.*]] = llvm.intr.lrint(%arg0) : (f32) -> i32
// CHECK:       %[[V:.*]] = llvm.intr.lrint(%arg1) : (vector<16xf32>) -> vector<16xi32>
// CHECK-NOT:   llvm.fptosi
// CHECK:       llvm.return
llvm.func @quantize(%x: f32, %v: vector<16xf32>) -> vector<16xi32> {
  %r = llvm.intr.roundeven(%x) : (f32) -> f32
  %i = llvm.fptosi %r : f32 to i32
  %rv = llvm.intr.roundeven(%v) : (vector<16xf32>) -> vector<16xf32>
  %iv = llvm.fptosi %rv : vector<16xf32> to vector<16xi32>
  %c0 = llvm.mlir.constant(0 : i64) : i64
  %ins = llvm.insertelement %i, %iv[%c0 : i64] : vector<16xi32>
  llvm.return %ins : vector<16xi32>
}

// -----

// The rounded value has another use (kept as a float): both ops stay. A
// truncating conversion without the round is not a rounding one either.
// CHECK-LABEL: llvm.func @shared
// CHECK:       llvm.intr.roundeven
// CHECK:       llvm.fptosi
// CHECK:       llvm.fptosi
// CHECK-NOT:   llvm.intr.lrint
llvm.func @shared(%x: f32, %y: f32) -> f32 {
  %r = llvm.intr.roundeven(%x) : (f32) -> f32
  %i = llvm.fptosi %r : f32 to i32
  %j = llvm.fptosi %y : f32 to i32
  %k = llvm.add %i, %j : i32
  %f = llvm.sitofp %k : i32 to f32
  %s = llvm.fadd %f, %r : f32
  llvm.return %s : f32
}
