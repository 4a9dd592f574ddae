// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=32 vector-bits=512 kc=8 mc=8 row-split-max-b=0}' | FileCheck %s
// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=16 vector-bits=256 kc=8 mc=8 row-split-max-b=0}' | FileCheck %s --check-prefix=AVX2

// Several row tiles share each chunk of a compile-time B's panels, so the k
// loop prefetches the same row of the next panel into L2 as it reads one:
// every 64-byte line of that row. A panel row of NR = 32 floats is two
// lines (two 16-lane vectors): two prefetches, at columns 0 and 16 (with
// the first alone, the micro-kernel waited on the second line, in memory:
// ResNet-50's 7x7 stage, 49 x 512 x 4608, 1.3x faster with both).
// CHECK-LABEL: func.func @qc_sgemm_13x64x20_p4x32_range(
// CHECK:         arith.divui %{{.+}}, %c32 : index
// CHECK-NEXT:    %[[JNEXT:.+]] = affine.min
// CHECK:         scf.for %[[KK:.+]] = %{{.+}} to %{{.+}} step %c1 iter_args(
// CHECK-NEXT:      vector.load %[[PB:.+]][%[[JP:.+]], %[[KK]], %c0] : memref<2x20x32xf32>, vector<16xf32>
// CHECK-NEXT:      memref.prefetch %[[PB]][%[[JNEXT]], %[[KK]], %c0], read, locality<2>, data : memref<2x20x32xf32>
// CHECK-NEXT:      vector.load %[[PB]][%[[JP]], %[[KK]], %c16] : memref<2x20x32xf32>, vector<16xf32>
// CHECK-NEXT:      memref.prefetch %[[PB]][%[[JNEXT]], %[[KK]], %c16], read, locality<2>, data : memref<2x20x32xf32>
// CHECK-NEXT:      memref.load
// With 8-lane vectors a row of NR = 16 floats is one line: one prefetch
// for its two vectors.
// AVX2-LABEL: func.func @qc_sgemm_13x64x20_p4x16_range(
// AVX2:         scf.for %[[KK:.+]] = %{{.+}} to %{{.+}} step %c1 iter_args(
// AVX2-NEXT:      vector.load %[[PB:.+]][%[[JP:.+]], %[[KK]], %c0] : memref<4x20x16xf32>, vector<8xf32>
// AVX2-NEXT:      memref.prefetch %[[PB]][%{{.+}}, %[[KK]], %c0], read, locality<2>, data : memref<4x20x16xf32>
// AVX2-NEXT:      vector.load %[[PB]][%[[JP]], %[[KK]], %c8] : memref<4x20x16xf32>, vector<8xf32>
// AVX2-NEXT:      memref.load
func.func @constant_b(%a: memref<13x20xf32>, %c: memref<13x64xf32>) {
  %b = memref.get_global @w : memref<20x64xf32>
  linalg.matmul ins(%a, %b : memref<13x20xf32>, memref<20x64xf32>) outs(%c : memref<13x64xf32>)
  return
}
memref.global "private" constant @w : memref<20x64xf32> = dense<1.0>

// -----

// A C of 512 KiB or more with a short K: after its k loop each row tile
// prefetches for writing the lines of C it will store two panels on
// (column j0 + 2 NR) in each of its rows: both 64-byte lines of a 32-float
// panel row (with the first alone, SqueezeNet's stem, 64 rows 49 KB apart,
// waited on the second: the model 1.02-1.05x faster with both).
// CHECK-LABEL: func.func @qc_sgemm_64x2048x16_p4x32_range(
// CHECK-SAME:    %{{[^:]+}}: memref<64x16xf32, {{.+}}>, %{{[^:]+}}: memref<64x16x32xf32>, %[[C:[^:]+]]: memref<64x2048xf32, {{.+}}>,
// CHECK:         scf.for %[[J0:.+]] = %{{.+}} to %{{.+}} step %c32 {
// CHECK:           scf.for %[[I:.+]] = %{{.+}} to %{{.+}} step %c4 {
// CHECK:             scf.yield
// CHECK-NEXT:      }
// CHECK-NEXT:      %[[L0:.+]] = arith.addi %[[J0]], %c64 : index
// CHECK-NEXT:      %[[L1:.+]] = arith.addi %[[J0]], %c80 : index
// CHECK-NEXT:      memref.prefetch %[[C]][%[[I]], %[[L0]]], write, locality<3>, data
// CHECK-NEXT:      memref.prefetch %[[C]][%[[I]], %[[L1]]], write, locality<3>, data
// CHECK-NEXT:      memref.prefetch %[[C]][%{{.+}}, %[[L0]]], write, locality<3>, data
// CHECK-NEXT:      memref.prefetch %[[C]][%{{.+}}, %[[L1]]], write, locality<3>, data
func.func @store_prefetch(%a: memref<64x16xf32>, %c: memref<64x2048xf32>) {
  %b = memref.get_global @w2 : memref<16x2048xf32>
  linalg.matmul ins(%a, %b : memref<64x16xf32>, memref<16x2048xf32>) outs(%c : memref<64x2048xf32>)
  return
}
memref.global "private" constant @w2 : memref<16x2048xf32> = dense<1.0>
