// RUN: qc opt %s -split-input-file -p 'qc-winograd-conv,qc-bufferize,qc-winograd-loops' | FileCheck %s

// F(2x2, 3x3)'s transforms (a 12x12 map), bufferized, as all-parallel loops
// of adds over (channel, image, tile row, tile column):
// - V and M become flat allocations of 16 planes of 2064 floats (32 x 36
//   values, then padding to one cache line on, mod 4 KiB, from the plane
//   before), viewed as [16, ...] with that plane stride;
// - V is written whole by the input transform: its zero fill is gone;
// - the input transform reads the 4x4 window at 16 constant offsets of X
//   and writes V at 16 constant planes; the output transform reads M's 16
//   planes and adds into Y's 2x2 block at (2th + a, 2tw + b). No multiplies.
// CHECK-DAG:   #[[X00:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d0, d2 * 2, d3 * 2)>
// CHECK-DAG:   #[[X33:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d0, d2 * 2 + 3, d3 * 2 + 3)>
// CHECK-DAG:   #[[V0:.+]] = affine_map<(d0, d1, d2, d3) -> (0, d0, d1, d2, d3)>
// CHECK-DAG:   #[[V15:.+]] = affine_map<(d0, d1, d2, d3) -> (15, d0, d1, d2, d3)>
// CHECK-DAG:   #[[M15:.+]] = affine_map<(d0, d1, d2, d3) -> (15, d1, d0, d2, d3)>
// CHECK-DAG:   #[[Y11:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2 * 2 + 1, d3 * 2 + 1)>
// CHECK-LABEL: func.func @even
// CHECK-SAME:    %[[X:[a-z0-9]+]]: memref<1x32x14x14xf32>, %{{.+}}: memref<1x32x12x12xf32>, %[[Y:[a-z0-9]+]]: memref<1x32x12x12xf32>
// CHECK:         %[[VF:.+]] = memref.alloc() {alignment = 64 : i64} : memref<33024xf32>
// CHECK:         %[[V:.+]] = memref.reinterpret_cast %[[VF]] to offset: [0], sizes: [16, 32, 1, 6, 6], strides: [2064, 36, 36, 6, 1]
// CHECK-NOT:     linalg.fill
// CHECK:         linalg.generic {indexing_maps = [#[[X00]], {{.*}}#[[X33]], #[[V0]], {{.*}}#[[V15]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]] :
// CHECK-SAME:      outs(%[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]] :
// CHECK-NOT:       arith.mulf
// CHECK-COUNT-32:  arith.{{add|sub}}f
// CHECK-NEXT:      linalg.yield
// CHECK:         %[[VM:.+]] = memref.collapse_shape %[[V]] {{\[}}[0], [1], [2, 3, 4]] {{.*}} into memref<16x32x36xf32, strided<[2064, 36, 1]>>
// CHECK:         %[[MF:.+]] = memref.alloc() {alignment = 64 : i64} : memref<33024xf32>
// CHECK:         %[[M:.+]] = memref.reinterpret_cast %[[MF]] to offset: [0], sizes: [16, 32, 36], strides: [2064, 36, 1]
// CHECK:         linalg.fill ins(%{{.+}} : f32) outs(%[[M]] :
// CHECK:         linalg.batch_matmul ins(%{{.+}}, %[[VM]] : memref<16x32x32xf32>, memref<16x32x36xf32, strided<[2064, 36, 1]>>) outs(%[[M]] :
// CHECK:         %[[M5:.+]] = memref.expand_shape %[[M]] {{.*}} into memref<16x32x1x6x6xf32, strided<[2064, 36, 36, 6, 1]>>
// CHECK:         linalg.generic {indexing_maps = [{{.*}}#[[M15]], {{.*}}#[[Y11]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]], %[[M5]] :
// CHECK-SAME:      outs(%[[Y]], %[[Y]], %[[Y]], %[[Y]] :
// CHECK-NOT:       arith.mulf
// CHECK-COUNT-28:  arith.{{add|sub}}f
// CHECK-NEXT:      linalg.yield
// CHECK-NOT:     qc.winograd
func.func @even(%x: tensor<1x32x14x14xf32>, %init: tensor<1x32x12x12xf32>) -> tensor<1x32x12x12xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x14x14xf32>, tensor<32x32x3x3xf32>) outs(%init : tensor<1x32x12x12xf32>) -> tensor<1x32x12x12xf32>
  return %0 : tensor<1x32x12x12xf32>
}

// -----

