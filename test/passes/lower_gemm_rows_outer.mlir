// RUN: qc opt %s -p 'qc-lower-gemm{mr=4 nr=8 kc=64 mc=8}' | FileCheck %s
// RUN: qc opt %s -p 'qc-lower-gemm{mr=4 nr=8 kc=64 mc=8 in-place-depth=8}' | FileCheck %s --check-prefix=PACKED
// RUN: qc opt %s -p 'qc-lower-gemm{mr=4 nr=8 kc=64 mc=8 rows-outer-depth=0}' | FileCheck %s --check-prefix=OFF

// A shallow K (16) with a C of 512 KiB: each row tile (MC = MR = 4 rows)
// runs across all the call's panels, so that each of its rows of C is
// written as one sequential run. K <= in-place-depth: B is read in place
// (mode r), and as the micro-kernel reads row k of a panel it prefetches,
// into L1, row k of the next panel, the one the tile reads next.
// CHECK:       #[[TILE:.+]] = affine_map<(d0) -> (128, d0 + 4)>
// CHECK-LABEL: func.func @qc_sgemm_128x1024x16_r4x8_range(
// CHECK-SAME:    %[[B:[^:]+]]: memref<16x1024xf32, strided<[1024, 1], offset: ?>>, %[[C:[^:]+]]: memref<128x1024xf32
// CHECK-NOT:     memref<128x16x8xf32>
// CHECK:         scf.for %[[IC:.+]] = %c0 to %c128 step %c4 {
// CHECK:           %[[IEND:.+]] = affine.min #[[TILE]](%[[IC]])
// CHECK:           scf.for %[[J0:.+]] = %{{.+}} to %{{.+}} step %c8 {
// CHECK:             scf.for %[[I0:.+]] = %[[IC]] to %[[IEND]] step %c4 {
// CHECK:               vector.load %[[C]][%[[I0]], %[[J0]]]
// CHECK:               scf.for %[[K:.+]] = %c0 to %c16 step %c1 iter_args
// CHECK-NEXT:            vector.load %[[B]][%[[K]], %[[J0]]]
// CHECK-NEXT:            %[[NEXT:.+]] = arith.addi %[[J0]], %c8 : index
// CHECK-NEXT:            memref.prefetch %[[B]][%[[K]], %[[NEXT]]], read, locality<3>, data
// CHECK:               vector.store %{{.+}}, %[[C]][%[[I0]], %[[J0]]]

// in-place-depth=8: K = 16 is deeper; B is packed whole (mode q) and the
// row tiles read the packed panels.
// PACKED:       #[[TILE:.+]] = affine_map<(d0) -> (128, d0 + 4)>
// PACKED-LABEL: func.func @qc_sgemm_128x1024x16_q4x8_range(
// PACKED-SAME:    %[[B:[^:]+]]: memref<16x1024xf32, strided<[1024, 1], offset: ?>>, %[[BP:[^:]+]]: memref<128x16x8xf32>, %[[C:[^:]+]]: memref<128x1024xf32
// PACKED:         scf.for %[[PP:.+]] = %{{.+}} to %{{.+}} step %c1 {
// PACKED:           scf.for %[[PK:.+]] = %c0 to %c16 step %c1 {
// PACKED:             vector.load %[[B]][%[[PK]],
// PACKED:             vector.store %{{.+}}, %[[BP]][%[[PP]], %[[PK]], %c0]
// PACKED:         scf.for %[[IC:.+]] = %c0 to %c128 step %c4 {
// PACKED:           %[[IEND:.+]] = affine.min #[[TILE]](%[[IC]])
// PACKED:           scf.for %[[J0:.+]] = %{{.+}} to %{{.+}} step %c8 {
// PACKED:             scf.for %[[I0:.+]] = %[[IC]] to %[[IEND]] step %c4 {
// PACKED:               vector.load %[[C]][%[[I0]], %[[J0]]]
// PACKED:               scf.for %{{.+}} = %c0 to %c16 step %c1 iter_args
// PACKED-NEXT:            vector.load %[[BP]]
// PACKED-NOT:             memref.prefetch {{.+}}, read,
// PACKED:               vector.store %{{.+}}, %[[C]][%[[I0]], %[[J0]]]

// A deeper K keeps the streamed panels (mode s): each panel through every row tile.
// CHECK-LABEL: func.func @qc_sgemm_128x1024x256_s4x8_range(
// CHECK:         scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %c8 {
// CHECK:           scf.for %{{.+}} = %c0 to %c256 step %c64 {
// CHECK:             scf.for %{{.+}} = %c0 to %c128 step %c4 {

// rows-outer-depth=0: the shallow kernel streams its panels too.
// OFF-LABEL: func.func @qc_sgemm_128x1024x16_s4x8_range(
// OFF:         scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c8 {
// OFF:           scf.for %{{.+}} = %c0 to %c16 step %c1 {
// OFF:           scf.for %{{.+}} = %c0 to %c128 step %c4 {
func.func @shallow(%a: memref<128x16xf32>, %b: memref<16x1024xf32>, %c: memref<128x1024xf32>) {
  linalg.matmul ins(%a, %b : memref<128x16xf32>, memref<16x1024xf32>) outs(%c : memref<128x1024xf32>)
  return
}

func.func @deep(%a: memref<128x256xf32>, %b: memref<256x1024xf32>, %c: memref<128x1024xf32>) {
  linalg.matmul ins(%a, %b : memref<128x256xf32>, memref<256x1024xf32>) outs(%c : memref<128x1024xf32>)
  return
}
