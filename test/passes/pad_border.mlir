// RUN: qc opt %s -split-input-file -p qc-pad-border | FileCheck %s

// A padded tensor from qc-pad-into-producer: the requantization writes all
// of its interior, so only the border is filled, box by box (rows above and
// below over the whole width, then the columns left and right over the
// interior rows), and the interior slice is taken from the result.
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @producer
// CHECK-SAME:    (%[[ACC:.+]]: tensor<2x4x6xi32>)
// CHECK:         %[[ZP:.+]] = arith.constant -128 : i8
// CHECK:         %[[E:.+]] = tensor.empty() : tensor<2x6x8xi8>
// CHECK-NOT:     tensor.empty
// CHECK:         %[[S0:.+]] = tensor.extract_slice %[[E]][0, 0, 0] [2, 1, 8] [1, 1, 1]
// CHECK:         %[[F0:.+]] = linalg.fill ins(%[[ZP]] : i8) outs(%[[S0]] : tensor<2x1x8xi8>)
// CHECK:         %[[B0:.+]] = tensor.insert_slice %[[F0]] into %[[E]][0, 0, 0] [2, 1, 8] [1, 1, 1]
// CHECK:         %[[S1:.+]] = tensor.extract_slice %[[B0]][0, 5, 0] [2, 1, 8] [1, 1, 1]
// CHECK:         %[[F1:.+]] = linalg.fill ins(%[[ZP]] : i8) outs(%[[S1]] : tensor<2x1x8xi8>)
// CHECK:         %[[B1:.+]] = tensor.insert_slice %[[F1]] into %[[B0]][0, 5, 0] [2, 1, 8] [1, 1, 1]
// CHECK:         %[[S2:.+]] = tensor.extract_slice %[[B1]][0, 1, 0] [2, 4, 1] [1, 1, 1]
// CHECK:         %[[F2:.+]] = linalg.fill ins(%[[ZP]] : i8) outs(%[[S2]] : tensor<2x4x1xi8>)
// CHECK:         %[[B2:.+]] = tensor.insert_slice %[[F2]] into %[[B1]][0, 1, 0] [2, 4, 1] [1, 1, 1]
// CHECK:         %[[S3:.+]] = tensor.extract_slice %[[B2]][0, 1, 7] [2, 4, 1] [1, 1, 1]
// CHECK:         %[[F3:.+]] = linalg.fill ins(%[[ZP]] : i8) outs(%[[S3]] : tensor<2x4x1xi8>)
// CHECK:         %[[B3:.+]] = tensor.insert_slice %[[F3]] into %[[B2]][0, 1, 7] [2, 4, 1] [1, 1, 1]
// CHECK-NOT:     linalg.fill
// CHECK:         %[[IN:.+]] = tensor.extract_slice %[[B3]][0, 1, 1] [2, 4, 6] [1, 1, 1]
// CHECK:         %[[Q:.+]] = linalg.generic {{.*}} ins(%[[ACC]] : tensor<2x4x6xi32>) outs(%[[IN]] : tensor<2x4x6xi8>)
// CHECK:         %[[P:.+]] = tensor.insert_slice %[[Q]] into %[[B3]][0, 1, 1] [2, 4, 6] [1, 1, 1]
// CHECK:         return %[[P]]
func.func @producer(%acc: tensor<2x4x6xi32>) -> tensor<2x6x8xi8> {
  %zp = arith.constant -128 : i8
  %e = tensor.empty() : tensor<2x6x8xi8>
  %f = linalg.fill {qc.padded = 3 : i64} ins(%zp : i8) outs(%e : tensor<2x6x8xi8>) -> tensor<2x6x8xi8>
  %s = tensor.extract_slice %f[0, 1, 1] [2, 4, 6] [1, 1, 1] : tensor<2x6x8xi8> to tensor<2x4x6xi8>
  %q = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%acc : tensor<2x4x6xi32>) outs(%s : tensor<2x4x6xi8>) {
  ^bb0(%a: i32, %o: i8):
    %t = arith.trunci %a : i32 to i8
    linalg.yield %t : i8
  } -> tensor<2x4x6xi8>
  %p = tensor.insert_slice %q into %f[0, 1, 1] [2, 4, 6] [1, 1, 1] : tensor<2x4x6xi8> into tensor<2x6x8xi8>
  return %p : tensor<2x6x8xi8>
}