// F(4x4, 3x3)'s transforms (a 16x16 map: 4x4 tiles), each as two loops
// through a scratch buffer, 6 values in and 6 or 4 out per iteration:
// - input: T[ξ, c, n, th, w] from rows 4th + i of X, along whole rows (w
//   unit stride, all 18 columns); then V[6ξ + ν] from T at 4tw + j;
// - output: M's 36 planes viewed as [6, 6, F, tiles], S[r, ν, F, tiles]
//   from M[ξ, ν] over all 16 tiles of a plane in one loop; then Y's rows
//   4th + r, columns 4tw + q, from S[r, ν].
// The coefficients other than ±1 (B^T's 2, 4, 5; A^T's 2, 4, 8) are
// multiply-adds.
// CHECK-DAG:   #[[XR0:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d0, d2 * 4, d3)>
// CHECK-DAG:   #[[XR5:.+]] = affine_map<(d0, d1, d2, d3) -> (d1, d0, d2 * 4 + 5, d3)>
// CHECK-DAG:   #[[T0:.+]] = affine_map<(d0, d1, d2, d3) -> (0, d0, d1, d2, d3)>
// CHECK-DAG:   #[[T5:.+]] = affine_map<(d0, d1, d2, d3) -> (5, d0, d1, d2, d3)>
// CHECK-DAG:   #[[TC0:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d0, d2, d3, d4 * 4)>
// CHECK-DAG:   #[[TC5:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d1, d0, d2, d3, d4 * 4 + 5)>
// CHECK-DAG:   #[[V0:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d1 * 6, d0, d2, d3, d4)>
// CHECK-DAG:   #[[V5:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d1 * 6 + 5, d0, d2, d3, d4)>
// CHECK-DAG:   #[[M0:.+]] = affine_map<(d0, d1, d2) -> (0, d1, d0, d2)>
// CHECK-DAG:   #[[M5:.+]] = affine_map<(d0, d1, d2) -> (5, d1, d0, d2)>
// CHECK-DAG:   #[[S3:.+]] = affine_map<(d0, d1, d2) -> (3, d1, d0, d2)>
// CHECK-DAG:   #[[SR0:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d3, 0, d1, d0, d2, d4)>
// CHECK-DAG:   #[[SR5:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d3, 5, d1, d0, d2, d4)>
// CHECK-DAG:   #[[Y0:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2 * 4 + d3, d4 * 4)>
// CHECK-DAG:   #[[Y3:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2 * 4 + d3, d4 * 4 + 3)>
// CHECK-LABEL: func.func @f4
// CHECK-SAME:    %[[X:[a-z0-9]+]]: memref<1x32x18x18xf32>, %{{.+}}: memref<1x32x16x16xf32>, %[[Y:[a-z0-9]+]]: memref<1x32x16x16xf32>
// CHECK:         %[[VF:.+]] = memref.alloc() {alignment = 64 : i64} : memref<37440xf32>
// CHECK:         %[[V:.+]] = memref.reinterpret_cast %[[VF]] to offset: [0], sizes: [36, 32, 1, 4, 4], strides: [1040, 16, 16, 4, 1]
// CHECK-NOT:     linalg.fill
// CHECK:         %[[T:.+]] = memref.alloc() {alignment = 64 : i64} : memref<6x32x1x4x18xf32>
// CHECK:         linalg.generic {indexing_maps = [#[[XR0]], {{.*}}#[[XR5]], #[[T0]], {{.*}}#[[T5]]], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[X]], %[[X]], %[[X]], %[[X]], %[[X]], %[[X]] :
// CHECK-SAME:      outs(%[[T]], %[[T]], %[[T]], %[[T]], %[[T]], %[[T]] :
// CHECK-COUNT-6:   arith.mulf
// CHECK:           linalg.yield
// CHECK:         linalg.generic {indexing_maps = [#[[TC0]], {{.*}}#[[TC5]], #[[V0]], {{.*}}#[[V5]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[T]], %[[T]], %[[T]], %[[T]], %[[T]], %[[T]] :
// CHECK-SAME:      outs(%[[V]], %[[V]], %[[V]], %[[V]], %[[V]], %[[V]] :
// CHECK:         linalg.batch_matmul
// CHECK:         %[[S:.+]] = memref.alloc() {alignment = 64 : i64} : memref<4x6x32x1x4x4xf32>
// CHECK:         %[[MP:.+]] = memref.reinterpret_cast %{{.+}} to offset: [0], sizes: [6, 6, 32, 16], strides: [6240, 1040, 16, 1]
// CHECK:         %[[SF:.+]] = memref.collapse_shape %[[S]] {{\[}}[0], [1], [2], [3, 4, 5]] : memref<4x6x32x1x4x4xf32> into memref<4x6x32x16xf32>
// CHECK:         linalg.generic {indexing_maps = [#[[M0]], {{.*}}#[[M5]], #[[M0]], {{.*}}#[[S3]]], iterator_types = ["parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[MP]], %[[MP]], %[[MP]], %[[MP]], %[[MP]], %[[MP]] :
// CHECK-SAME:      outs(%[[SF]], %[[SF]], %[[SF]], %[[SF]] :
// CHECK-COUNT-3:   arith.mulf
// CHECK:           linalg.yield
// CHECK:         linalg.generic {indexing_maps = [#[[SR0]], {{.*}}#[[SR5]], #[[Y0]], {{.*}}#[[Y3]]], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%[[S]], %[[S]], %[[S]], %[[S]], %[[S]], %[[S]] :
// CHECK-SAME:      outs(%[[Y]], %[[Y]], %[[Y]], %[[Y]] :
// CHECK-NOT:     qc.winograd
func.func @f4(%x: tensor<1x32x18x18xf32>, %init: tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x18x18xf32>, tensor<32x32x3x3xf32>) outs(%init : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  return %0 : tensor<1x32x16x16xf32>
}

