// RUN: qc opt %s -split-input-file -p qc-collapse-dims | FileCheck %s

// An elementwise op over dense buffers: all four loops become one, on
// flat views of both operands.
// CHECK-DAG:   #[[ID1:.+]] = affine_map<(d0) -> (d0)>
// CHECK-LABEL: func.func @dense
// CHECK-SAME:    (%[[X:.+]]: memref<1x4x6x6xf32>, %[[Y:.+]]: memref<1x4x6x6xi8>)
// CHECK:         %[[FX:.+]] = memref.collapse_shape %[[X]] {{\[}}[0, 1, 2, 3]] : memref<1x4x6x6xf32> into memref<144xf32>
// CHECK:         %[[FY:.+]] = memref.collapse_shape %[[Y]] {{\[}}[0, 1, 2, 3]] : memref<1x4x6x6xi8> into memref<144xi8>
// CHECK:         linalg.generic {indexing_maps = [#[[ID1]], #[[ID1]]], iterator_types = ["parallel"]}
// CHECK-SAME:      ins(%[[FX]] : memref<144xf32>) outs(%[[FY]] : memref<144xi8>)
// CHECK:           arith.fptosi
func.func @dense(%x: memref<1x4x6x6xf32>, %y: memref<1x4x6x6xi8>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>,
                                   affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x4x6x6xf32>) outs(%y : memref<1x4x6x6xi8>) {
  ^bb0(%a: f32, %b: i8):
    %q = arith.fptosi %a : f32 to i8
    linalg.yield %q : i8
  }
  return
}

// -----

// A per-channel operand reads d1 alone: d0 and d1 stay apart (the
// channel operand does not walk d0), the plane's two loops merge.
// CHECK-DAG:   #[[C:.+]] = affine_map<(d0, d1, d2) -> (d1)>
// CHECK-DAG:   #[[P:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @per_channel
// CHECK:         memref.collapse_shape %{{.+}} {{\[}}[0], [1], [2, 3]] : memref<2x4x6x6xi32> into memref<2x4x36xi32>
// CHECK-NOT:     memref.collapse_shape %{{.+}} : memref<4xi32>
// CHECK:         memref.collapse_shape %{{.+}} {{\[}}[0], [1], [2, 3]] : memref<2x4x6x6xf32> into memref<2x4x36xf32>
// CHECK:         linalg.generic {indexing_maps = [#[[P]], #[[C]], #[[P]]], iterator_types = ["parallel", "parallel", "parallel"]}
// CHECK-SAME:      ins(%{{.+}}, %{{.+}} : memref<2x4x36xi32>, memref<4xi32>) outs(%{{.+}} : memref<2x4x36xf32>)
func.func @per_channel(%x: memref<2x4x6x6xi32>, %c: memref<4xi32>, %y: memref<2x4x6x6xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>,
                                   affine_map<(d0, d1, d2, d3) -> (d1)>,
                                   affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x, %c : memref<2x4x6x6xi32>, memref<4xi32>) outs(%y : memref<2x4x6x6xf32>) {
  ^bb0(%a: i32, %b: i32, %o: f32):
    %s = arith.addi %a, %b : i32
    %f = arith.sitofp %s : i32 to f32
    linalg.yield %f : f32
  }
  return
}

// -----

// The interior of a padded buffer: rows 6 long, 8 apart. Its row and
// column loops stay apart (8 != 6 x 1), and so do the channel and row
// loops (64 != 6 x 8); the unit batch and the channels, 256 = 4 x 64
// apart, are one run.
// CHECK-DAG:   #[[M3:.+]] = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
// CHECK-LABEL: func.func @padded
// CHECK:         memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : memref<1x4x6x6xf32> into memref<4x6x6xf32>
// CHECK:         memref.collapse_shape %{{.+}} {{\[}}[0, 1], [2], [3]] : memref<1x4x6x6xf32, strided<[256, 64, 8, 1], offset: 9>> into memref<4x6x6xf32, strided<[64, 8, 1], offset: 9>>
// CHECK:         linalg.generic {indexing_maps = [#[[M3]], #[[M3]]], iterator_types = ["parallel", "parallel", "parallel"]}
func.func @padded(%x: memref<1x4x6x6xf32>, %p: memref<1x4x8x8xf32>) {
  %v = memref.subview %p[0, 0, 1, 1] [1, 4, 6, 6] [1, 1, 1, 1] : memref<1x4x8x8xf32> to memref<1x4x6x6xf32, strided<[256, 64, 8, 1], offset: 9>>
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>,
                                   affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%x : memref<1x4x6x6xf32>) outs(%v : memref<1x4x6x6xf32, strided<[256, 64, 8, 1], offset: 9>>) {
  ^bb0(%a: f32, %b: f32):
    linalg.yield %a : f32
  }
  return
}

// -----

// A transpose (the maps name d2, d3 in opposite orders), a reduction
// and a body that reads a loop index keep their loops.
// CHECK-LABEL: func.func @kept
// CHECK-NOT:     memref.collapse_shape
// CHECK:         iterator_types = ["parallel", "parallel"]
// CHECK:         iterator_types = ["parallel", "reduction", "reduction"]
// CHECK:         iterator_types = ["parallel", "parallel"]
// CHECK:           linalg.index 1
func.func @kept(%x: memref<6x6xf32>, %y: memref<6x6xf32>, %r: memref<4xf32>, %z: memref<4x6x6xf32>) {
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1, d0)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<6x6xf32>) outs(%y : memref<6x6xf32>) {
  ^bb0(%a: f32, %b: f32):
    linalg.yield %a : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1, d2)>, affine_map<(d0, d1, d2) -> (d0)>],
                  iterator_types = ["parallel", "reduction", "reduction"]}
      ins(%z : memref<4x6x6xf32>) outs(%r : memref<4xf32>) {
  ^bb0(%a: f32, %b: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<6x6xf32>) outs(%y : memref<6x6xf32>) {
  ^bb0(%a: f32, %b: f32):
    %i = linalg.index 1 : index
    %c = arith.index_cast %i : index to i32
    %f = arith.sitofp %c : i32 to f32
    %s = arith.addf %a, %f : f32
    linalg.yield %s : f32
  }
  return
}
