// RUN: qc opt %s -split-input-file -p 'qc-unshare-inits' | FileCheck %s

// One bias broadcast (CSE merged two equal ones), reshaped, is the init of
// two matmuls: the second gets its own broadcast and reshape, so neither
// has to copy it once bufferized.
// CHECK-LABEL: func.func @shared_bias
// CHECK:         %[[B1:.+]] = linalg.generic {{.+}} ins(%[[BIAS:[^ ]+]] : tensor<4xf32>)
// CHECK:         %[[R1:.+]] = tensor.collapse_shape %[[B1]]
// CHECK:         linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<4x8xf32>, tensor<8x6xf32>) outs(%[[R1]] : tensor<4x6xf32>)
// CHECK:         %[[B2:.+]] = linalg.generic {{.+}} ins(%[[BIAS]] : tensor<4xf32>)
// CHECK:         %[[R2:.+]] = tensor.collapse_shape %[[B2]]
// CHECK:         linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<4x8xf32>, tensor<8x6xf32>) outs(%[[R2]] : tensor<4x6xf32>)
#col = affine_map<(d0, d1, d2) -> (d0)>
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @shared_bias(%a: tensor<4x8xf32>, %b1: tensor<8x6xf32>, %b2: tensor<8x6xf32>, %bias: tensor<4xf32>) -> (tensor<4x6xf32>, tensor<4x6xf32>) {
  %e = tensor.empty() : tensor<4x2x3xf32>
  %bb = linalg.generic {indexing_maps = [#col, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%bias : tensor<4xf32>) outs(%e : tensor<4x2x3xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  } -> tensor<4x2x3xf32>
  %init = tensor.collapse_shape %bb [[0], [1, 2]] : tensor<4x2x3xf32> into tensor<4x6xf32>
  %y1 = linalg.matmul ins(%a, %b1 : tensor<4x8xf32>, tensor<8x6xf32>) outs(%init : tensor<4x6xf32>) -> tensor<4x6xf32>
  %y2 = linalg.matmul ins(%a, %b2 : tensor<4x8xf32>, tensor<8x6xf32>) outs(%init : tensor<4x6xf32>) -> tensor<4x6xf32>
  return %y1, %y2 : tensor<4x6xf32>, tensor<4x6xf32>
}

// -----

// The broadcast is also read (padded) besides its reshape, whose one use is
// a matmul's init: the matmul gets its own broadcast and reshape.
// CHECK-LABEL: func.func @reshape_of_shared
// CHECK:         %[[B:.+]] = linalg.generic {{.+}} ins(%[[BIAS:[^ ]+]] : tensor<4xf32>)
// CHECK:         %[[B1:.+]] = linalg.generic {{.+}} ins(%[[BIAS]] : tensor<4xf32>)
// CHECK:         %[[R1:.+]] = tensor.collapse_shape %[[B1]]
// CHECK:         linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<4x8xf32>, tensor<8x6xf32>) outs(%[[R1]] : tensor<4x6xf32>)
// CHECK:         tensor.pad %[[B]]
#col = affine_map<(d0, d1, d2) -> (d0)>
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @reshape_of_shared(%a: tensor<4x8xf32>, %b1: tensor<8x6xf32>, %bias: tensor<4xf32>) -> (tensor<4x6xf32>, tensor<4x3x4xf32>) {
  %e = tensor.empty() : tensor<4x2x3xf32>
  %bb = linalg.generic {indexing_maps = [#col, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%bias : tensor<4xf32>) outs(%e : tensor<4x2x3xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  } -> tensor<4x2x3xf32>
  %init = tensor.collapse_shape %bb [[0], [1, 2]] : tensor<4x2x3xf32> into tensor<4x6xf32>
  %y1 = linalg.matmul ins(%a, %b1 : tensor<4x8xf32>, tensor<8x6xf32>) outs(%init : tensor<4x6xf32>) -> tensor<4x6xf32>
  %zero = arith.constant 0.0 : f32
  %p = tensor.pad %bb low[0, 0, 0] high[0, 1, 1] {
  ^bb0(%i: index, %j: index, %k: index):
    tensor.yield %zero : f32
  } : tensor<4x2x3xf32> to tensor<4x3x4xf32>
  return %y1, %p : tensor<4x6xf32>, tensor<4x3x4xf32>
}

// -----

// A zero fill that is also read: every op writing into it gets its own.
// CHECK-LABEL: func.func @fill_also_read
// CHECK:         %[[Z:.+]] = linalg.fill
// CHECK:         %[[Z1:.+]] = linalg.fill
// CHECK:         linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<4x4xf32>, tensor<4x4xf32>) outs(%[[Z1]] : tensor<4x4xf32>)
// CHECK:         %[[Z2:.+]] = linalg.fill
// CHECK:         linalg.matmul ins(%{{.+}}, %[[Z]] : tensor<4x4xf32>, tensor<4x4xf32>) outs(%[[Z2]] : tensor<4x4xf32>)
func.func @fill_also_read(%a: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>) {
  %c0 = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x4xf32>
  %z = linalg.fill ins(%c0 : f32) outs(%e : tensor<4x4xf32>) -> tensor<4x4xf32>
  %y1 = linalg.matmul ins(%a, %a : tensor<4x4xf32>, tensor<4x4xf32>) outs(%z : tensor<4x4xf32>) -> tensor<4x4xf32>
  %y2 = linalg.matmul ins(%a, %z : tensor<4x4xf32>, tensor<4x4xf32>) outs(%z : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %y1, %y2 : tensor<4x4xf32>, tensor<4x4xf32>
}

// -----

// A generic that reads its init (an accumulation) is not an initial value
// to recompute: left shared.
// CHECK-LABEL: func.func @reads_init
// CHECK-COUNT-1: linalg.generic
// CHECK-NOT:     linalg.generic
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @reads_init(%a: tensor<4x4xf32>, %x: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>) {
  %s = linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<4x4xf32>) outs(%x : tensor<4x4xf32>) {
  ^bb0(%v: f32, %o: f32):
    %r = arith.addf %v, %o : f32
    linalg.yield %r : f32
  } -> tensor<4x4xf32>
  %y1 = linalg.matmul ins(%a, %a : tensor<4x4xf32>, tensor<4x4xf32>) outs(%s : tensor<4x4xf32>) -> tensor<4x4xf32>
  %y2 = linalg.matmul ins(%a, %a : tensor<4x4xf32>, tensor<4x4xf32>) outs(%s : tensor<4x4xf32>) -> tensor<4x4xf32>
  return %y1, %y2 : tensor<4x4xf32>, tensor<4x4xf32>
}

// -----

// One tensor.empty (CSE merged the equal ones of two Fire modules) is the
// destination of a fill and of two Relus: each gets its own, so that
// bufferization gives each a buffer (qc-plan-memory overlaps them later)
// and qc-lower-gemm can write a Relu's result straight from its GEMM. An
// i8 empty stays shared.
// CHECK-LABEL: func.func @shared_empty
// CHECK:         %[[E0:.+]] = tensor.empty() : tensor<4x4xf32>
// CHECK:         linalg.fill ins(%{{.+}} : f32) outs(%[[E0]] : tensor<4x4xf32>)
// CHECK:         %[[E1:.+]] = tensor.empty() : tensor<4x4xf32>
// CHECK:         linalg.generic {{.+}} outs(%[[E1]] : tensor<4x4xf32>)
// CHECK:         %[[E2:.+]] = tensor.empty() : tensor<4x4xf32>
// CHECK:         linalg.generic {{.+}} outs(%[[E2]] : tensor<4x4xf32>)
// CHECK:         %[[Q:.+]] = tensor.empty() : tensor<4x4xi8>
// CHECK:         linalg.fill ins(%{{.+}} : i8) outs(%[[Q]] : tensor<4x4xi8>)
// CHECK:         linalg.fill ins(%{{.+}} : i8) outs(%[[Q]] : tensor<4x4xi8>)
#id4 = affine_map<(d0, d1) -> (d0, d1)>
func.func @shared_empty(%x: tensor<4x4xf32>, %y: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xi8>, tensor<4x4xi8>) {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1 : i8
  %e = tensor.empty() : tensor<4x4xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<4x4xf32>) -> tensor<4x4xf32>
  %r1 = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel"]}
      ins(%x : tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.maximumf %v, %zero : f32
    linalg.yield %m : f32
  } -> tensor<4x4xf32>
  %r2 = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel"]}
      ins(%y : tensor<4x4xf32>) outs(%e : tensor<4x4xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.maximumf %v, %zero : f32
    linalg.yield %m : f32
  } -> tensor<4x4xf32>
  %q = tensor.empty() : tensor<4x4xi8>
  %q1 = linalg.fill ins(%one : i8) outs(%q : tensor<4x4xi8>) -> tensor<4x4xi8>
  %q2 = linalg.fill ins(%one : i8) outs(%q : tensor<4x4xi8>) -> tensor<4x4xi8>
  return %z, %r1, %r2, %q1, %q2 : tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x4xi8>, tensor<4x4xi8>
}
