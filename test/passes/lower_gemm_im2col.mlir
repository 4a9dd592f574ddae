// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=8 kc=8 mc=8}' | FileCheck %s
// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=8 kc=8 mc=8 stream=false}' | FileCheck %s --check-prefix=NOSTREAM

// A 3x3 convolution as qc-conv-to-gemm leaves it: an im2col copy (marked
// qc.im2col = [kh, kw, sh, sw, dh, dw]) feeding a contraction. The kernel
// gathers each KC x NR panel of B from the padded image instead (mode i):
// the im2col op is gone and the image, flattened, is the kernel's B. Lane j
// of a panel is output position (oh, ow) = divmod(j0 + j, OW), at offset
// oh*sh*W + ow*sw; row (c, kh, kw) adds c*H*W + kh*dh*W + kw*dw. Columns past
// N = 10 are masked off. Rows of OW = 2 make a vector of 8 lanes up to 5 runs of
// consecutive image values, more than the masked loads take (4): a gather. The constant weights (A) are repacked at compile
// time into row panels [M/MR][K][MR]. K = 18 splits into three blocks of
// 6 (balanced, rather than 8 + 8 + 2).
// CHECK:       memref.global "private" constant @w_rows4 : memref<1x18x4xf32>
// CHECK-LABEL: func.func @conv
// CHECK-NOT:     qc.im2col
// CHECK-NOT:     memref.alloc
// CHECK:         %[[AP:.+]] = memref.get_global @w_rows4 : memref<1x18x4xf32>
// CHECK:         %[[FLAT:.+]] = memref.collapse_shape %{{.+}} {{\[}}[0], [1, 2, 3]] : memref<1x2x7x4xf32> into memref<1x56xf32>
// CHECK:         %[[APC:.+]] = memref.cast %[[AP]] : memref<1x18x4xf32> to memref<1x18x4xf32, strided<[72, 4, 1], offset: ?>>
// CHECK:         %[[X0:.+]] = memref.subview %[[FLAT]][0, 0] [1, 56] [1, 1] : memref<1x56xf32> to memref<56xf32, strided<[1]>>
// CHECK:         %[[X:.+]] = memref.cast %[[X0]]
// CHECK:         call @[[K:qc_sgemm_3x10x18_i4x8_i2x7x4_k3x3_s1x1_d1x1_pa]](%[[APC]], %[[X]], %{{.+}})
// CHECK:       func.func @[[K]]_range(%[[A:.+]]: memref<1x18x4xf32, strided<[72, 4, 1], offset: ?>>, %[[B:.+]]: memref<56xf32, strided<[1], offset: ?>>, %[[S:.+]]: memref<6x8xf32>, %{{.+}}: memref<3x10xf32, strided<[10, 1], offset: ?>>, %{{.+}}: index, %{{.+}}: index)
// CHECK-DAG:     %[[VOW:.+]] = arith.constant dense<2> : vector<8xi32>
// CHECK-DAG:     %[[VN:.+]] = arith.constant dense<10> : vector<8xi32>
// CHECK:         %[[OH:.+]] = arith.divui %{{.+}}, %[[VOW]] : vector<8xi32>
// CHECK:         %[[VALID:.+]] = arith.cmpi ult, %{{.+}}, %[[VN]] : vector<8xi32>
// CHECK:         scf.for %[[KC:.+]] = %c0 to %c18 step %c6
// CHECK:           scf.for %[[PK:.+]] = %[[KC]] to %{{.+}} step %c1
// CHECK:             %[[C:.+]] = arith.divui %[[PK]], %c9 : index
// CHECK:             %[[G:.+]] = vector.gather %[[B]][%{{.+}}] [%{{.+}}], %[[VALID]], %{{.+}} : memref<56xf32, strided<[1], offset: ?>>, vector<8xi32>, vector<8xi1>, vector<8xf32> into vector<8xf32>
// CHECK:             vector.store %[[G]], %[[S]][%{{.+}}, %c0] : memref<6x8xf32>, vector<8xf32>
// CHECK:           scf.for {{.+}} iter_args
// CHECK:             memref.load %[[A]][%{{.+}}, %{{.+}}, %c0] : memref<1x18x4xf32, strided<[72, 4, 1], offset: ?>>
// CHECK:             vector.fma
//
// Without streaming, the im2col copy stays and B is packed as a matrix.
// NOSTREAM-LABEL: func.func @conv
// NOSTREAM:         linalg.generic {{.+}} attrs = {qc.im2col = array<i64: 3, 3, 1, 1, 1, 1>}
// NOSTREAM:         call @qc_sgemm_3x10x18_r4x8_pa
#x = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, oh + kh, ow + kw)>
#col = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, kh, kw, oh, ow)>
#ma = affine_map<(n, f, p, k) -> (f, k)>
#mb = affine_map<(n, f, p, k) -> (n, k, p)>
#mc = affine_map<(n, f, p, k) -> (n, f, p)>
memref.global "private" constant @w : memref<3x2x3x3xf32> = dense<0.5>
func.func @conv(%x: memref<1x2x7x4xf32>, %y: memref<1x3x10xf32>) {
  %col = memref.alloc() : memref<1x2x3x3x5x2xf32>
  linalg.generic {indexing_maps = [#x, #col], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x2x7x4xf32>) outs(%col : memref<1x2x3x3x5x2xf32>) attrs = {qc.im2col = array<i64: 3, 3, 1, 1, 1, 1>} {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  %b = memref.collapse_shape %col [[0], [1, 2, 3], [4, 5]] : memref<1x2x3x3x5x2xf32> into memref<1x18x10xf32>
  %w4 = memref.get_global @w : memref<3x2x3x3xf32>
  %a = memref.collapse_shape %w4 [[0], [1, 2, 3]] : memref<3x2x3x3xf32> into memref<3x18xf32>
  linalg.generic {indexing_maps = [#ma, #mb, #mc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<3x18xf32>, memref<1x18x10xf32>) outs(%y : memref<1x3x10xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Stride 1 with OW = 3 < 8 lanes: a vector of a panel is up to 1 + ceil(7/3)
// = 4 runs of consecutive image values (the end of one output row, two whole
// rows, the start of a fourth), run r at r * (W - OW) = 2r past the first's
// offset; four masked loads fetch them, each passing the lanes before through
// (no gather). The masks split the valid lanes at 3 - ow0, 6 - ow0, 9 - ow0.
// CHECK-LABEL: func.func @qc_sgemm_3x9x18_i4x8_i2x5x5_k3x3_s1x1_d1x1_pa_range
// CHECK:         %[[OW0:.+]] = arith.remui %{{.+}}, %c3 : index
// CHECK:         %[[OFFA:.+]] = arith.addi %{{.+}}, %[[OW0]] : index
// CHECK:         %[[OFFB:.+]] = arith.addi %[[OFFA]], %c2 : index
// CHECK:         %[[MA:.+]] = vector.create_mask %{{.+}} : vector<8xi1>
// CHECK:         %[[MV:.+]] = vector.create_mask %[[NVALID:.+]] : vector<8xi1>
// CHECK:         %[[E1:.+]] = arith.subi %c6, %[[OW0]] : index
// CHECK:         %[[N1:.+]] = arith.minsi %[[E1]], %[[NVALID]] : index
// CHECK:         %[[UPTO1:.+]] = vector.create_mask %[[N1]] : vector<8xi1>
// CHECK:         %[[MB:.+]] = arith.xori %[[UPTO1]], %[[MA]] : vector<8xi1>
// CHECK:         %[[OFFC:.+]] = arith.addi %[[OFFA]], %c4 : index
// CHECK:         %[[E2:.+]] = arith.subi %c9, %[[OW0]] : index
// CHECK:         %[[N2:.+]] = arith.minsi %[[E2]], %[[NVALID]] : index
// CHECK:         %[[UPTO2:.+]] = vector.create_mask %[[N2]] : vector<8xi1>
// CHECK:         %[[MC:.+]] = arith.xori %[[UPTO2]], %[[UPTO1]] : vector<8xi1>
// CHECK:         %[[OFFD:.+]] = arith.addi %[[OFFA]], %c6 : index
// CHECK:         %[[MD:.+]] = arith.xori %[[MV]], %[[UPTO2]] : vector<8xi1>
// CHECK:         } else {
// CHECK:           %[[PA:.+]] = arith.addi %[[ROW:[^,]+]], %[[OFFA]] : index
// CHECK:           %[[VA:.+]] = vector.maskedload %{{.+}}[%[[PA]]], %[[MA]], %{{.+}} : memref<50xf32, strided<[1], offset: ?>>, vector<8xi1>, vector<8xf32> into vector<8xf32>
// CHECK:           %[[PB:.+]] = arith.addi %[[ROW]], %[[OFFB]] : index
// CHECK:           %[[VB:.+]] = vector.maskedload %{{.+}}[%[[PB]]], %[[MB]], %[[VA]]
// CHECK:           %[[PC:.+]] = arith.addi %[[ROW]], %[[OFFC]] : index
// CHECK:           %[[VC:.+]] = vector.maskedload %{{.+}}[%[[PC]]], %[[MC]], %[[VB]]
// CHECK:           %[[PD:.+]] = arith.addi %[[ROW]], %[[OFFD]] : index
// CHECK:           %[[V:.+]] = vector.maskedload %{{.+}}[%[[PD]]], %[[MD]], %[[VC]]
// CHECK:           vector.store %[[V]]
// CHECK-NOT:     vector.gather
#x = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, oh + kh, ow + kw)>
#col = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, kh, kw, oh, ow)>
#ma = affine_map<(n, f, p, k) -> (f, k)>
#mb = affine_map<(n, f, p, k) -> (n, k, p)>
#mc = affine_map<(n, f, p, k) -> (n, f, p)>
memref.global "private" constant @w : memref<3x2x3x3xf32> = dense<0.5>
func.func @conv(%x: memref<1x2x5x5xf32>, %y: memref<1x3x9xf32>) {
  %col = memref.alloc() : memref<1x2x3x3x3x3xf32>
  linalg.generic {indexing_maps = [#x, #col], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x2x5x5xf32>) outs(%col : memref<1x2x3x3x3x3xf32>) attrs = {qc.im2col = array<i64: 3, 3, 1, 1, 1, 1>} {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  %b = memref.collapse_shape %col [[0], [1, 2, 3], [4, 5]] : memref<1x2x3x3x3x3xf32> into memref<1x18x9xf32>
  %w4 = memref.get_global @w : memref<3x2x3x3xf32>
  %a = memref.collapse_shape %w4 [[0], [1, 2, 3]] : memref<3x2x3x3xf32> into memref<3x18xf32>
  linalg.generic {indexing_maps = [#ma, #mb, #mc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<3x18xf32>, memref<1x18x9xf32>) outs(%y : memref<1x3x9xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Stride 1 with OW = 12 >= 8 lanes: a vector of a panel covers the end of
// one output row and the start of the next, two runs of consecutive image
// values; two masked loads fetch them, the second passing the first's lanes
// through (no gather). A panel inside one row takes plain loads (%contig).
// CHECK-LABEL: func.func @qc_sgemm_2x144x9_i4x8_i1x14x14_k3x3_s1x1_d1x1_pa_range
// CHECK:         %[[MA:.+]] = vector.create_mask %{{.+}} : vector<8xi1>
// CHECK:         %[[MV:.+]] = vector.create_mask %{{.+}} : vector<8xi1>
// CHECK:         %[[MB:.+]] = arith.xori %[[MV]], %[[MA]] : vector<8xi1>
// CHECK:         %[[CONTIG:.+]] = arith.cmpi ule, %{{.+}}, %c12 : index
// CHECK:         scf.if %[[CONTIG]] {
// CHECK:           vector.load %{{.+}} : memref<196xf32, strided<[1], offset: ?>>, vector<8xf32>
// CHECK:         } else {
// CHECK:           %[[VA:.+]] = vector.maskedload %{{.+}}, %[[MA]], %{{.+}} : memref<196xf32, strided<[1], offset: ?>>, vector<8xi1>, vector<8xf32> into vector<8xf32>
// CHECK:           %[[V:.+]] = vector.maskedload %{{.+}}, %[[MB]], %[[VA]] : memref<196xf32, strided<[1], offset: ?>>, vector<8xi1>, vector<8xf32> into vector<8xf32>
// CHECK:           vector.store %[[V]]
// CHECK-NOT:     vector.gather
#x = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, oh + kh, ow + kw)>
#col = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, kh, kw, oh, ow)>
#ma = affine_map<(n, f, p, k) -> (f, k)>
#mb = affine_map<(n, f, p, k) -> (n, k, p)>
#mc = affine_map<(n, f, p, k) -> (n, f, p)>
memref.global "private" constant @w : memref<2x1x3x3xf32> = dense<0.5>
func.func @conv_rows(%x: memref<1x1x14x14xf32>, %y: memref<1x2x144xf32>) {
  %col = memref.alloc() : memref<1x1x3x3x12x12xf32>
  linalg.generic {indexing_maps = [#x, #col], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x1x14x14xf32>) outs(%col : memref<1x1x3x3x12x12xf32>) attrs = {qc.im2col = array<i64: 3, 3, 1, 1, 1, 1>} {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  %b = memref.collapse_shape %col [[0], [1, 2, 3], [4, 5]] : memref<1x1x3x3x12x12xf32> into memref<1x9x144xf32>
  %w4 = memref.get_global @w : memref<2x1x3x3xf32>
  %a = memref.collapse_shape %w4 [[0], [1, 2, 3]] : memref<2x1x3x3xf32> into memref<2x9xf32>
  linalg.generic {indexing_maps = [#ma, #mb, #mc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<2x9xf32>, memref<1x9x144xf32>) outs(%y : memref<1x2x144xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Bufferization gave two convolutions one im2col buffer, written twice: each
// GEMM gathers from its own image, and both im2col copies go (the first is
// read by nothing once the second rewrites the buffer).
// CHECK-LABEL: func.func @reused_buffer
// CHECK-NOT:     qc.im2col
// CHECK:         call @qc_sgemm_3x9x18_i4x8_i2x5x5_k3x3_s1x1_d1x1_pa(%{{.+}}, %[[X1:.+]], %{{.+}})
// CHECK:         call @qc_sgemm_3x9x18_i4x8_i2x5x5_k3x3_s1x1_d1x1_pa(%{{.+}}, %[[X2:.+]], %{{.+}})
// CHECK-NOT:     linalg.generic
#x = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, oh + kh, ow + kw)>
#col = affine_map<(n, c, kh, kw, oh, ow) -> (n, c, kh, kw, oh, ow)>
#ma = affine_map<(n, f, p, k) -> (f, k)>
#mb = affine_map<(n, f, p, k) -> (n, k, p)>
#mc = affine_map<(n, f, p, k) -> (n, f, p)>
memref.global "private" constant @w : memref<3x2x3x3xf32> = dense<0.5>
func.func @reused_buffer(%x1: memref<1x2x5x5xf32>, %x2: memref<1x2x5x5xf32>, %y1: memref<1x3x9xf32>, %y2: memref<1x3x9xf32>) {
  %col = memref.alloc() : memref<1x2x3x3x3x3xf32>
  %b = memref.collapse_shape %col [[0], [1, 2, 3], [4, 5]] : memref<1x2x3x3x3x3xf32> into memref<1x18x9xf32>
  %w4 = memref.get_global @w : memref<3x2x3x3xf32>
  %a = memref.collapse_shape %w4 [[0], [1, 2, 3]] : memref<3x2x3x3xf32> into memref<3x18xf32>
  linalg.generic {indexing_maps = [#x, #col], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x1 : memref<1x2x5x5xf32>) outs(%col : memref<1x2x3x3x3x3xf32>) attrs = {qc.im2col = array<i64: 3, 3, 1, 1, 1, 1>} {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  linalg.generic {indexing_maps = [#ma, #mb, #mc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<3x18xf32>, memref<1x18x9xf32>) outs(%y1 : memref<1x3x9xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#x, #col], iterator_types = ["parallel", "parallel", "parallel", "parallel", "parallel", "parallel"]}
      ins(%x2 : memref<1x2x5x5xf32>) outs(%col : memref<1x2x3x3x3x3xf32>) attrs = {qc.im2col = array<i64: 3, 3, 1, 1, 1, 1>} {
  ^bb0(%v: f32, %o: f32):
    linalg.yield %v : f32
  }
  linalg.generic {indexing_maps = [#ma, #mb, #mc], iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%a, %b : memref<3x18xf32>, memref<1x18x9xf32>) outs(%y2 : memref<1x3x9xf32>) {
  ^bb0(%p: f32, %q: f32, %acc: f32):
    %m = arith.mulf %p, %q : f32
    %s = arith.addf %acc, %m : f32
    linalg.yield %s : f32
  }
  return
}
