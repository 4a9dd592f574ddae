// RUN: qc opt %s -split-input-file -p qc-divide-by-constant | FileCheck %s
// RUN: qc opt %s -split-input-file -p 'qc-divide-by-constant{fma=false}' | FileCheck %s --check-prefix=NOFMA
// RUN: qc opt %s -split-input-file -p 'qc-divide-by-constant{busy=-1}' | FileCheck %s --check-prefix=ANY

// x / 3: a multiply by RN(1/3), the residual and the correction as FMAs,
// q0 clamped to the finite range first, and the result given q0's sign.
// CHECK-LABEL: func.func @by_three
// CHECK-DAG:     %[[C:.*]] = arith.constant 3.000000e+00 : f32
// CHECK-DAG:     %[[R:.*]] = arith.constant 0.333333343 : f32
// CHECK:         %[[Q0:.*]] = arith.mulf %{{.*}}, %[[R]] : f32
// CHECK:         %[[LO:.*]] = arith.maximumf %[[Q0]], %{{.*}} : f32
// CHECK:         %[[QC:.*]] = arith.minimumf %[[LO]], %{{.*}} : f32
// CHECK:         %[[N:.*]] = arith.negf %[[QC]] : f32
// CHECK:         %[[E:.*]] = math.fma %[[N]], %[[C]], %[[X:.*]] : f32
// CHECK:         %[[Q:.*]] = math.fma %[[E]], %[[R]], %[[QC]] : f32
// CHECK:         math.copysign %[[Q]], %[[Q0]] : f32
// CHECK-NOT:     arith.divf
// NOFMA-LABEL: func.func @by_three
// NOFMA:         arith.divf
// NOFMA-NOT:     math.fma
func.func @by_three(%x: f32) -> f32 {
  %c = arith.constant 3.0 : f32
  %q = arith.divf %x, %c : f32
  return %q : f32
}

// -----

// x / 0.25 is x * 4 exactly: no correction, with or without FMA.
// CHECK-LABEL: func.func @by_a_power_of_two
// CHECK:         %[[R:.*]] = arith.constant 4.000000e+00 : f32
// CHECK:         arith.mulf %{{.*}}, %[[R]] : f32
// CHECK-NOT:     math.fma
// CHECK-NOT:     arith.divf
// NOFMA-LABEL: func.func @by_a_power_of_two
// NOFMA:         arith.mulf
// NOFMA-NOT:     arith.divf
func.func @by_a_power_of_two(%x: f32) -> f32 {
  %c = arith.constant 0.25 : f32
  %q = arith.divf %x, %c : f32
  return %q : f32
}

// -----

// A divide among more than two other ops (QuantizeLinear's body) is left:
// the divider runs beside them. busy=-1 takes it anyway; a power of two
// is taken either way.
// CHECK-LABEL: func.func @busy
// CHECK:         arith.divf %{{.*}}, %{{.*}} : f32
// CHECK:         math.roundeven
// CHECK-NOT:     arith.divf
// NOFMA-LABEL: func.func @busy
// NOFMA:         arith.divf %{{.*}}, %{{.*}} : f32
// NOFMA-NOT:     arith.divf
// ANY-LABEL: func.func @busy
// ANY-NOT:       arith.divf
// ANY:           math.fma
// ANY:           math.fma
// ANY:           math.copysign
// ANY:           arith.mulf %{{.*}}, %{{.*}} : f32
// ANY-NOT:       arith.divf
func.func @busy(%x: f32) -> (i32, f32) {
  %c = arith.constant 0.0123 : f32
  %z = arith.constant 3.0 : f32
  %lo = arith.constant -128.0 : f32
  %four = arith.constant 4.0 : f32
  %q = arith.divf %x, %c : f32
  %r = math.roundeven %q : f32
  %a = arith.addf %r, %z : f32
  %m = arith.maxnumf %a, %lo : f32
  %i = arith.fptosi %m : f32 to i32
  %h = arith.divf %x, %four : f32
  return %i, %h : i32, f32
}

// -----

// A quotient clamped to integer bounds, rounded and converted (QuantizeLinear's
// body, clamp first) is taken however busy its block: q0 is clamped to the
// bounds widened by one, [-129, 128], in place of the finite range, and the
// sign of a zero needs no copysign. Without FMA it stays.
// CHECK-LABEL: func.func @clamped
// CHECK-NOT:     arith.divf
// CHECK:         %[[Q0:.*]] = arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK-DAG:     arith.constant -1.290000e+02 : f32
// CHECK-DAG:     arith.constant 1.280000e+02 : f32
// CHECK:         %[[LO:.*]] = arith.maxnumf %[[Q0]], %{{.*}} : f32
// CHECK:         %[[QC:.*]] = arith.minnumf %[[LO]], %{{.*}} : f32
// CHECK:         math.fma
// CHECK:         math.fma
// CHECK-NOT:     math.copysign
// CHECK:         math.roundeven
// NOFMA-LABEL: func.func @clamped
// NOFMA:         arith.divf
func.func @clamped(%x: f32) -> i32 {
  %c = arith.constant 0.0123 : f32
  %lo = arith.constant -128.0 : f32
  %hi = arith.constant 127.0 : f32
  %q = arith.divf %x, %c : f32
  %m = arith.maxnumf %q, %lo : f32
  %n = arith.minnumf %m, %hi : f32
  %r = math.roundeven %n : f32
  %i = arith.fptosi %r : f32 to i32
  return %i : i32
}

// -----

// Left alone: a divisor known only at run time, zero, one whose reciprocal
// is not a normal number, and f64.
// CHECK-LABEL: func.func @left
// CHECK-COUNT-4: arith.divf
// CHECK-NOT:     math.fma
// NOFMA-LABEL: func.func @left
// ANY-LABEL: func.func @left
// NOFMA-COUNT-4: arith.divf
func.func @left(%x: f32, %y: f32, %d: f64) -> (f32, f32, f32, f64) {
  %zero = arith.constant 0.0 : f32
  %huge = arith.constant 1.0e38 : f32
  %three = arith.constant 3.0 : f64
  %a = arith.divf %x, %y : f32
  %b = arith.divf %x, %zero : f32
  %c = arith.divf %x, %huge : f32
  %e = arith.divf %d, %three : f64
  return %a, %b, %c, %e : f32, f32, f32, f64
}
