// RUN: qc opt %s -p 'qc-lower-gemm{mr=4 nr=8 kc=16 mc=8 stream-max-a=1024}' | FileCheck %s
// RUN: qc opt %s -p 'qc-lower-gemm{mr=4 nr=8 kc=16 mc=8}' | FileCheck %s --check-prefix=PANELS

// A streaming kernel (mode s) whose A (8 x 136 floats, 4352 bytes) is more
// than stream-max-a: the cache blocks of K go outside the panels, so that
// each block of A is read by every panel while it is in cache. Every panel
// of a block copies its rows of B into the scratch buffer, then each row
// tile loads its C tile (the partial sums of the blocks before), runs the
// block's k steps and stores it. The last block (8 deep) is peeled off.
// CHECK-LABEL: func.func @qc_sgemm_8x20x136_s4x8_range(
// CHECK-SAME:    %[[B:[^:]+]]: memref<136x20xf32, strided<[20, 1], offset: ?>>, %[[S:[^:]+]]: memref<16x8xf32>, %[[C:[^:]+]]: memref<8x20xf32
// CHECK:         scf.for %[[KC:.+]] = %c0 to %c128 step %c16 {
// CHECK:           scf.for %[[J0:.+]] = %{{.+}} to %{{.+}} step %c8 {
// CHECK:             scf.for %[[PK:.+]] = %[[KC]] to %{{.+}} step %c1 {
// CHECK:               vector.load %[[B]][%[[PK]], %[[J0]]]
// CHECK:               vector.store %{{.+}}, %[[S]]
// CHECK:             scf.for %[[I0:.+]] = %c0 to %c8 step %c4 {
// CHECK:               vector.load %[[C]][%[[I0]], %[[J0]]]
// CHECK:               scf.for %{{.+}} = %[[KC]] to %{{.+}} step %c1 iter_args
// CHECK:               vector.store %{{.+}}, %[[C]][%[[I0]], %[[J0]]]
// The partial last panel (20 = 2 x 8 + 4 columns), in the same block:
// CHECK:           scf.if
// CHECK:             vector.constant_mask [4]
// CHECK:         scf.for %[[J1:.+]] = %{{.+}} to %{{.+}} step %c8 {
// CHECK:           scf.for %{{.+}} = %c128 to %c136 step %c1 {
// CHECK:             vector.load %[[B]]
// CHECK:           scf.for %{{.+}} = %c0 to %c8 step %c4 {
// CHECK:             scf.for %{{.+}} = %c128 to %c136 step %c1 iter_args
// CHECK:       func.func private @qc_sgemm_8x20x136_s4x8(

// With A in cache (the default bound, 512 KiB), the panels stay outside:
// each panel runs all its blocks while its C tiles are in L1.
// PANELS-LABEL: func.func @qc_sgemm_8x20x136_s4x8_range(
// PANELS:         scf.for %[[J0:.+]] = %{{.+}} to %{{.+}} step %c8 {
// PANELS:           scf.for %[[KC:.+]] = %c0 to %c136 step %c16 {
// PANELS:             scf.for %{{.+}} = %[[KC]] to %{{.+}} step %c1 {
// PANELS:       func.func private @qc_sgemm_8x20x136_s4x8(
func.func @blocks_outside(%a: memref<8x136xf32>, %b: memref<136x20xf32>, %c: memref<8x20xf32>) {
  linalg.matmul ins(%a, %b : memref<8x136xf32>, memref<136x20xf32>) outs(%c : memref<8x20xf32>)
  return
}
