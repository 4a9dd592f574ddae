// RUN: qc opt %s -p qc-linalg-cleanup --split-input-file | FileCheck %s
// RUN: qc opt %s -p 'qc-linalg-cleanup{fuse-elementwise=false}' --split-input-file | FileCheck %s --check-prefix=NOFUSE

// relu(x + b) * x: three elementwise generics become one loop nest whose body
// does the add, the max and the mul in order, reading x once. The broadcast
// operand b keeps its map.
// CHECK-DAG:     #[[ID:.+]] = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-DAG:     #[[ROW:.+]] = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @chain
// CHECK-SAME:    (%[[X:.+]]: tensor<4x8xf32>, %[[B:.+]]: tensor<8xf32>)
// CHECK:         %[[ZERO:.+]] = arith.constant 0.000000e+00 : f32
// CHECK:         %[[R:.+]] = linalg.generic {indexing_maps = [#[[ID]], #[[ROW]], #[[ID]]], iterator_types = ["parallel", "parallel"]} ins(%[[X]], %[[B]] : tensor<4x8xf32>, tensor<8xf32>)
// CHECK-NEXT:    ^bb0(%[[XI:.+]]: f32, %[[BI:.+]]: f32, %{{.+}}: f32):
// CHECK-NEXT:      %[[S:.+]] = arith.addf %[[XI]], %[[BI]] : f32
// CHECK-NEXT:      %[[M:.+]] = arith.maximumf %[[S]], %[[ZERO]] : f32
// CHECK-NEXT:      %[[P:.+]] = arith.mulf %[[M]], %[[XI]] : f32
// CHECK-NEXT:      linalg.yield %[[P]] : f32
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[R]]

// Without fusion the three generics stay.
// NOFUSE-LABEL: func.func @chain
// NOFUSE-COUNT-3: linalg.generic
// NOFUSE-NOT:     linalg.generic
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d1)>
func.func @chain(%x: tensor<4x8xf32>, %b: tensor<8xf32>) -> tensor<4x8xf32> {
  %e0 = tensor.empty() : tensor<4x8xf32>
  %a = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x, %b : tensor<4x8xf32>, tensor<8xf32>) outs(%e0 : tensor<4x8xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %s = arith.addf %i, %j : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  %zero = arith.constant 0.0 : f32
  %e1 = tensor.empty() : tensor<4x8xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<4x8xf32>) outs(%e1 : tensor<4x8xf32>) {
  ^bb0(%i: f32, %o: f32):
    %m = arith.maximumf %i, %zero : f32
    linalg.yield %m : f32
  } -> tensor<4x8xf32>
  %e2 = tensor.empty() : tensor<4x8xf32>
  %y = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%r, %x : tensor<4x8xf32>, tensor<4x8xf32>) outs(%e2 : tensor<4x8xf32>) {
  ^bb0(%i: f32, %j: f32, %o: f32):
    %p = arith.mulf %i, %j : f32
    linalg.yield %p : f32
  } -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// A producer with a second use (here a result) is not fused into its
// consumer: that would compute it twice. The consumer reads its result.
// CHECK-LABEL: func.func @two_uses
// NOFUSE-LABEL: func.func @two_uses
// CHECK-SAME:    (%[[X:.+]]: tensor<8xf32>)
// CHECK:         %[[T:.+]] = linalg.generic {{.+}} ins(%[[X]] : tensor<8xf32>)
// CHECK:           math.tanh
// CHECK:         %[[Y:.+]] = linalg.generic {{.+}} ins(%[[T]] : tensor<8xf32>)
// CHECK-NOT:       math.tanh
// CHECK:           arith.mulf
// CHECK:         return %[[T]], %[[Y]]
#id = affine_map<(d0) -> (d0)>
func.func @two_uses(%x: tensor<8xf32>) -> (tensor<8xf32>, tensor<8xf32>) {
  %e0 = tensor.empty() : tensor<8xf32>
  %t = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%x : tensor<8xf32>) outs(%e0 : tensor<8xf32>) {
  ^bb0(%i: f32, %o: f32):
    %v = math.tanh %i : f32
    linalg.yield %v : f32
  } -> tensor<8xf32>
  %e1 = tensor.empty() : tensor<8xf32>
  %y = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%t : tensor<8xf32>) outs(%e1 : tensor<8xf32>) {
  ^bb0(%i: f32, %o: f32):
    %v = arith.mulf %i, %i : f32
    linalg.yield %v : f32
  } -> tensor<8xf32>
  return %t, %y : tensor<8xf32>, tensor<8xf32>
}

// -----

// A reshape written as collapse-to-1-D then expand folds into one view.
// CHECK-LABEL: func.func @reshape_pair
// CHECK-SAME:    (%[[X:.+]]: tensor<2x3x4xf32>)
// CHECK-NEXT:    %[[V:.+]] = tensor.collapse_shape %[[X]] {{\[}}[0, 1], [2]] : tensor<2x3x4xf32> into tensor<6x4xf32>
// CHECK-NEXT:    return %[[V]]
func.func @reshape_pair(%x: tensor<2x3x4xf32>) -> tensor<6x4xf32> {
  %flat = tensor.collapse_shape %x [[0, 1, 2]] : tensor<2x3x4xf32> into tensor<24xf32>
  %y = tensor.expand_shape %flat [[0, 1]] output_shape [6, 4] : tensor<24xf32> into tensor<6x4xf32>
  return %y : tensor<6x4xf32>
}