// -----

// The ops around the output transform, done by its last loop instead (as
// qc-lower-gemm's kernels do them): Y starts from the bias broadcast ahead of
// the convolution (read per channel, d1), and the Relu after it writes the
// function's result. Neither op is left, nor a write of Y's own buffer.
// CHECK-DAG:   #[[B:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d1)>
// CHECK-DAG:   #[[Y0:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2 * 4 + d3, d4 * 4)>
// CHECK-DAG:   #[[Y3:.+]] = affine_map<(d0, d1, d2, d3, d4) -> (d0, d1, d2 * 4 + d3, d4 * 4 + 3)>
// CHECK-LABEL: func.func @f4_bias_relu
// CHECK-SAME:    %{{.+}}: memref<1x32x18x18xf32>, %[[BIAS:[a-z0-9]+]]: memref<32xf32>, %[[OUT:[a-z0-9]+]]: memref<1x32x16x16xf32>
// CHECK-NOT:     ins(%[[BIAS]] : memref<32xf32>)
// CHECK:         linalg.batch_matmul
// CHECK:         linalg.generic
// CHECK:         linalg.generic {indexing_maps = [{{.*}}, #[[B]], #[[Y0]], {{.*}}#[[Y3]]],
// CHECK-SAME:      ins({{.*}}, %[[BIAS]] :
// CHECK-SAME:      outs(%[[OUT]], %[[OUT]], %[[OUT]], %[[OUT]] :
// CHECK-NEXT:    ^bb0({{.*}}, %[[BA:[a-z0-9_]+]]: f32, %out: f32, {{.*}}):
// CHECK-NOT:       %out
// CHECK:           %[[S0:.+]] = arith.addf %[[BA]], %{{.+}} : f32
// CHECK-NEXT:      %[[Z0:.+]] = arith.constant 0.0
// CHECK-NEXT:      %[[R0:.+]] = arith.maximumf %[[S0]], %[[Z0]] : f32
// CHECK:           %[[S1:.+]] = arith.addf %[[BA]], %{{.+}} : f32
// CHECK-NEXT:      %[[Z1:.+]] = arith.constant 0.0
// CHECK-NEXT:      %[[R1:.+]] = arith.maximumf %[[S1]], %[[Z1]] : f32
// CHECK:           %[[S2:.+]] = arith.addf %[[BA]], %{{.+}} : f32
// CHECK-NEXT:      %[[Z2:.+]] = arith.constant 0.0
// CHECK-NEXT:      %[[R2:.+]] = arith.maximumf %[[S2]], %[[Z2]] : f32
// CHECK:           %[[S3:.+]] = arith.addf %[[BA]], %{{.+}} : f32
// CHECK-NEXT:      %[[Z3:.+]] = arith.constant 0.0
// CHECK-NEXT:      %[[R3:.+]] = arith.maximumf %[[S3]], %[[Z3]] : f32
// CHECK-NEXT:      linalg.yield %[[R0]], %[[R1]], %[[R2]], %[[R3]] : f32, f32, f32, f32
// CHECK-NEXT:    }
// CHECK-NEXT:    return
#bias = affine_map<(d0, d1, d2, d3) -> (d1)>
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @f4_bias_relu(%x: tensor<1x32x18x18xf32>, %bias: tensor<32xf32>) -> tensor<1x32x16x16xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x32x16x16xf32>
  %init = linalg.generic {indexing_maps = [#bias, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%bias : tensor<32xf32>) outs(%e : tensor<1x32x16x16xf32>) {
  ^bb0(%b: f32, %o: f32):
    linalg.yield %b : f32
  } -> tensor<1x32x16x16xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x18x18xf32>, tensor<32x32x3x3xf32>) outs(%init : tensor<1x32x16x16xf32>) -> tensor<1x32x16x16xf32>
  %e2 = tensor.empty() : tensor<1x32x16x16xf32>
  %1 = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%0 : tensor<1x32x16x16xf32>) outs(%e2 : tensor<1x32x16x16xf32>) {
  ^bb0(%a: f32, %o: f32):
    %r = arith.maximumf %a, %zero : f32
    linalg.yield %r : f32
  } -> tensor<1x32x16x16xf32>
  return %1 : tensor<1x32x16x16xf32>
}

