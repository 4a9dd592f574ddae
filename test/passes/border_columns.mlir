// RUN: qc opt %s -split-input-file -p qc-border-columns | FileCheck %s

// qc-pad-border's four boxes of a 2 x 6 x 8 buffer padded by one row and
// one column (interior rows 1-4): the columns become one fill of a view
// whose row k is the right border of row k and the left border of row
// k + 1, from row 0 (top border) to row 5 (bottom border), offset 7.
// CHECK-LABEL: func.func @columns
// CHECK-SAME:    (%[[B:.+]]: memref<2x6x8xi8>)
// CHECK:         linalg.fill ins(%{{.+}} : i8) outs(%{{.+}} : memref<2x1x8xi8, strided<[48, 8, 1]>>)
// CHECK:         linalg.fill ins(%{{.+}} : i8) outs(%{{.+}} : memref<2x1x8xi8, strided<[48, 8, 1], offset: 40>>)
// CHECK:         %[[V:.+]] = memref.reinterpret_cast %[[B]] to offset: [7], sizes: [2, 5, 2], strides: [48, 8, 1]
// CHECK:         linalg.fill ins(%{{.+}} : i8) outs(%[[V]] : memref<2x5x2xi8, strided<[48, 8, 1], offset: 7>>)
// CHECK-NOT:     linalg.fill
// CHECK-NOT:     memref.subview %[[B]][0, 1, 7]
func.func @columns(%b: memref<2x6x8xi8>) {
  %zp = arith.constant -128 : i8
  %top = memref.subview %b[0, 0, 0] [2, 1, 8] [1, 1, 1] : memref<2x6x8xi8> to memref<2x1x8xi8, strided<[48, 8, 1]>>
  linalg.fill ins(%zp : i8) outs(%top : memref<2x1x8xi8, strided<[48, 8, 1]>>)
  %bottom = memref.subview %b[0, 5, 0] [2, 1, 8] [1, 1, 1] : memref<2x6x8xi8> to memref<2x1x8xi8, strided<[48, 8, 1], offset: 40>>
  linalg.fill ins(%zp : i8) outs(%bottom : memref<2x1x8xi8, strided<[48, 8, 1], offset: 40>>)
  %left = memref.subview %b[0, 1, 0] [2, 4, 1] [1, 1, 1] : memref<2x6x8xi8> to memref<2x4x1xi8, strided<[48, 8, 1], offset: 8>>
  linalg.fill ins(%zp : i8) outs(%left : memref<2x4x1xi8, strided<[48, 8, 1], offset: 8>>)
  %right = memref.subview %b[0, 1, 7] [2, 4, 1] [1, 1, 1] : memref<2x6x8xi8> to memref<2x4x1xi8, strided<[48, 8, 1], offset: 15>>
  linalg.fill ins(%zp : i8) outs(%right : memref<2x4x1xi8, strided<[48, 8, 1], offset: 15>>)
  return
}

// -----

// Columns of widths 1 (left) and 2 (right) over f32 rows 2-3 of a 5 x 6
// plane: the view starts at the right border of row 1 (1 * 6 + 4) and
// its rows hold 3 values.
// CHECK-LABEL: func.func @uneven
// CHECK-COUNT-2: linalg.fill
// CHECK:         memref.reinterpret_cast %{{.+}} to offset: [10], sizes: [3, 3], strides: [6, 1]
// CHECK:         linalg.fill ins(%{{.+}} : f32) outs(%{{.+}} : memref<3x3xf32, strided<[6, 1], offset: 10>>)
// CHECK-NOT:     linalg.fill
func.func @uneven(%b: memref<5x6xf32>) {
  %z = arith.constant 0.0 : f32
  %top = memref.subview %b[0, 0] [2, 6] [1, 1] : memref<5x6xf32> to memref<2x6xf32, strided<[6, 1]>>
  linalg.fill ins(%z : f32) outs(%top : memref<2x6xf32, strided<[6, 1]>>)
  %bottom = memref.subview %b[4, 0] [1, 6] [1, 1] : memref<5x6xf32> to memref<1x6xf32, strided<[6, 1], offset: 24>>
  linalg.fill ins(%z : f32) outs(%bottom : memref<1x6xf32, strided<[6, 1], offset: 24>>)
  %left = memref.subview %b[2, 0] [2, 1] [1, 1] : memref<5x6xf32> to memref<2x1xf32, strided<[6, 1], offset: 12>>
  linalg.fill ins(%z : f32) outs(%left : memref<2x1xf32, strided<[6, 1], offset: 12>>)
  %right = memref.subview %b[2, 4] [2, 2] [1, 1] : memref<5x6xf32> to memref<2x2xf32, strided<[6, 1], offset: 16>>
  linalg.fill ins(%z : f32) outs(%right : memref<2x2xf32, strided<[6, 1], offset: 16>>)
  return
}

// -----

