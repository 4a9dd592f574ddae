// RUN: qc opt %s -split-input-file -p qc-pad-into-producer | FileCheck %s
// RUN: qc opt %s -split-input-file -p 'qc-pad-into-producer,cse' | FileCheck %s --check-prefix=CSE

// An int8 requantization padded with its zero point for a 3x3 conv: the
// padded tensor is filled first and the generic writes its interior slice,
// so bufferization needs no second buffer and no copy.
#id = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @requant_then_pad
// CHECK-SAME:    (%[[ACC:.+]]: tensor<4x6xi32>)
// CHECK:         %[[ZP:.+]] = arith.constant -128 : i8
// CHECK:         %[[E:.+]] = tensor.empty() : tensor<6x8xi8>
// CHECK:         %[[F:.+]] = linalg.fill {qc.padded = {{[0-9]+}} : i64} ins(%[[ZP]] : i8) outs(%[[E]] : tensor<6x8xi8>)
// CHECK:         %[[S:.+]] = tensor.extract_slice %[[F]][1, 1] [4, 6] [1, 1] : tensor<6x8xi8> to tensor<4x6xi8>
// CHECK:         %[[Q:.+]] = linalg.generic {{.*}} ins(%[[ACC]] : tensor<4x6xi32>) outs(%[[S]] : tensor<4x6xi8>)
// CHECK-NOT:     tensor.pad
// CHECK:         %[[P:.+]] = tensor.insert_slice %[[Q]] into %[[F]][1, 1] [4, 6] [1, 1] : tensor<4x6xi8> into tensor<6x8xi8>
// CHECK:         return %[[P]]
func.func @requant_then_pad(%acc: tensor<4x6xi32>) -> tensor<6x8xi8> {
  %init = tensor.empty() : tensor<4x6xi8>
  %q = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%acc : tensor<4x6xi32>) outs(%init : tensor<4x6xi8>) {
  ^bb0(%a: i32, %o: i8):
    %t = arith.trunci %a : i32 to i8
    linalg.yield %t : i8
  } -> tensor<4x6xi8>
  %zp = arith.constant -128 : i8
  %p = tensor.pad %q low[1, 1] high[1, 1] {
  ^bb0(%i: index, %j: index):
    tensor.yield %zp : i8
  } : tensor<4x6xi8> to tensor<6x8xi8>
  return %p : tensor<6x8xi8>
}

// -----

// A float producer, the Relu after a GEMM: rewritten the same way, with the
// padded tensor filled before the GEMM, so that no write of the padded buffer
// lies between the GEMM and its epilogue and qc-lower-gemm can fold the Relu
// into a kernel that stores into the interior (a pitched C).
#id = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @float_producer
// CHECK:         %[[F:.+]] = linalg.fill {qc.padded = {{[0-9]+}} : i64} ins(%{{.+}} : f32) outs(%{{.+}} : tensor<6x8xf32>)
// CHECK:         %[[S:.+]] = tensor.extract_slice %[[F]][1, 1] [4, 6] [1, 1]
// CHECK:         %[[MM:.+]] = linalg.matmul
// CHECK:         %[[Y:.+]] = linalg.generic {{.*}} ins(%[[MM]] : tensor<4x6xf32>) outs(%[[S]] : tensor<4x6xf32>)
// CHECK-NOT:     tensor.pad
// CHECK:         tensor.insert_slice %[[Y]] into %[[F]][1, 1] [4, 6] [1, 1]
func.func @float_producer(%a: tensor<4x5xf32>, %b: tensor<5x6xf32>) -> tensor<6x8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x6xf32>
  %c = linalg.fill ins(%zero : f32) outs(%e : tensor<4x6xf32>) -> tensor<4x6xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<4x5xf32>, tensor<5x6xf32>) outs(%c : tensor<4x6xf32>) -> tensor<4x6xf32>
  %init = tensor.empty() : tensor<4x6xf32>
  %y = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%mm : tensor<4x6xf32>) outs(%init : tensor<4x6xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.maximumf %v, %zero : f32
    linalg.yield %m : f32
  } -> tensor<4x6xf32>
  %p = tensor.pad %y low[1, 1] high[1, 1] {
  ^bb0(%i: index, %j: index):
    tensor.yield %zero : f32
  } : tensor<4x6xf32> to tensor<6x8xf32>
  return %p : tensor<6x8xf32>
}

// -----

