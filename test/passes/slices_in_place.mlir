// RUN: qc opt %s -split-input-file -p qc-slices-in-place | FileCheck %s

// A Concat of two computed parts: each part's copy into its slice of the
// result is gone, and the op computing the part writes that slice (its
// tensor.empty destination became an extract_slice of the result).
#id = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @concat
// CHECK-NOT:     linalg.copy
// CHECK:         %[[OUT:.+]] = tensor.empty() : tensor<4x8xf32>
// CHECK:         %[[S0:.+]] = tensor.extract_slice %[[OUT]][0, 0] [2, 8] [1, 1]
// CHECK:         %[[A:.+]] = linalg.generic {{.+}} ins(%arg0 : tensor<2x8xf32>) outs(%[[S0]] : tensor<2x8xf32>)
// CHECK:         arith.negf
// CHECK:         %[[I0:.+]] = tensor.insert_slice %[[A]] into %[[OUT]][0, 0] [2, 8] [1, 1]
// CHECK:         %[[S1:.+]] = tensor.extract_slice %[[I0]][2, 0] [2, 8] [1, 1]
// CHECK:         %[[B:.+]] = linalg.generic {{.+}} ins(%arg1 : tensor<2x8xf32>) outs(%[[S1]] : tensor<2x8xf32>)
// CHECK:         arith.mulf
// CHECK:         tensor.insert_slice %[[B]] into %[[I0]][2, 0] [2, 8] [1, 1]
// CHECK-NOT:     linalg.copy
func.func @concat(%x: tensor<2x8xf32>, %y: tensor<2x8xf32>) -> tensor<4x8xf32> {
  %e = tensor.empty() : tensor<2x8xf32>
  %a = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<2x8xf32>) outs(%e : tensor<2x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %n = arith.negf %in : f32
    linalg.yield %n : f32
  } -> tensor<2x8xf32>
  %b = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%y : tensor<2x8xf32>) outs(%e : tensor<2x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %m = arith.mulf %in, %in : f32
    linalg.yield %m : f32
  } -> tensor<2x8xf32>
  %out = tensor.empty() : tensor<4x8xf32>
  %s0 = tensor.extract_slice %out[0, 0] [2, 8] [1, 1] : tensor<4x8xf32> to tensor<2x8xf32>
  %c0 = linalg.copy ins(%a : tensor<2x8xf32>) outs(%s0 : tensor<2x8xf32>) -> tensor<2x8xf32>
  %i0 = tensor.insert_slice %c0 into %out[0, 0] [2, 8] [1, 1] : tensor<2x8xf32> into tensor<4x8xf32>
  %s1 = tensor.extract_slice %i0[2, 0] [2, 8] [1, 1] : tensor<4x8xf32> to tensor<2x8xf32>
  %c1 = linalg.copy ins(%b : tensor<2x8xf32>) outs(%s1 : tensor<2x8xf32>) -> tensor<2x8xf32>
  %i1 = tensor.insert_slice %c1 into %i0[2, 0] [2, 8] [1, 1] : tensor<2x8xf32> into tensor<4x8xf32>
  return %i1 : tensor<4x8xf32>
}

// -----

// Copies stay for a function argument (its buffer is the caller's), for a
// part that is also read elsewhere, and for a copy into another place than
// the slice it inserts.
#id = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @kept
// CHECK-COUNT-3: linalg.copy
func.func @kept(%x: tensor<2x8xf32>) -> (tensor<4x8xf32>, tensor<2x8xf32>) {
  %e = tensor.empty() : tensor<2x8xf32>
  %a = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<2x8xf32>) outs(%e : tensor<2x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %n = arith.negf %in : f32
    linalg.yield %n : f32
  } -> tensor<2x8xf32>
  %out = tensor.empty() : tensor<4x8xf32>
  %s0 = tensor.extract_slice %out[0, 0] [2, 8] [1, 1] : tensor<4x8xf32> to tensor<2x8xf32>
  %c0 = linalg.copy ins(%x : tensor<2x8xf32>) outs(%s0 : tensor<2x8xf32>) -> tensor<2x8xf32>
  %i0 = tensor.insert_slice %c0 into %out[0, 0] [2, 8] [1, 1] : tensor<2x8xf32> into tensor<4x8xf32>
  %s1 = tensor.extract_slice %i0[2, 0] [2, 8] [1, 1] : tensor<4x8xf32> to tensor<2x8xf32>
  %c1 = linalg.copy ins(%a : tensor<2x8xf32>) outs(%s1 : tensor<2x8xf32>) -> tensor<2x8xf32>
  %i1 = tensor.insert_slice %c1 into %i0[2, 0] [2, 8] [1, 1] : tensor<2x8xf32> into tensor<4x8xf32>
  %b = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<2x8xf32>) outs(%e : tensor<2x8xf32>) {
  ^bb0(%in: f32, %o: f32):
    %m = arith.mulf %in, %in : f32
    linalg.yield %m : f32
  } -> tensor<2x8xf32>
  %s2 = tensor.extract_slice %i1[0, 0] [2, 8] [1, 1] : tensor<4x8xf32> to tensor<2x8xf32>
  %c2 = linalg.copy ins(%b : tensor<2x8xf32>) outs(%s2 : tensor<2x8xf32>) -> tensor<2x8xf32>
  %i2 = tensor.insert_slice %c2 into %i1[2, 0] [2, 8] [1, 1] : tensor<2x8xf32> into tensor<4x8xf32>
  return %i2, %a : tensor<4x8xf32>, tensor<2x8xf32>
}