// -----

// F(2x2)'s one loop, the same way: a zero fill ahead of the convolution (no
// add) and a residual Add + Relu after it, R read at each of Y's 4 maps.
// CHECK-LABEL: func.func @f2_add_relu
// CHECK-SAME:    %{{.+}}: memref<1x32x14x14xf32>, %[[RES:[a-z0-9]+]]: memref<1x32x12x12xf32>, %[[OUT:[a-z0-9]+]]: memref<1x32x12x12xf32>
// CHECK:         linalg.batch_matmul
// CHECK-NOT:     linalg.fill
// CHECK:         linalg.generic
// CHECK-SAME:      ins({{.*}}, %[[RES]], %[[RES]], %[[RES]], %[[RES]] :
// CHECK-SAME:      outs(%[[OUT]], %[[OUT]], %[[OUT]], %[[OUT]] :
// CHECK-NEXT:    ^bb0({{.*}}, %[[R0:[a-z0-9_]+]]: f32, %[[R1:[a-z0-9_]+]]: f32, %[[R2:[a-z0-9_]+]]: f32, %[[R3:[a-z0-9_]+]]: f32, %out: f32, {{.*}}):
// CHECK-NOT:       %out
// CHECK:           %[[S0:.+]] = arith.addf %{{.+}}, %[[R0]] : f32
// CHECK-NEXT:      %[[Z0:.+]] = arith.constant 0.0
// CHECK-NEXT:      %[[M0:.+]] = arith.maximumf %[[S0]], %[[Z0]] : f32
// CHECK:           %[[S1:.+]] = arith.addf %{{.+}}, %[[R1]] : f32
// CHECK-NEXT:      %[[Z1:.+]] = arith.constant 0.0
// CHECK-NEXT:      %[[M1:.+]] = arith.maximumf %[[S1]], %[[Z1]] : f32
// CHECK:           %[[S2:.+]] = arith.addf %{{.+}}, %[[R2]] : f32
// CHECK-NEXT:      %[[Z2:.+]] = arith.constant 0.0
// CHECK-NEXT:      %[[M2:.+]] = arith.maximumf %[[S2]], %[[Z2]] : f32
// CHECK:           %[[S3:.+]] = arith.addf %{{.+}}, %[[R3]] : f32
// CHECK-NEXT:      %[[Z3:.+]] = arith.constant 0.0
// CHECK-NEXT:      %[[M3:.+]] = arith.maximumf %[[S3]], %[[Z3]] : f32
// CHECK-NEXT:      linalg.yield %[[M0]], %[[M1]], %[[M2]], %[[M3]] : f32, f32, f32, f32
// CHECK-NEXT:    }
// CHECK-NEXT:    return
#id2 = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @f2_add_relu(%x: tensor<1x32x14x14xf32>, %r: tensor<1x32x12x12xf32>) -> tensor<1x32x12x12xf32> {
  %w = arith.constant dense<1.0> : tensor<32x32x3x3xf32>
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x32x12x12xf32>
  %init = linalg.fill ins(%zero : f32) outs(%e : tensor<1x32x12x12xf32>) -> tensor<1x32x12x12xf32>
  %0 = linalg.conv_2d_nchw_fchw {dilations = dense<1> : tensor<2xi64>, strides = dense<1> : tensor<2xi64>}
         ins(%x, %w : tensor<1x32x14x14xf32>, tensor<32x32x3x3xf32>) outs(%init : tensor<1x32x12x12xf32>) -> tensor<1x32x12x12xf32>
  %e2 = tensor.empty() : tensor<1x32x12x12xf32>
  %1 = linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%0, %r : tensor<1x32x12x12xf32>, tensor<1x32x12x12xf32>) outs(%e2 : tensor<1x32x12x12xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    %m = arith.maximumf %s, %zero : f32
    linalg.yield %m : f32
  } -> tensor<1x32x12x12xf32>
  return %1 : tensor<1x32x12x12xf32>
}
