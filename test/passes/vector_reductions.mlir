// RUN: qc opt %s -split-input-file -p qc-vector-reductions | FileCheck %s

// A row sum (LayerNormalization's mean) becomes vector code: four
// accumulators of 8 lanes over the row of 128 (a loop of 4 rounds), combined
// pairwise, the lanes folded in halves (8 -> 4 -> 2 -> 1), and the output's
// initial value added last: one load and one store per row, not per element.
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func @row_sum
// CHECK-NOT:     linalg.generic
// CHECK:         call @qc_reduce_0(%arg0, %arg1)
// CHECK-LABEL: func.func private @qc_reduce_0
// CHECK-DAG:     %[[C32:.+]] = arith.constant 32 : index
// CHECK-DAG:     %[[C128:.+]] = arith.constant 128 : index
// CHECK:         scf.for %[[R:[a-z0-9_]+]] =
// CHECK:           %[[Z:.+]] = arith.constant dense<-0.000000e+00> : vector<8xf32>
// CHECK:           %[[ACC:[0-9]+]]:4 = scf.for %[[J:[a-z0-9_]+]] = %{{.+}} to %[[C128]] step %[[C32]] iter_args(%[[A0:[a-z0-9_]+]] = %[[Z]], %[[A1:[a-z0-9_]+]] = %[[Z]], %[[A2:[a-z0-9_]+]] = %[[Z]], %[[A3:[a-z0-9_]+]] = %[[Z]])
// CHECK:             %[[V0:[0-9]+]] = vector.load %arg0[%[[R]], %[[J]]] : memref<64x128xf32>, vector<8xf32>
// CHECK:             %[[S0:[0-9]+]] = arith.addf %[[A0]], %[[V0]] : vector<8xf32>
// CHECK:             %[[J1:[0-9]+]] = arith.addi %[[J]], %c8 : index
// CHECK:             %[[V1:[0-9]+]] = vector.load %arg0[%[[R]], %[[J1]]]
// CHECK:             arith.addf %[[A1]], %[[V1]] : vector<8xf32>
// CHECK:             arith.addi %[[J]], %c16 : index
// CHECK:             arith.addf %[[A2]], %{{.+}} : vector<8xf32>
// CHECK:             %[[J3:[0-9]+]] = arith.addi %[[J]], %c24 : index
// CHECK:             %[[V3:[0-9]+]] = vector.load %arg0[%[[R]], %[[J3]]]
// CHECK:             %[[S3:[0-9]+]] = arith.addf %[[A3]], %[[V3]] : vector<8xf32>
// CHECK:             scf.yield %[[S0]], %{{.+}}, %{{.+}}, %[[S3]]
// CHECK:           %[[P01:[0-9]+]] = arith.addf %[[ACC]]#0, %[[ACC]]#1 : vector<8xf32>
// CHECK:           %[[P23:[0-9]+]] = arith.addf %[[ACC]]#2, %[[ACC]]#3 : vector<8xf32>
// CHECK:           %[[P:[0-9]+]] = arith.addf %[[P01]], %[[P23]] : vector<8xf32>
// CHECK:           %[[LO:[0-9]+]] = vector.shuffle %[[P]], %[[P]] [0, 1, 2, 3]
// CHECK:           %[[HI:[0-9]+]] = vector.shuffle %[[P]], %[[P]] [4, 5, 6, 7]
// CHECK:           arith.addf %[[LO]], %[[HI]] : vector<4xf32>
// CHECK:           arith.addf %{{.+}} : vector<2xf32>
// CHECK:           %[[ONE:[0-9]+]] = arith.addf %{{.+}} : vector<1xf32>
// CHECK:           %[[SUM:[0-9]+]] = vector.extract %[[ONE]][0] : f32 from vector<1xf32>
// CHECK:           %[[INIT:[0-9]+]] = memref.load %arg1[%[[R]]] : memref<64xf32>
// CHECK:           %[[NEW:[0-9]+]] = arith.addf %[[INIT]], %[[SUM]] : f32
// CHECK:           memref.store %[[NEW]], %arg1[%[[R]]] : memref<64xf32>
// CHECK-NOT:       memref.store
func.func @row_sum(%x: memref<64x128xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<64x128xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// The variance's sum of squares: the body before the sum is replayed on
// vectors, the per-row mean loaded once and broadcast. A row of 20 is two
// vectors (straight-line code, no loop) and a tail of 4 lanes, folded on its
// own and added to the rest.
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func private @qc_reduce_0
// CHECK:         scf.for %[[R:[a-z0-9_]+]] =
// CHECK:           %[[M:[0-9]+]] = memref.load %arg1[%[[R]]] : memref<4xf32>
// CHECK:           %[[MV:[0-9]+]] = vector.broadcast %[[M]] : f32 to vector<8xf32>
// CHECK-NOT:       scf.for
// CHECK:           %[[X0:[0-9]+]] = vector.load %arg0[%[[R]], %c0] : memref<4x20xf32>, vector<8xf32>
// CHECK:           %[[D0:[0-9]+]] = arith.subf %[[X0]], %[[MV]] : vector<8xf32>
// CHECK:           %[[Q0:[0-9]+]] = arith.mulf %[[D0]], %[[D0]] : vector<8xf32>
// CHECK:           vector.load %arg0[%[[R]], %c8] : memref<4x20xf32>, vector<8xf32>
// CHECK:           %[[Q1:[0-9]+]] = arith.mulf
// CHECK:           arith.addf %[[Q0]], %[[Q1]] : vector<8xf32>
// CHECK:           %[[MAIN:[0-9]+]] = vector.extract
// CHECK:           %[[M4:[0-9]+]] = vector.broadcast %[[M]] : f32 to vector<4xf32>
// CHECK:           %[[X2:[0-9]+]] = vector.load %arg0[%[[R]], %c16] : memref<4x20xf32>, vector<4xf32>
// CHECK:           arith.subf %[[X2]], %[[M4]] : vector<4xf32>
// CHECK:           %[[TAIL:[0-9]+]] = vector.extract
// CHECK:           %[[ROW:[0-9]+]] = arith.addf %[[MAIN]], %[[TAIL]] : f32
// CHECK:           %[[INIT:[0-9]+]] = memref.load %arg2[%[[R]]]
// CHECK:           arith.addf %[[INIT]], %[[ROW]] : f32
func.func @centered_squares(%x: memref<4x20xf32>, %mean: memref<4xf32>, %out: memref<4xf32>) {
  linalg.generic {indexing_maps = [#id, #row, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x, %mean : memref<4x20xf32>, memref<4xf32>) outs(%out : memref<4xf32>) {
  ^bb0(%in: f32, %m: f32, %acc: f32):
    %d = arith.subf %in, %m : f32
    %q = arith.mulf %d, %d : f32
    %s = arith.addf %acc, %q : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Softmax's row max: the accumulators start at -inf, and the combiner is the
// body's maximumf throughout. A row of 3 is a tail only: 2 lanes, then 1.
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#row = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func private @qc_reduce_0
// CHECK-COUNT-2: scf.for
// CHECK-NOT:       dense<
// CHECK:           vector.load %arg0[%{{.+}}, %{{.+}}, %c0] : memref<2x5x3xf32>, vector<2xf32>
// CHECK:           arith.maximumf %{{.+}} : vector<1xf32>
// CHECK:           vector.load %arg0[%{{.+}}, %{{.+}}, %c2] : memref<2x5x3xf32>, vector<1xf32>
// CHECK:           arith.maximumf %{{.+}} : f32
// CHECK:           arith.maximumf %{{.+}} : f32
func.func @row_max(%x: memref<2x5x3xf32>, %out: memref<2x5xf32>) {
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x : memref<2x5x3xf32>) outs(%out : memref<2x5xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.maximumf %acc, %in : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// A slice of rows (qc-parallel-loops' range): the dynamic row count is read
// from the output; the min reduction starts at +inf.
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
// CHECK-LABEL: func.func private @qc_reduce_0
// CHECK:         %[[N:[a-z0-9_]+]] = memref.dim %arg1, %c0 : memref<?xf32, strided<[1], offset: ?>>
// CHECK:         scf.for %{{.+}} = %c0 to %[[N]] step %c1
// CHECK:           arith.constant dense<0x7F800000> : vector<8xf32>
// CHECK:           arith.minimumf %{{.+}} : vector<8xf32>
func.func @rows_slice(%x: memref<?x64xf32, strided<[64, 1], offset: ?>>, %out: memref<?xf32, strided<[1], offset: ?>>) {
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<?x64xf32, strided<[64, 1], offset: ?>>) outs(%out : memref<?xf32, strided<[1], offset: ?>>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.minimumf %in, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// GlobalAveragePool's sum over the last two dims (7 x 7): one run of 49 per
// channel, so the caller collapses them and the function reduces rows of 49
// (six vectors, straight-line, and a tail of 1).
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
#row = affine_map<(d0, d1, d2, d3) -> (d0, d1)>
// CHECK-LABEL: func.func @spatial_sum
// CHECK:         %[[X:.+]] = memref.collapse_shape %arg0 {{\[}}[0], [1], [2, 3]] : memref<1x8x7x7xf32> into memref<1x8x49xf32>
// CHECK:         call @qc_reduce_0(%[[X]], %arg1) : (memref<1x8x49xf32>, memref<1x8xf32>) -> ()
// CHECK-LABEL: func.func private @qc_reduce_0
// CHECK-COUNT-6: vector.load %arg0[%{{.+}}, %{{.+}}, %{{.+}}] : memref<1x8x49xf32>, vector<8xf32>
// CHECK:         vector.load %arg0[%{{.+}}, %{{.+}}, %c48] : memref<1x8x49xf32>, vector<1xf32>
func.func @spatial_sum(%x: memref<1x8x7x7xf32>, %out: memref<1x8xf32>) {
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "parallel", "reduction", "reduction"]}
      ins(%x : memref<1x8x7x7xf32>) outs(%out : memref<1x8xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Not taken: a reduction over the outer loop (the rows are not contiguous
// along it), a column read with a stride, an input that is the output's
// buffer, an integer sum, a body that scales the running sum, and two
// reduction dims that are not one run of memory (a window of an image).
#id = affine_map<(d0, d1) -> (d0, d1)>
#tr = affine_map<(d0, d1) -> (d1, d0)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
// CHECK-LABEL: func.func @not_taken
// CHECK-NOT:     qc_reduce
// CHECK-COUNT-6: linalg.generic
// CHECK-NOT:     qc_reduce
func.func @not_taken(%x: memref<8x16xf32>, %i: memref<8x16xi32>, %out: memref<8xf32>, %cols: memref<16xf32>,
                     %iout: memref<8xi32>) {
  %w = memref.subview %x[0, 0] [4, 4] [1, 1] : memref<8x16xf32> to memref<4x4xf32, strided<[16, 1]>>
  %one = memref.subview %out[0] [1] [1] : memref<8xf32> to memref<1xf32, strided<[1]>>
  %w3 = memref.expand_shape %w [[0, 1], [2]] output_shape [1, 4, 4] : memref<4x4xf32, strided<[16, 1]>> into memref<1x4x4xf32, strided<[64, 16, 1]>>
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0)>],
                  iterator_types = ["parallel", "reduction", "reduction"]}
      ins(%w3 : memref<1x4x4xf32, strided<[64, 16, 1]>>) outs(%one : memref<1xf32, strided<[1]>>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#id, #col], iterator_types = ["reduction", "parallel"]}
      ins(%x : memref<8x16xf32>) outs(%cols : memref<16xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  }
  %xt = memref.reinterpret_cast %x to offset: [0], sizes: [16, 8], strides: [1, 16] : memref<8x16xf32> to memref<16x8xf32, strided<[1, 16]>>
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%xt : memref<16x8xf32, strided<[1, 16]>>) outs(%cols : memref<16xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  }
  %o2 = memref.subview %x[0, 0] [1, 8] [1, 1] : memref<8x16xf32> to memref<8xf32, strided<[1]>>
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<8x16xf32>) outs(%o2 : memref<8xf32, strided<[1]>>) {
  ^bb0(%in: f32, %acc: f32):
    %s = arith.addf %in, %acc : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%i : memref<8x16xi32>) outs(%iout : memref<8xi32>) {
  ^bb0(%in: i32, %acc: i32):
    %s = arith.addi %in, %acc : i32
    linalg.yield %s : i32
  }
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<8x16xf32>) outs(%out : memref<8xf32>) {
  ^bb0(%in: f32, %acc: f32):
    %h = arith.mulf %acc, %in : f32
    %s = arith.addf %h, %in : f32
    linalg.yield %s : f32
  }
  return
}
