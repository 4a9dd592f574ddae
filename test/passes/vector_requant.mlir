// RUN: qc opt %s -split-input-file -p qc-vector-requant | FileCheck %s

// A requantization loop (qmath's high-word form) becomes explicit vector
// code: 16 lanes per step, and for the 4 left over of each row of 20 one more
// half step of 8 ending at the row's end (outputs 12..15 are computed twice;
// the output buffer is not an input). The rows stay separate loops: the
// multiplier and rounding constant are per row. The
// 32 x 32 -> 64-bit product is two i64 multiplies of sign-extended low halves
// (vpmuldq on x86): the even lanes in place, the odd ones moved down by a
// shuffle; the per-row rounding constant is split into its even and odd
// lanes, and the high words are merged back by one shuffle. Nothing widens
// the accumulators to vector<16xi64>.
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @requant
// CHECK-NOT:     linalg.generic
// CHECK:         call @qc_requant_0(%arg0, %arg1, %arg2, %arg3)
// CHECK-LABEL: func.func private @qc_requant_0
// CHECK:         scf.for %[[R:[a-z0-9_]+]] =
// CHECK-DAG:       %[[M:[0-9]+]] = memref.load %arg1[%[[R]]] : memref<2xi32>
// CHECK-DAG:       %[[C:[0-9]+]] = memref.load %arg2[%[[R]]] : memref<2xi64>
// CHECK-DAG:       %[[MV:[0-9]+]] = vector.broadcast %[[M]] : i32 to vector<16xi32>
// CHECK-DAG:       %[[CV:[0-9]+]] = vector.broadcast %[[C]] : i64 to vector<16xi64>
// CHECK:           scf.for %[[J:[a-z0-9_]+]] =
// CHECK:             %[[A:[0-9]+]] = vector.load %arg0[%[[R]], %[[J]]] : memref<2x20xi32>, vector<16xi32>
// CHECK:             %[[AO:[0-9]+]] = vector.shuffle %[[A]], %[[A]] [1, 1, 3, 3, 5, 5, 7, 7, 9, 9, 11, 11, 13, 13, 15, 15]
// CHECK:             %[[AW:[0-9]+]] = vector.bitcast %[[A]] : vector<16xi32> to vector<8xi64>
// CHECK:             %[[AL:[0-9]+]] = arith.shli %[[AW]], %[[K:[a-z0-9_]+]] : vector<8xi64>
// CHECK:             %[[AE:[0-9]+]] = arith.shrsi %[[AL]], %[[K]] : vector<8xi64>
// CHECK:             %[[PE:[0-9]+]] = arith.muli %[[AE]], %{{.*}} : vector<8xi64>
// CHECK:             %[[CE:[0-9]+]] = vector.shuffle %[[CV]], %[[CV]] [0, 2, 4, 6, 8, 10, 12, 14]
// CHECK:             %[[SE:[0-9]+]] = arith.addi %[[PE]], %[[CE]] : vector<8xi64>
// CHECK:             %[[WE:[0-9]+]] = vector.bitcast %[[SE]] : vector<8xi64> to vector<16xi32>
// CHECK:             %[[PO:[0-9]+]] = arith.muli %{{.*}}, %{{.*}} : vector<8xi64>
// CHECK:             %[[CO:[0-9]+]] = vector.shuffle %[[CV]], %[[CV]] [1, 3, 5, 7, 9, 11, 13, 15]
// CHECK:             %[[SO:[0-9]+]] = arith.addi %[[PO]], %[[CO]] : vector<8xi64>
// CHECK:             %[[WO:[0-9]+]] = vector.bitcast %[[SO]] : vector<8xi64> to vector<16xi32>
// CHECK:             %[[H:[0-9]+]] = vector.shuffle %[[WE]], %[[WO]] [1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31]
// CHECK-NOT:         arith.muli {{.*}} : vector<16xi64>
// CHECK:             %[[LO:[0-9]+]] = arith.maxsi %[[H]], %{{.*}} : vector<16xi32>
// CHECK:             %[[HI:[0-9]+]] = arith.minsi %[[LO]], %{{.*}} : vector<16xi32>
// CHECK:             %[[Q:[0-9]+]] = arith.trunci %[[HI]] : vector<16xi32> to vector<16xi8>
// CHECK:             vector.store %[[Q]], %arg3[%[[R]], %[[J]]] : memref<2x20xi8>, vector<16xi8>
// CHECK:           }
// CHECK:           vector.load %arg0[%[[R]], %c12] : memref<2x20xi32>, vector<8xi32>
// CHECK:           arith.muli {{.*}} : vector<4xi64>
// CHECK:           vector.store {{.*}}, %arg3[%[[R]], %c12] : memref<2x20xi8>, vector<8xi8>
func.func @requant(%acc: memref<2x20xi32>, %m: memref<2xi32>, %c: memref<2xi64>, %out: memref<2x20xi8>) {
  %c32 = arith.constant 32 : i64
  %lo = arith.constant -128 : i32
  %hi = arith.constant 127 : i32
  linalg.generic {indexing_maps = [#id, #row, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%acc, %m, %c : memref<2x20xi32>, memref<2xi32>, memref<2xi64>) outs(%out : memref<2x20xi8>) {
  ^bb0(%a: i32, %mm: i32, %cc: i64, %o: i8):
    %0 = arith.extsi %a : i32 to i64
    %1 = arith.extsi %mm : i32 to i64
    %2 = arith.muli %0, %1 : i64
    %3 = arith.addi %2, %cc : i64
    %4 = arith.shrsi %3, %c32 : i64
    %5 = arith.trunci %4 : i64 to i32
    %6 = arith.maxsi %5, %lo : i32
    %7 = arith.minsi %6, %hi : i32
    %8 = arith.trunci %7 : i32 to i8
    linalg.yield %8 : i8
  }
  return
}

// -----

// A requantized value narrowed to i8 and widened back (a QLinearAdd after a
// conv): clamped into i8 by constant bounds or by a constant per-row operand
// whose values lie in i8, the pair is the value itself; with a bound past
// i8 (300) the narrowing wraps and both ops stay.
#id3 = affine_map<(d0, d1) -> (d0, d1)>
#row3 = affine_map<(d0, d1) -> (d0)>
memref.global "private" constant @hi : memref<2xi32> = dense<[100, 127]>
// CHECK-LABEL: func.func private @qc_requant_0
// CHECK:         scf.for
// CHECK:           scf.for
// CHECK:             %[[H:[0-9]+]] = vector.shuffle %{{[0-9]+}}, %{{[0-9]+}} [1, 17, 3, 19
// CHECK:             %[[LO:[0-9]+]] = arith.maxsi %[[H]], %{{.*}} : vector<16xi32>
// CHECK:             %[[HI:[0-9]+]] = arith.minsi %[[LO]], %{{.*}} : vector<16xi32>
// CHECK-NOT:         arith.extsi {{.*}} : vector<16xi8> to vector<16xi32>
// CHECK:             %[[S:[0-9]+]] = arith.addi %[[HI]], %{{.*}} : vector<16xi32>
// CHECK-LABEL: func.func private @qc_requant_1
// CHECK:             arith.trunci %{{.*}} : vector<16xi32> to vector<16xi8>
// CHECK:             arith.extsi %{{.*}} : vector<16xi8> to vector<16xi32>
func.func @round_trip(%acc: memref<2x16xi32>, %m: memref<2xi32>, %r: memref<2x16xi32>, %out: memref<2x16xi8>) {
  %c32 = arith.constant 32 : i64
  %lo = arith.constant -128 : i32
  %hi = memref.get_global @hi : memref<2xi32>
  linalg.generic {indexing_maps = [#id3, #row3, #row3, #id3, #id3], iterator_types = ["parallel", "parallel"]}
      ins(%acc, %m, %hi, %r : memref<2x16xi32>, memref<2xi32>, memref<2xi32>, memref<2x16xi32>)
      outs(%out : memref<2x16xi8>) {
  ^bb0(%a: i32, %mm: i32, %h: i32, %res: i32, %o: i8):
    %0 = arith.extsi %a : i32 to i64
    %1 = arith.extsi %mm : i32 to i64
    %2 = arith.muli %0, %1 : i64
    %3 = arith.shrsi %2, %c32 : i64
    %4 = arith.trunci %3 : i64 to i32
    %5 = arith.maxsi %4, %lo : i32
    %6 = arith.minsi %5, %h : i32
    %7 = arith.trunci %6 : i32 to i8
    %8 = arith.extsi %7 : i8 to i32
    %9 = arith.addi %8, %res : i32
    %10 = arith.trunci %9 : i32 to i8
    linalg.yield %10 : i8
  }
  %big = arith.constant 300 : i32
  linalg.generic {indexing_maps = [#id3, #row3, #id3, #id3], iterator_types = ["parallel", "parallel"]}
      ins(%acc, %m, %r : memref<2x16xi32>, memref<2xi32>, memref<2x16xi32>) outs(%out : memref<2x16xi8>) {
  ^bb0(%a: i32, %mm: i32, %res: i32, %o: i8):
    %0 = arith.extsi %a : i32 to i64
    %1 = arith.extsi %mm : i32 to i64
    %2 = arith.muli %0, %1 : i64
    %3 = arith.shrsi %2, %c32 : i64
    %4 = arith.trunci %3 : i64 to i32
    %5 = arith.maxsi %4, %lo : i32
    %6 = arith.minsi %5, %big : i32
    %7 = arith.trunci %6 : i32 to i8
    %8 = arith.extsi %7 : i8 to i32
    %9 = arith.addi %8, %res : i32
    %10 = arith.trunci %9 : i32 to i8
    linalg.yield %10 : i8
  }
  return
}

// -----

// A requantized value offset into i8 and dequantized (a DequantizeLinear
// after a QLinearAdd): clamped to [-143, 112], plus 15 it lies in i8, so the
// narrowing and widening back before sitofp are dropped.
#id4 = affine_map<(d0, d1) -> (d0, d1)>
#row4 = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func private @qc_requant_0
// CHECK:             %[[HI:[0-9]+]] = arith.minsi %{{.*}} : vector<16xi32>
// CHECK:             %[[Q:[0-9]+]] = arith.addi %[[HI]], %{{.*}} : vector<16xi32>
// CHECK-NOT:         arith.extsi {{.*}} : vector<16xi8> to vector<16xi32>
// CHECK:             arith.sitofp %[[Q]] : vector<16xi32> to vector<16xf32>
func.func @dequantized(%acc: memref<2x16xi32>, %m: memref<2xi32>, %out: memref<2x16xf32>) {
  %c32 = arith.constant 32 : i64
  %lo = arith.constant -143 : i32
  %hi = arith.constant 112 : i32
  %zp = arith.constant 15 : i32
  %s = arith.constant 0.5 : f32
  linalg.generic {indexing_maps = [#id4, #row4, #id4], iterator_types = ["parallel", "parallel"]}
      ins(%acc, %m : memref<2x16xi32>, memref<2xi32>) outs(%out : memref<2x16xf32>) {
  ^bb0(%a: i32, %mm: i32, %o: f32):
    %0 = arith.extsi %a : i32 to i64
    %1 = arith.extsi %mm : i32 to i64
    %2 = arith.muli %0, %1 : i64
    %3 = arith.shrsi %2, %c32 : i64
    %4 = arith.trunci %3 : i64 to i32
    %5 = arith.maxsi %4, %lo : i32
    %6 = arith.minsi %5, %hi : i32
    %7 = arith.addi %6, %zp : i32
    %8 = arith.trunci %7 : i32 to i8
    %9 = arith.extsi %8 : i8 to i32
    %10 = arith.sitofp %9 : i32 to f32
    %11 = arith.mulf %10, %s : f32
    linalg.yield %11 : f32
  }
  return
}

// -----

// uint8: clamped to [0, 255] the value narrows and widens back by extui
// exactly (both dropped); clamped to [-1, 255] a negative value would come
// back as 255 - 0, so the pair stays.
#id5 = affine_map<(d0, d1) -> (d0, d1)>
#row5 = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func private @qc_requant_0
// CHECK:             %[[HI:[0-9]+]] = arith.minsi %{{.*}} : vector<16xi32>
// CHECK-NOT:         arith.extui {{.*}} : vector<16xi8> to vector<16xi32>
// CHECK:             arith.addi %[[HI]], %{{.*}} : vector<16xi32>
// CHECK-LABEL: func.func private @qc_requant_1
// CHECK:             arith.trunci %{{.*}} : vector<16xi32> to vector<16xi8>
// CHECK:             arith.extui %{{.*}} : vector<16xi8> to vector<16xi32>
func.func @unsigned_round_trip(%acc: memref<2x16xi32>, %m: memref<2xi32>, %r: memref<2x16xi32>, %out: memref<2x16xi8>) {
  %c32 = arith.constant 32 : i64
  %hi = arith.constant 255 : i32
  %lo0 = arith.constant 0 : i32
  %lom = arith.constant -1 : i32
  linalg.generic {indexing_maps = [#id5, #row5, #id5, #id5], iterator_types = ["parallel", "parallel"]}
      ins(%acc, %m, %r : memref<2x16xi32>, memref<2xi32>, memref<2x16xi32>) outs(%out : memref<2x16xi8>) {
  ^bb0(%a: i32, %mm: i32, %res: i32, %o: i8):
    %0 = arith.extsi %a : i32 to i64
    %1 = arith.extsi %mm : i32 to i64
    %2 = arith.muli %0, %1 : i64
    %3 = arith.shrsi %2, %c32 : i64
    %4 = arith.trunci %3 : i64 to i32
    %5 = arith.maxsi %4, %lo0 : i32
    %6 = arith.minsi %5, %hi : i32
    %7 = arith.trunci %6 : i32 to i8
    %8 = arith.extui %7 : i8 to i32
    %9 = arith.addi %8, %res : i32
    %10 = arith.trunci %9 : i32 to i8
    linalg.yield %10 : i8
  }
  linalg.generic {indexing_maps = [#id5, #row5, #id5, #id5], iterator_types = ["parallel", "parallel"]}
      ins(%acc, %m, %r : memref<2x16xi32>, memref<2xi32>, memref<2x16xi32>) outs(%out : memref<2x16xi8>) {
  ^bb0(%a: i32, %mm: i32, %res: i32, %o: i8):
    %0 = arith.extsi %a : i32 to i64
    %1 = arith.extsi %mm : i32 to i64
    %2 = arith.muli %0, %1 : i64
    %3 = arith.shrsi %2, %c32 : i64
    %4 = arith.trunci %3 : i64 to i32
    %5 = arith.maxsi %4, %lom : i32
    %6 = arith.minsi %5, %hi : i32
    %7 = arith.trunci %6 : i32 to i8
    %8 = arith.extui %7 : i8 to i32
    %9 = arith.addi %8, %res : i32
    %10 = arith.trunci %9 : i32 to i8
    linalg.yield %10 : i8
  }
  return
}

// -----

// Per-channel operands and dense buffers: the last two dims (4 x 7) are one
// run of memory in every vector operand and the output, and nothing per
// element depends on the row, so the loop runs over 28 per channel: one step
// of 16 and, for the 12 left, one overlapping step of 16 from 12 (more than
// half a step is left), no short rows.
#id5 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#ch5 = affine_map<(d0, d1, d2) -> (d0)>
// CHECK-LABEL: func.func @merged
// CHECK:         %[[A:.+]] = memref.collapse_shape %arg0 {{\[}}[0], [1, 2]] : memref<2x4x7xi32> into memref<2x28xi32>
// CHECK:         %[[O:.+]] = memref.collapse_shape %arg2 {{\[}}[0], [1, 2]] : memref<2x4x7xi8> into memref<2x28xi8>
// CHECK:         call @qc_requant_0(%[[A]], %arg1, %[[O]]) : (memref<2x28xi32>, memref<2xi32>, memref<2x28xi8>) -> ()
// CHECK-LABEL: func.func private @qc_requant_0
// CHECK:           scf.for %[[J:[a-z0-9_]+]] = %c0 to %c16 step %c16
// CHECK:             vector.load %arg0[%{{.*}}, %[[J]]] : memref<2x28xi32>, vector<16xi32>
// CHECK:           vector.load %arg0[%{{.*}}, %c12] : memref<2x28xi32>, vector<16xi32>
func.func @merged(%acc: memref<2x4x7xi32>, %m: memref<2xi32>, %out: memref<2x4x7xi8>) {
  %c32 = arith.constant 32 : i64
  linalg.generic {indexing_maps = [#id5, #ch5, #id5], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%acc, %m : memref<2x4x7xi32>, memref<2xi32>) outs(%out : memref<2x4x7xi8>) {
  ^bb0(%a: i32, %mm: i32, %o: i8):
    %0 = arith.extsi %a : i32 to i64
    %1 = arith.extsi %mm : i32 to i64
    %2 = arith.muli %0, %1 : i64
    %3 = arith.shrsi %2, %c32 : i64
    %4 = arith.trunci %3 : i64 to i32
    %5 = arith.trunci %4 : i32 to i8
    linalg.yield %5 : i8
  }
  return
}

// -----

// Not a requantization (no 32 x 32 -> 64-bit product): left to LLVM's loop
// vectorizer.
#id2 = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @plain
// CHECK:         linalg.generic
// CHECK-NOT:     call @qc_requant
func.func @plain(%x: memref<8xi32>, %out: memref<8xi8>) {
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel"]}
      ins(%x : memref<8xi32>) outs(%out : memref<8xi8>) {
  ^bb0(%a: i32, %o: i8):
    %0 = arith.trunci %a : i32 to i8
    linalg.yield %0 : i8
  }
  return
}
