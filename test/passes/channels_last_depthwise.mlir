// RUN: qc opt %s -split-input-file -p qc-channels-last-depthwise | FileCheck %s

// A depthwise convolution (two of its taps kept: (0, 0) and (1, 2)) whose
// padded input is the transpose of a pixel-major [3, 3, 4] tensor, and whose
// result a 1x1 pixel-major gather reads: it runs over (oh, ow, c), reads
// the pixel-major tensor where it lies (the pad value outside it, through a
// select on an in-bounds index), takes its weights transposed to [3, 3, 4] at
// compile time, and its result replaces the gather.
#gather = affine_map<(d0, d1, d2, d3, d4) -> (0, d2, d0 + d3, d1 + d4)>
#id5 = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2, d3, d4)>
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#back = affine_map<(d0, d1, d2) -> (d2, d0, d1)>
#w00 = affine_map<(d0, d1, d2, d3) -> (d1, 0, 0)>
#w12 = affine_map<(d0, d1, d2, d3) -> (d1, 1, 2)>
#bias = affine_map<(d0, d1, d2, d3) -> (d1)>
#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG:   #[[W00:map[0-9]*]] = affine_map<(d0, d1, d2) -> (0, 0, d2)>
// CHECK-DAG:   #[[W12:map[0-9]*]] = affine_map<(d0, d1, d2) -> (1, 2, d2)>
// CHECK-DAG:   #[[C:map[0-9]*]] = affine_map<(d0, d1, d2) -> (d2)>
// CHECK-DAG:   #[[ID:map[0-9]*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @between_narrow_gemms
// CHECK-SAME:    (%[[S:.+]]: tensor<3x3x4xf32>, %[[B:.+]]: tensor<4xf32>)
// CHECK:         %[[WT:.+]] = arith.constant dense<{{\[\[\[}}0.000000e+00, 9.000000e+00, 1.800000e+01, 2.700000e+01]{{.+}}> : tensor<3x3x4xf32>
// CHECK:         %[[Y:.+]] = linalg.generic {indexing_maps = [#[[W00]], #[[W12]], #[[C]], #[[ID]]], iterator_types = ["parallel", "parallel", "parallel"]}
// CHECK-SAME:        ins(%[[WT]], %[[WT]], %[[B]] : tensor<3x3x4xf32>, tensor<3x3x4xf32>, tensor<4xf32>) outs(%{{.+}} : tensor<3x3x4xf32>)
// CHECK:           %[[CH:.+]] = linalg.index 2 : index
// CHECK:           %[[OH:.+]] = linalg.index 0 : index
// CHECK:           %[[OW:.+]] = linalg.index 1 : index
// CHECK:           %[[H:.+]] = arith.subi %[[OH]], %{{.+}} : index
// CHECK:           %[[HOK:.+]] = arith.cmpi ult, %[[H]], %{{.+}} : index
// CHECK:           %[[HI:.+]] = arith.select %[[HOK]], %[[H]], %{{.+}} : index
// CHECK:           %[[W:.+]] = arith.subi %[[OW]], %{{.+}} : index
// CHECK:           %[[WOK:.+]] = arith.cmpi ult, %[[W]], %{{.+}} : index
// CHECK:           %[[WI:.+]] = arith.select %[[WOK]], %[[W]], %{{.+}} : index
// CHECK:           %[[OK:.+]] = arith.andi %[[HOK]], %[[WOK]] : i1
// CHECK:           %[[X:.+]] = tensor.extract %[[S]][%[[HI]], %[[WI]], %[[CH]]] : tensor<3x3x4xf32>
// CHECK:           %[[T:.+]] = arith.select %[[OK]], %[[X]], %{{.+}} : f32
// CHECK:           arith.mulf %[[T]]
// CHECK:           tensor.extract %[[S]]
// CHECK:           linalg.yield
// CHECK:         %[[G:.+]] = tensor.expand_shape %[[Y]] {{\[}}[0], [1], [2, 3, 4]] output_shape [3, 3, 4, 1, 1]
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[G]]
func.func @between_narrow_gemms(%s: tensor<3x3x4xf32>, %b: tensor<4xf32>) -> tensor<3x3x4x1x1xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                             [[9.0, 10.0, 11.0], [12.0, 13.0, 14.0], [15.0, 16.0, 17.0]],
                             [[18.0, 19.0, 20.0], [21.0, 22.0, 23.0], [24.0, 25.0, 26.0]],
                             [[27.0, 28.0, 29.0], [30.0, 31.0, 32.0], [33.0, 34.0, 35.0]]]> : tensor<4x3x3xf32>
  %pe = tensor.empty() : tensor<1x4x5x5xf32>
  %pad = linalg.fill ins(%zero : f32) outs(%pe : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %ce = tensor.empty() : tensor<4x3x3xf32>
  %chw = linalg.generic {indexing_maps = [#id3, #back], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%s : tensor<3x3x4xf32>) outs(%ce : tensor<4x3x3xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  } -> tensor<4x3x3xf32>
  %nchw = tensor.expand_shape %chw [[0, 1], [2], [3]] output_shape [1, 4, 3, 3] : tensor<4x3x3xf32> into tensor<1x4x3x3xf32>
  %p = tensor.insert_slice %nchw into %pad[0, 0, 1, 1] [1, 4, 3, 3] [1, 1, 1, 1] : tensor<1x4x3x3xf32> into tensor<1x4x5x5xf32>
  %e = tensor.empty() : tensor<1x4x3x3xf32>
  %d = linalg.generic {indexing_maps = [#w00, #w12, #bias, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%w, %w, %b : tensor<4x3x3xf32>, tensor<4x3x3xf32>, tensor<4xf32>) outs(%e : tensor<1x4x3x3xf32>) {
  ^bb0(%w0: f32, %w1: f32, %acc: f32, %o: f32):
    %c = linalg.index 1 : index
    %oh = linalg.index 2 : index
    %ow = linalg.index 3 : index
    %x0 = tensor.extract %p[%c0, %c, %oh, %ow] : tensor<1x4x5x5xf32>
    %m0 = arith.mulf %x0, %w0 : f32
    %a0 = arith.addf %acc, %m0 : f32
    %oh1 = arith.addi %oh, %c1 : index
    %ow2 = arith.addi %ow, %c2 : index
    %x1 = tensor.extract %p[%c0, %c, %oh1, %ow2] : tensor<1x4x5x5xf32>
    %m1 = arith.mulf %x1, %w1 : f32
    %a1 = arith.addf %a0, %m1 : f32
    linalg.yield %a1 : f32
  } -> tensor<1x4x3x3xf32>
  %ge = tensor.empty() : tensor<3x3x4x1x1xf32>
  %g = linalg.generic {indexing_maps = [#gather, #id5], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%d : tensor<1x4x3x3xf32>) outs(%ge : tensor<3x3x4x1x1xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  } -> tensor<3x3x4x1x1xf32>
  return %g : tensor<3x3x4x1x1xf32>
}

// -----

// A user of the result other than a pixel-major gather (here the function's
// result) reads it through one transpose back to [1, C, OH, OW].
#id3 = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#back = affine_map<(d0, d1, d2) -> (d2, d0, d1)>
#w11 = affine_map<(d0, d1, d2, d3) -> (d1, 1, 1)>
#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-DAG:   #[[TO_CHW:map[0-9]*]] = affine_map<(d0, d1, d2) -> (d2, d0, d1)>
// CHECK-LABEL: func.func @nchw_user
// CHECK:         %[[Y:.+]] = linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel"]} {{.+}} outs(%{{.+}} : tensor<3x3x4xf32>)
// CHECK:           arith.constant 6.000000e+00 : f32
// CHECK:           arith.minimumf
// CHECK:         %[[B:.+]] = linalg.generic {indexing_maps = [#{{map[0-9]*}}, #[[TO_CHW]]]{{.+}} ins(%[[Y]] : tensor<3x3x4xf32>) outs(%{{.+}} : tensor<4x3x3xf32>)
// CHECK:         %[[B4:.+]] = tensor.expand_shape %[[B]] {{\[}}[0, 1], [2], [3]] output_shape [1, 4, 3, 3]
// CHECK:         return %[[B4]]
func.func @nchw_user(%s: tensor<3x3x4xf32>) -> tensor<1x4x3x3xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<2.0> : tensor<4x3x3xf32>
  %pe = tensor.empty() : tensor<1x4x5x5xf32>
  %pad = linalg.fill ins(%zero : f32) outs(%pe : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %ce = tensor.empty() : tensor<4x3x3xf32>
  %chw = linalg.generic {indexing_maps = [#id3, #back], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%s : tensor<3x3x4xf32>) outs(%ce : tensor<4x3x3xf32>) {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  } -> tensor<4x3x3xf32>
  %nchw = tensor.expand_shape %chw [[0, 1], [2], [3]] output_shape [1, 4, 3, 3] : tensor<4x3x3xf32> into tensor<1x4x3x3xf32>
  %p = tensor.insert_slice %nchw into %pad[0, 0, 1, 1] [1, 4, 3, 3] [1, 1, 1, 1] : tensor<1x4x3x3xf32> into tensor<1x4x5x5xf32>
  %e = tensor.empty() : tensor<1x4x3x3xf32>
  %d = linalg.generic {indexing_maps = [#w11, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%w : tensor<4x3x3xf32>) outs(%e : tensor<1x4x3x3xf32>) {
  ^bb0(%w0: f32, %o: f32):
    %six = arith.constant 6.0 : f32
    %c = linalg.index 1 : index
    %oh = linalg.index 2 : index
    %ow = linalg.index 3 : index
    %oh1 = arith.addi %oh, %c1 : index
    %ow1 = arith.addi %ow, %c1 : index
    %x = tensor.extract %p[%c0, %c, %oh1, %ow1] : tensor<1x4x5x5xf32>
    %m = arith.mulf %x, %w0 : f32
    %r = arith.minimumf %m, %six : f32
    linalg.yield %r : f32
  } -> tensor<1x4x3x3xf32>
  return %d : tensor<1x4x3x3xf32>
}

// -----

// Not taken: the padded input's interior is written in NCHW (by an
// elementwise op, not a transpose from pixel-major rows).
#w11 = affine_map<(d0, d1, d2, d3) -> (d1, 1, 1)>
#id4 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
// CHECK-LABEL: func.func @nchw_producer
// CHECK:         tensor.insert_slice
// CHECK:         linalg.generic {{.+}} iterator_types = ["parallel", "parallel", "parallel", "parallel"]
// CHECK:           tensor.extract %{{.+}} : tensor<1x4x5x5xf32>
func.func @nchw_producer(%x: tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<2.0> : tensor<4x3x3xf32>
  %pe = tensor.empty() : tensor<1x4x5x5xf32>
  %pad = linalg.fill ins(%zero : f32) outs(%pe : tensor<1x4x5x5xf32>) -> tensor<1x4x5x5xf32>
  %e = tensor.empty() : tensor<1x4x3x3xf32>
  %r = linalg.generic {indexing_maps = [#id4, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : tensor<1x4x3x3xf32>) outs(%e : tensor<1x4x3x3xf32>) {
  ^bb0(%v: f32, %o: f32):
    %m = arith.maximumf %v, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x4x3x3xf32>
  %p = tensor.insert_slice %r into %pad[0, 0, 1, 1] [1, 4, 3, 3] [1, 1, 1, 1] : tensor<1x4x3x3xf32> into tensor<1x4x5x5xf32>
  %d = linalg.generic {indexing_maps = [#w11, #id4], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%w : tensor<4x3x3xf32>) outs(%e : tensor<1x4x3x3xf32>) {
  ^bb0(%w0: f32, %o: f32):
    %c = linalg.index 1 : index
    %oh = linalg.index 2 : index
    %ow = linalg.index 3 : index
    %oh1 = arith.addi %oh, %c1 : index
    %ow1 = arith.addi %ow, %c1 : index
    %v = tensor.extract %p[%c0, %c, %oh1, %ow1] : tensor<1x4x5x5xf32>
    %m = arith.mulf %v, %w0 : f32
    linalg.yield %m : f32
  } -> tensor<1x4x3x3xf32>
  return %d : tensor<1x4x3x3xf32>
}