// Left alone: no border row below the columns (the view's last pair would
// write row 0 of the next plane, interior); different values; something
// that could read the buffer between the fills; rows above and below that
// no fill of the value covers (they may hold data).
// CHECK-LABEL: func.func @kept
// CHECK-NOT:     memref.reinterpret_cast
// CHECK-COUNT-12: linalg.fill
func.func private @read(memref<2x6x8xf32>)
func.func @kept(%b: memref<2x6x8xf32>, %c: memref<2x6x8xf32>, %d: memref<2x6x8xf32>, %e: memref<2x6x8xf32>) {
  %z = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  %l0 = memref.subview %b[0, 1, 0] [2, 5, 1] [1, 1, 1] : memref<2x6x8xf32> to memref<2x5x1xf32, strided<[48, 8, 1], offset: 8>>
  linalg.fill ins(%z : f32) outs(%l0 : memref<2x5x1xf32, strided<[48, 8, 1], offset: 8>>)
  %r0 = memref.subview %b[0, 1, 7] [2, 5, 1] [1, 1, 1] : memref<2x6x8xf32> to memref<2x5x1xf32, strided<[48, 8, 1], offset: 15>>
  linalg.fill ins(%z : f32) outs(%r0 : memref<2x5x1xf32, strided<[48, 8, 1], offset: 15>>)
  %tc = memref.subview %c[0, 0, 0] [2, 1, 8] [1, 1, 1] : memref<2x6x8xf32> to memref<2x1x8xf32, strided<[48, 8, 1]>>
  linalg.fill ins(%z : f32) outs(%tc : memref<2x1x8xf32, strided<[48, 8, 1]>>)
  %uc = memref.subview %c[0, 5, 0] [2, 1, 8] [1, 1, 1] : memref<2x6x8xf32> to memref<2x1x8xf32, strided<[48, 8, 1], offset: 40>>
  linalg.fill ins(%z : f32) outs(%uc : memref<2x1x8xf32, strided<[48, 8, 1], offset: 40>>)
  %l1 = memref.subview %c[0, 1, 0] [2, 4, 1] [1, 1, 1] : memref<2x6x8xf32> to memref<2x4x1xf32, strided<[48, 8, 1], offset: 8>>
  linalg.fill ins(%z : f32) outs(%l1 : memref<2x4x1xf32, strided<[48, 8, 1], offset: 8>>)
  %r1 = memref.subview %c[0, 1, 7] [2, 4, 1] [1, 1, 1] : memref<2x6x8xf32> to memref<2x4x1xf32, strided<[48, 8, 1], offset: 15>>
  linalg.fill ins(%one : f32) outs(%r1 : memref<2x4x1xf32, strided<[48, 8, 1], offset: 15>>)
  %td = memref.subview %d[0, 0, 0] [2, 1, 8] [1, 1, 1] : memref<2x6x8xf32> to memref<2x1x8xf32, strided<[48, 8, 1]>>
  linalg.fill ins(%z : f32) outs(%td : memref<2x1x8xf32, strided<[48, 8, 1]>>)
  %ud = memref.subview %d[0, 5, 0] [2, 1, 8] [1, 1, 1] : memref<2x6x8xf32> to memref<2x1x8xf32, strided<[48, 8, 1], offset: 40>>
  linalg.fill ins(%z : f32) outs(%ud : memref<2x1x8xf32, strided<[48, 8, 1], offset: 40>>)
  %l2 = memref.subview %d[0, 1, 0] [2, 4, 1] [1, 1, 1] : memref<2x6x8xf32> to memref<2x4x1xf32, strided<[48, 8, 1], offset: 8>>
  linalg.fill ins(%z : f32) outs(%l2 : memref<2x4x1xf32, strided<[48, 8, 1], offset: 8>>)
  call @read(%d) : (memref<2x6x8xf32>) -> ()
  %r2 = memref.subview %d[0, 1, 7] [2, 4, 1] [1, 1, 1] : memref<2x6x8xf32> to memref<2x4x1xf32, strided<[48, 8, 1], offset: 15>>
  linalg.fill ins(%z : f32) outs(%r2 : memref<2x4x1xf32, strided<[48, 8, 1], offset: 15>>)
  %l3 = memref.subview %e[0, 1, 0] [2, 4, 1] [1, 1, 1] : memref<2x6x8xf32> to memref<2x4x1xf32, strided<[48, 8, 1], offset: 8>>
  linalg.fill ins(%z : f32) outs(%l3 : memref<2x4x1xf32, strided<[48, 8, 1], offset: 8>>)
  %r3 = memref.subview %e[0, 1, 7] [2, 4, 1] [1, 1, 1] : memref<2x6x8xf32> to memref<2x4x1xf32, strided<[48, 8, 1], offset: 15>>
  linalg.fill ins(%z : f32) outs(%r3 : memref<2x4x1xf32, strided<[48, 8, 1], offset: 15>>)
  return
}