// The unpadded result is used too: the generic keeps its own output.
#id = affine_map<(d0, d1) -> (d0, d1)>
// CHECK-LABEL: func.func @two_uses
// CHECK:         linalg.generic {{.*}} outs(%{{.+}} : tensor<4x6xi8>)
// CHECK:         tensor.pad
func.func @two_uses(%acc: tensor<4x6xi32>) -> (tensor<6x8xi8>, tensor<4x6xi8>) {
  %init = tensor.empty() : tensor<4x6xi8>
  %q = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%acc : tensor<4x6xi32>) outs(%init : tensor<4x6xi8>) {
  ^bb0(%a: i32, %o: i8):
    %t = arith.trunci %a : i32 to i8
    linalg.yield %t : i8
  } -> tensor<4x6xi8>
  %zp = arith.constant 3 : i8
  %p = tensor.pad %q low[1, 1] high[1, 1] {
  ^bb0(%i: index, %j: index):
    tensor.yield %zp : i8
  } : tensor<4x6xi8> to tensor<6x8xi8>
  return %p, %q : tensor<6x8xi8>, tensor<4x6xi8>
}

// -----

// A channel shuffle (a transpose) padded for the depthwise convolution after
// it, twice, in the same shape: each transpose writes the interior of its own
// padded tensor. The fills carry distinct ids, so CSE leaves two of them (a
// shared one would make bufferization copy it for the second pad, and write
// the second transpose out of place and copy it in).
// CHECK-LABEL: func.func @shuffles_then_pads
// CSE-LABEL:   func.func @shuffles_then_pads
// CSE-COUNT-2:   linalg.fill {qc.padded
// CHECK:         %[[F1:.+]] = linalg.fill {qc.padded = {{[0-9]+}} : i64} ins(%{{.+}} : f32) outs(%{{.+}} : tensor<1x3x2x6x6xf32>)
// CHECK:         %[[S1:.+]] = tensor.extract_slice %[[F1]][0, 0, 0, 1, 1] [1, 3, 2, 4, 4] [1, 1, 1, 1, 1]
// CHECK:         %[[T1:.+]] = linalg.transpose ins(%arg0 : tensor<1x2x3x4x4xf32>) outs(%[[S1]] : tensor<1x3x2x4x4xf32>) permutation = [0, 2, 1, 3, 4]
// CHECK:         tensor.insert_slice %[[T1]] into %[[F1]][0, 0, 0, 1, 1] [1, 3, 2, 4, 4] [1, 1, 1, 1, 1]
// CHECK:         %[[F2:.+]] = linalg.fill {qc.padded = {{[0-9]+}} : i64} ins(%{{.+}} : f32) outs(%{{.+}} : tensor<1x3x2x6x6xf32>)
// CHECK:         %[[S2:.+]] = tensor.extract_slice %[[F2]]
// CHECK:         linalg.transpose ins(%arg1 : tensor<1x2x3x4x4xf32>) outs(%[[S2]] : tensor<1x3x2x4x4xf32>)
func.func @shuffles_then_pads(%x: tensor<1x2x3x4x4xf32>, %y: tensor<1x2x3x4x4xf32>)
    -> (tensor<1x3x2x6x6xf32>, tensor<1x3x2x6x6xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x3x2x4x4xf32>
  %t1 = linalg.transpose ins(%x : tensor<1x2x3x4x4xf32>) outs(%e : tensor<1x3x2x4x4xf32>) permutation = [0, 2, 1, 3, 4]
  %p1 = tensor.pad %t1 low[0, 0, 0, 1, 1] high[0, 0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index, %f: index):
    tensor.yield %zero : f32
  } : tensor<1x3x2x4x4xf32> to tensor<1x3x2x6x6xf32>
  %t2 = linalg.transpose ins(%y : tensor<1x2x3x4x4xf32>) outs(%e : tensor<1x3x2x4x4xf32>) permutation = [0, 2, 1, 3, 4]
  %p2 = tensor.pad %t2 low[0, 0, 0, 1, 1] high[0, 0, 0, 1, 1] {
  ^bb0(%a: index, %b: index, %c: index, %d: index, %f: index):
    tensor.yield %zero : f32
  } : tensor<1x3x2x4x4xf32> to tensor<1x3x2x6x6xf32>
  return %p1, %p2 : tensor<1x3x2x6x6xf32>, tensor<1x3x2x6x6xf32>
}
