// RUN: qc opt %s -p qc-approximate-math | FileCheck %s

// f32 exp becomes arithmetic: round to n = x/ln2, a polynomial in the
// remainder, and 2^n assembled in the exponent bits (no call to expf).
// CHECK-LABEL: func.func @exp_f32
// CHECK-NOT:     math.exp
// CHECK:         math.roundeven
// CHECK:         arith.fptosi
// CHECK:         arith.shli
// CHECK:         arith.bitcast {{.+}} : i32 to f32
// CHECK:         arith.select
func.func @exp_f32(%x: f32) -> f32 {
  %y = math.exp %x : f32
  return %y : f32
}

// erf: a rational part with exp(-x^2), and a series near zero.
// CHECK-LABEL: func.func @erf_f32
// CHECK-NOT:     math.erf
// CHECK:         math.absf
// CHECK:         arith.divf
// CHECK:         math.copysign
func.func @erf_f32(%x: f32) -> f32 {
  %y = math.erf %x : f32
  return %y : f32
}

// f64 keeps the library call's accuracy.
// CHECK-LABEL: func.func @exp_f64
// CHECK:         math.exp %{{.+}} : f64
func.func @exp_f64(%x: f64) -> f64 {
  %y = math.exp %x : f64
  return %y : f64
}
