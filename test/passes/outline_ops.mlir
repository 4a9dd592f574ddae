// RUN: qc opt %s -split-input-file -p qc-outline-ops | FileCheck %s

// Each loop nest of the entry moves into its own private function; buffers
// and views stay in the entry and are passed in, constants are cloned.
// CHECK-LABEL: func.func @qc_model
// CHECK-SAME:    (%[[X:.+]]: memref<8xf32>, %[[Y:.+]]: memref<8xf32>)
// CHECK:         %[[T:.+]] = memref.alloc() : memref<8xf32>
// CHECK-NEXT:    call @qc_model_part0(%[[X]], %[[T]]) : (memref<8xf32>, memref<8xf32>) -> ()
// CHECK-NEXT:    call @qc_model_part1(%[[T]], %[[Y]]) : (memref<8xf32>, memref<8xf32>) -> ()
// CHECK-NEXT:    memref.dealloc %[[T]]
// CHECK-NEXT:    return
// CHECK:       func.func private @qc_model_part0(%[[A:.+]]: memref<8xf32>, %[[B:.+]]: memref<8xf32>)
// CHECK-NEXT:    %[[C:.+]] = arith.constant 2.000000e+00 : f32
// CHECK-NEXT:    linalg.generic {{.+}} ins(%[[A]] : memref<8xf32>) outs(%[[B]] : memref<8xf32>)
// CHECK:           arith.mulf %{{.+}}, %[[C]]
// CHECK:       func.func private @qc_model_part1
// CHECK:           arith.addf
#id = affine_map<(d0) -> (d0)>
func.func @qc_model(%x: memref<8xf32>, %y: memref<8xf32>) {
  %two = arith.constant 2.0 : f32
  %t = memref.alloc() : memref<8xf32>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%x : memref<8xf32>) outs(%t : memref<8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %m = arith.mulf %a, %two : f32
    linalg.yield %m : f32
  }
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]} ins(%t : memref<8xf32>) outs(%y : memref<8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %s = arith.addf %a, %a : f32
    linalg.yield %s : f32
  }
  memref.dealloc %t : memref<8xf32>
  return
}

// -----

// A fill's function is compiled for size: LLVM makes its rows memset calls
// or a short loop instead of unrolling a box of a padded buffer's border
// (qc-pad-border) into hundreds of stores. Other loop nests are not.
// CHECK-LABEL: func.func @qc_model
// CHECK:       func.func private @qc_model_part0(%{{.+}}: memref<1x8x1x10xf32, strided<[800, 100, 10, 1]>>) attributes {passthrough = ["optsize"]}
// CHECK-NEXT:    arith.constant 0.000000e+00 : f32
// CHECK-NEXT:    linalg.fill
// CHECK:       func.func private @qc_model_part1(
// CHECK-NOT:     passthrough
// CHECK-SAME:    {
#id = affine_map<(d0, d1, d2, d3) -> (d0, d1, d2, d3)>
func.func @qc_model(%x: memref<1x8x8x8xf32>, %y: memref<1x8x10x10xf32>) {
  %zero = arith.constant 0.0 : f32
  %top = memref.subview %y[0, 0, 0, 0] [1, 8, 1, 10] [1, 1, 1, 1] : memref<1x8x10x10xf32> to memref<1x8x1x10xf32, strided<[800, 100, 10, 1]>>
  linalg.fill ins(%zero : f32) outs(%top : memref<1x8x1x10xf32, strided<[800, 100, 10, 1]>>)
  %in = memref.subview %y[0, 0, 1, 1] [1, 8, 8, 8] [1, 1, 1, 1] : memref<1x8x10x10xf32> to memref<1x8x8x8xf32, strided<[800, 100, 10, 1], offset: 11>>
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel", "parallel"]} ins(%x : memref<1x8x8x8xf32>) outs(%in : memref<1x8x8x8xf32, strided<[800, 100, 10, 1], offset: 11>>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  return
}
