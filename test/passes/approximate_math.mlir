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

// erf: x * P(x^2) / Q(x^2) with x clamped to [-4, 4], one division, the
// result clamped to [-1, 1].
// CHECK-LABEL: func.func @erf_f32
// CHECK-NOT:     math.erf
// CHECK:         %[[LO:.+]] = arith.constant -4.000000e+00 : f32
// CHECK:         %[[MAX:.+]] = arith.maximumf %arg0, %[[LO]]
// CHECK:         %[[HI:.+]] = arith.constant 4.000000e+00 : f32
// CHECK:         %[[X:.+]] = arith.minimumf %[[MAX]], %[[HI]]
// CHECK:         %[[T:.+]] = arith.mulf %[[X]], %[[X]]
// CHECK:         %[[P0:.+]] = arith.constant 1.12837911 : f32
// CHECK:         %[[P:.+]] = arith.addf %{{.+}}, %[[P0]] fastmath<contract>
// CHECK:         %[[XP:.+]] = arith.mulf %[[X]], %[[P]]
// CHECK:         %[[Y:.+]] = arith.divf %[[XP]], %{{.+}} : f32
// CHECK:         arith.maximumf %[[Y]]
// CHECK:         arith.minimumf
// CHECK-NOT:     arith.divf
// CHECK:         return
func.func @erf_f32(%x: f32) -> f32 {
  %y = math.erf %x : f32
  return %y : f32
}

// erf(x / 2) (GELU's is erf(x / sqrt(2))): the division by the constant
// folds into the coefficients, x * 0.5 * P(x^2 / 4) / Q(x^2 / 4), and the
// clamp is at 8.
// CHECK-LABEL: func.func @erf_of_quotient
// CHECK-NOT:     math.erf
// CHECK:         %[[LO:.+]] = arith.constant -8.000000e+00 : f32
// CHECK:         arith.maximumf %arg0, %[[LO]]
// CHECK:         arith.constant 8.000000e+00 : f32
// CHECK:         arith.constant 0.564189553 : f32
// CHECK:         arith.divf
// CHECK-NOT:     arith.divf
// CHECK:         return
func.func @erf_of_quotient(%x: f32) -> f32 {
  %c = arith.constant 2.0 : f32
  %d = arith.divf %x, %c : f32
  %y = math.erf %d : f32
  return %y : f32
}

// A quotient with another use stays, and erf reads it.
// CHECK-LABEL: func.func @erf_of_shared_quotient
// CHECK:         %[[D:.+]] = arith.divf %arg0, %{{.+}} : f32
// CHECK:         %[[LO:.+]] = arith.constant -4.000000e+00 : f32
// CHECK:         arith.maximumf %[[D]], %[[LO]]
// CHECK:         return
func.func @erf_of_shared_quotient(%x: f32) -> (f32, f32) {
  %c = arith.constant 2.0 : f32
  %d = arith.divf %x, %c : f32
  %y = math.erf %d : f32
  return %y, %d : f32, f32
}

// f64 keeps the library call's accuracy.
// CHECK-LABEL: func.func @exp_f64
// CHECK:         math.exp %{{.+}} : f64
func.func @exp_f64(%x: f64) -> f64 {
  %y = math.exp %x : f64
  return %y : f64
}