// -----

// A producer that reads its destination (an accumulation) would see the
// fill's values inside the interior: the whole fill stays.
#id = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @reads_interior
// CHECK:         %[[F:.+]] = linalg.fill {qc.padded = 4 : i64} ins(%{{.+}} : f32) outs(%{{.+}} : tensor<6x8xf32>)
// CHECK:         tensor.extract_slice %[[F]][1, 1] [4, 6] [1, 1]
func.func @reads_interior(%x: tensor<4x6xf32>) -> tensor<6x8xf32> {
  %one = arith.constant 1.0 : f32
  %e = tensor.empty() : tensor<6x8xf32>
  %f = linalg.fill {qc.padded = 4 : i64} ins(%one : f32) outs(%e : tensor<6x8xf32>) -> tensor<6x8xf32>
  %s = tensor.extract_slice %f[1, 1] [4, 6] [1, 1] : tensor<6x8xf32> to tensor<4x6xf32>
  %y = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<4x6xf32>) outs(%s : tensor<4x6xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = arith.addf %a, %o : f32
    linalg.yield %t : f32
  } -> tensor<4x6xf32>
  %p = tensor.insert_slice %y into %f[1, 1] [4, 6] [1, 1] : tensor<4x6xf32> into tensor<6x8xf32>
  return %p : tensor<6x8xf32>
}

// -----

// A pad of a model input (uneven amounts: 1 row above, 2 below, 2 columns
// on the left only): the border boxes, then the input copied into the
// interior. No pad and no fill of the whole tensor is left.
// CHECK-LABEL: func.func @input
// CHECK-SAME:    (%[[X:.+]]: tensor<1x3x5x5xf32>)
// CHECK-NOT:     tensor.pad
// CHECK:         %[[E:.+]] = tensor.empty() : tensor<1x3x8x7xf32>
// CHECK:         %[[S0:.+]] = tensor.extract_slice %[[E]][0, 0, 0, 0] [1, 3, 1, 7] [1, 1, 1, 1]
// CHECK:         linalg.fill ins(%{{.+}} : f32) outs(%[[S0]] : tensor<1x3x1x7xf32>)
// CHECK:         tensor.extract_slice %{{.+}}[0, 0, 6, 0] [1, 3, 2, 7] [1, 1, 1, 1]
// CHECK:         linalg.fill
// CHECK:         tensor.extract_slice %{{.+}}[0, 0, 1, 0] [1, 3, 5, 2] [1, 1, 1, 1]
// CHECK:         %[[F:.+]] = linalg.fill
// CHECK:         %[[B:.+]] = tensor.insert_slice %[[F]] into %{{.+}}[0, 0, 1, 0] [1, 3, 5, 2] [1, 1, 1, 1]
// CHECK-NOT:     linalg.fill
// CHECK:         %[[P:.+]] = tensor.insert_slice %[[X]] into %[[B]][0, 0, 1, 2] [1, 3, 5, 5] [1, 1, 1, 1]
// CHECK:         return %[[P]]
func.func @input(%x: tensor<1x3x5x5xf32>) -> tensor<1x3x8x7xf32> {
  %zero = arith.constant 0.0 : f32
  %p = tensor.pad %x low[0, 0, 1, 2] high[0, 0, 2, 0] {
  ^bb0(%a: index, %b: index, %c: index, %d: index):
    tensor.yield %zero : f32
  } : tensor<1x3x5x5xf32> to tensor<1x3x8x7xf32>
  return %p : tensor<1x3x8x7xf32>
}
