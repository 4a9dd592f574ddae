// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=8 kc=8 mc=8}' | FileCheck %s
// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=8 kc=8 mc=8 row-split-max-b=1024}' | FileCheck %s --check-prefix=BIG

// A compile-time B that L2 holds (20 x 21 floats) and 13 rows (4 row tiles
// of 4, the last one 1 row): the threads split C's row tiles, not its 3
// column panels. The record lists 4 units and `rows`; the range function
// runs rows [4 lo, 4 min(hi, 3)) of full tiles across every panel (the
// panel loop from 0 to 16, then the 5 tail columns), and the 1-row tile
// only in the range that reaches it.
// CHECK:       module attributes {qc.parallel_kernels = [{name = "qc_sgemm_13x21x20_p4x8_rows", operands = 3 : i64, panels = 4 : i64, rows, work = 5460 : i64}]}
// CHECK-LABEL: func.func @constant_b
// CHECK:         call @[[K:qc_sgemm_13x21x20_p4x8_rows]](
// CHECK:       func.func @[[K]]_range(%{{.+}}: memref<13x20xf32, {{.+}}>, %[[PB:.+]]: memref<3x20x8xf32>, %[[C:.+]]: memref<13x21xf32, {{.+}}>, %[[LO:.+]]: index, %[[HI:.+]]: index)
// CHECK:         %[[HIFULL:.+]] = arith.minui %[[HI]], %c3 : index
// CHECK-NEXT:    %[[ILO:.+]] = arith.muli %[[LO]], %c4 : index
// CHECK-NEXT:    %[[IHI:.+]] = arith.muli %[[HIFULL]], %c4 : index
// CHECK-NEXT:    %[[RTAIL:.+]] = arith.cmpi ugt, %[[HI]], %c3 : index
// CHECK:         scf.for %[[IC:.+]] = %[[ILO]] to %[[IHI]] step %c8 {
// CHECK-NEXT:      %[[IEND:.+]] = affine.min #{{.+}}(%[[IC]])[%[[IHI]]]
// CHECK-NEXT:      scf.for %[[J0:.+]] = %c0 to %c16 step %c8 {
// CHECK:             scf.for %[[I0:.+]] = %[[IC]] to %[[IEND]] step %c4 {
// CHECK:               vector.fma
// CHECK:             vector.store %{{.+}}, %[[C]][%[[I0]], %[[J0]]]
// CHECK:           vector.maskedstore %[[C]][%{{.+}}, %c16]
// CHECK:         scf.if %[[RTAIL]] {
// CHECK:           vector.store %{{.+}}, %[[C]][%c12, %{{.+}}]
// CHECK:           vector.maskedstore %[[C]][%c12, %c16]
// CHECK:       func.func private @qc_par_sgemm_13x21x20_p4x8_rows(
// A B larger than row-split-max-b splits the panels.
// BIG:         qc.parallel_kernels = [{name = "qc_sgemm_13x21x20_p4x8", operands = 3 : i64, panels = 3 : i64, work = 5460 : i64}]
func.func @constant_b(%a: memref<13x20xf32>, %c: memref<13x21xf32>) {
  %b = memref.get_global @w : memref<20x21xf32>
  linalg.matmul ins(%a, %b : memref<13x20xf32>, memref<20x21xf32>) outs(%c : memref<13x21xf32>)
  return
}
memref.global "private" constant @w : memref<20x21xf32> = dense<1.0>

// -----

// K over three cache blocks with a Relu after the GEMM: the chain runs in a
// pass over C after the last block, over the range's rows only: from 4 lo to
// the end of its full tiles, or to 13 where the range has the last tile.
// CHECK-LABEL: func.func @chain
// CHECK:         call @[[K:qc_sgemm_13x16x20_p4x8_rows_ezmax0]](
// CHECK:       func.func @[[K]]_range(
// CHECK:         %[[ILO:.+]] = arith.muli %{{.+}}, %c4 : index
// CHECK-NEXT:    %[[IHI:.+]] = arith.muli %{{.+}}, %c4 : index
// CHECK-NEXT:    %[[RTAIL:.+]] = arith.cmpi ugt
// CHECK-NEXT:    %[[RHI:.+]] = arith.select %[[RTAIL]], %c13, %[[IHI]] : index
// CHECK:         scf.for %{{.+}} = %[[ILO]] to %[[RHI]] step %c1 {
// CHECK:           arith.maximumf
// BIG-LABEL:   func.func @chain
// BIG:           call @qc_sgemm_13x16x20_p4x8_ezmax0(
func.func @chain(%a: memref<13x20xf32>, %d: memref<13x16xf32>) {
  %b = memref.get_global @w : memref<20x16xf32>
  %c = memref.alloc() : memref<13x16xf32>
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<13x16xf32>)
  linalg.matmul ins(%a, %b : memref<13x20xf32>, memref<20x16xf32>) outs(%c : memref<13x16xf32>)
  linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                  iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<13x16xf32>) outs(%d : memref<13x16xf32>) {
  ^bb0(%x: f32, %o: f32):
    %m = arith.maximumf %x, %zero : f32
    linalg.yield %m : f32
  }
  return
}
memref.global "private" constant @w : memref<20x16xf32> = dense<1.0>
