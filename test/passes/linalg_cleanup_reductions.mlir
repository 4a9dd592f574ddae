// RUN: qc opt %s -p qc-linalg-cleanup | FileCheck %s

// An elementwise producer is not fused into a matmul (which would recompute
// it for every k step), and the reshape between them does not turn the named
// matmul into a generic. Elementwise chains still fuse.
// CHECK-LABEL: func.func @qc_model
// CHECK:         %[[ACT:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel"]
// CHECK:           arith.mulf
// CHECK:           arith.maximumf
// CHECK:         linalg.matmul ins(%{{.+}}, %{{.+}} : tensor<8x16xf32>, tensor<16x4xf32>)
// CHECK-NOT:     qc_hidden
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @qc_model(%x: tensor<8x16xf32>, %w: tensor<16x4xf32>) -> tensor<8x4xf32> {
  %zero = arith.constant 0.0 : f32
  %two = arith.constant 2.0 : f32
  %e = tensor.empty() : tensor<8x16xf32>
  %s = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%x : tensor<8x16xf32>) outs(%e : tensor<8x16xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.mulf %a, %two : f32
    linalg.yield %m : f32
  } -> tensor<8x16xf32>
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%s : tensor<8x16xf32>) outs(%e : tensor<8x16xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.maximumf %a, %zero : f32
    linalg.yield %m : f32
  } -> tensor<8x16xf32>
  %flat = tensor.collapse_shape %r [[0, 1]] : tensor<8x16xf32> into tensor<128xf32>
  %back = tensor.expand_shape %flat [[0, 1]] output_shape [8, 16] : tensor<128xf32> into tensor<8x16xf32>
  %ei = tensor.empty() : tensor<8x4xf32>
  %f = linalg.fill ins(%zero : f32) outs(%ei : tensor<8x4xf32>) -> tensor<8x4xf32>
  %mm = linalg.matmul ins(%back, %w : tensor<8x16xf32>, tensor<16x4xf32>) outs(%f : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %mm : tensor<8x4xf32>
}
