// RUN: qc opt %s -split-input-file -p 'qc-lower-gemm{mr=4 nr=8 kc=8 mc=8}' | FileCheck %s

// A 1x1 convolution's GEMM whose Clip writes the interior of a padded image
// (qc-pad-into-producer's view, rows 12 apart, 10 wide): the kernel folds
// the bias and the Clip and stores into the padded image itself, C's column
// j at (j / 10) * 12 + j % 10 of a pitched view [5, 34] (from the image's
// first value to its last); a vector across a row end is two masked stores,
// its first lanes there and the rest 2 further on (the pad columns skipped).
// The fill of the padded image stays; C's buffer, the bias broadcast and the
// Clip are gone.
// CHECK-LABEL: func.func @pitched
// CHECK:         linalg.fill ins(%{{.+}} : f32) outs(%[[PAD:.+]] : memref<5x5x12xf32>)
// CHECK:         %[[D:.+]] = memref.subview %[[PAD]][0, 1, 1] [5, 3, 10] [1, 1, 1]
// CHECK:         %[[P:.+]] = memref.reinterpret_cast %[[D]] to offset: [13], sizes: [5, 34], strides: [60, 1]
// CHECK-NOT:     linalg.generic
// CHECK-NOT:     memref.alloc
// CHECK:         %[[PC:.+]] = memref.cast %[[P]]
// CHECK:         call @[[K:qc_sgemm_5x30x8_r4x8_s8_30_60_ebrmax0min6_cp10x12]](%{{.+}}, %{{.+}}, %[[PC]], %{{.+}})
// CHECK:       func.func @[[K]]_range({{.+}}, %[[C:.+]]: memref<5x34xf32, strided<[60, 1], offset: ?>>, %{{.+}}: memref<5xf32, strided<[1], offset: ?>>, %{{.+}}: index, %{{.+}}: index)
// CHECK:         scf.for %[[J:.+]] = %{{.+}} to %{{.+}} step %c8 {
// CHECK:           %[[CL:.+]] = arith.minimumf
// CHECK:           %[[Y:.+]] = arith.divui %[[J]], %c10 : index
// CHECK:           %[[X:.+]] = arith.remui %[[J]], %c10 : index
// CHECK:           %[[YW:.+]] = arith.muli %[[Y]], %c12 : index
// CHECK:           %[[AT:.+]] = arith.addi %[[YW]], %[[X]] : index
// CHECK:           %[[LEFT:.+]] = arith.subi %c10, %[[X]] : index
// CHECK:           %[[CROSS:.+]] = arith.cmpi ult, %[[LEFT]], %c8 : index
// CHECK:           scf.if %[[CROSS]] {
// CHECK:             %[[M1:.+]] = vector.create_mask %[[LEFT]] : vector<8xi1>
// CHECK:             %[[M2:.+]] = arith.xori %[[M1]], %{{.+}} : vector<8xi1>
// CHECK:             %[[AT2:.+]] = arith.addi %[[AT]], %c2 : index
// CHECK:             vector.maskedstore %[[C]][%c0, %[[AT]]], %[[M1]], %{{.+}}
// CHECK:             vector.maskedstore %[[C]][%c0, %[[AT2]]], %[[M2]], %{{.+}}
// CHECK:           } else {
// CHECK:             vector.store %{{.+}}, %[[C]][%c0, %[[AT]]]
// The last panel (6 of 8 columns, at column 24: row 2, 6 lanes left, so
// the crossing test folds away) ands both row masks with its tail mask.
// CHECK:         scf.if
// CHECK:           %[[TAIL:.+]] = vector.constant_mask [6] : vector<8xi1>
// CHECK:           %[[R:.+]] = arith.xori %[[TAIL]], %{{.+}} : vector<8xi1>
// CHECK:           %[[M1T:.+]] = arith.andi %{{.+}}, %[[TAIL]] : vector<8xi1>
// CHECK:           %[[M2T:.+]] = arith.andi %[[R]], %[[TAIL]] : vector<8xi1>
// CHECK:           vector.maskedstore %[[C]][%c0, %c28], %[[M1T]]
// CHECK:           vector.maskedstore %[[C]][%c0, %c30], %[[M2T]]
#rows = affine_map<(d0, d1, d2) -> (d0)>
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @pitched(%a: memref<5x8xf32>, %b: memref<8x30xf32>, %bias: memref<5xf32>, %pad: memref<5x5x12xf32>) {
  %zero = arith.constant 0.0 : f32
  %six = arith.constant 6.0 : f32
  linalg.fill ins(%zero : f32) outs(%pad : memref<5x5x12xf32>)
  %d = memref.subview %pad[0, 1, 1] [5, 3, 10] [1, 1, 1] : memref<5x5x12xf32> to memref<5x3x10xf32, strided<[60, 12, 1], offset: 13>>
  %c = memref.alloc() : memref<5x3x10xf32>
  linalg.generic {indexing_maps = [#rows, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%bias : memref<5xf32>) outs(%c : memref<5x3x10xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  }
  %cv = memref.collapse_shape %c [[0], [1, 2]] : memref<5x3x10xf32> into memref<5x30xf32>
  linalg.matmul ins(%a, %b : memref<5x8xf32>, memref<8x30xf32>) outs(%cv : memref<5x30xf32>)
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%c : memref<5x3x10xf32>) outs(%d : memref<5x3x10xf32, strided<[60, 12, 1], offset: 13>>) {
  ^bb0(%x: f32, %o: f32):
    %m = arith.maximumf %x, %zero : f32
    %n = arith.minimumf %m, %six : f32
    linalg.yield %n : f32
  }
  return
}

// -----

// K = 20 takes three cache blocks of 8: the kernel keeps the partial sums of
// the first two in the padded image itself (stored at its pitch, loaded back
// as two masked loads where a vector crosses a row end) and applies the Relu
// in the last block, peeled off for that, right before the final store (no
// pass over C after the blocks: it could not address the pitch).
// CHECK-LABEL: func.func @pitched_deep
// CHECK:         call @qc_sgemm_5x30x20_r4x8_s20_30_60_ebrmax0_cp10x12(
// CHECK-LABEL: func.func @qc_sgemm_5x30x20_r4x8_s20_30_60_ebrmax0_cp10x12_range(
// CHECK-SAME:    %{{[a-z0-9]+}}: memref<5x20xf32, strided<[20, 1], offset: ?>>, %{{[a-z0-9]+}}: memref<20x30xf32, strided<[30, 1], offset: ?>>, %[[C:[a-z0-9]+]]: memref<5x34xf32, strided<[60, 1], offset: ?>>
// CHECK-NOT:     arith.maximumf
// CHECK:         scf.for %{{.+}} = %c0 to %c8 step %c1 iter_args
// CHECK-NOT:     arith.maximumf
// CHECK:         %[[L1:.+]] = vector.maskedload %[[C]][%c0, %{{.+}}], %{{.+}}, %{{.+}} :
// CHECK-NEXT:    vector.maskedload %[[C]][%c0, %{{.+}}], %{{.+}}, %[[L1]] :
// CHECK-NOT:     arith.maximumf
// CHECK:         scf.for %{{.+}} = %c8 to %c16 step %c1 iter_args
// CHECK-NOT:     arith.maximumf
// CHECK:         scf.for %{{.+}} = %c16 to %c20 step %c1 iter_args
// CHECK:         arith.maximumf
#rows = affine_map<(d0, d1, d2) -> (d0)>
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @pitched_deep(%a: memref<5x20xf32>, %b: memref<20x30xf32>, %bias: memref<5xf32>, %pad: memref<5x5x12xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%pad : memref<5x5x12xf32>)
  %d = memref.subview %pad[0, 1, 1] [5, 3, 10] [1, 1, 1] : memref<5x5x12xf32> to memref<5x3x10xf32, strided<[60, 12, 1], offset: 13>>
  %c = memref.alloc() : memref<5x3x10xf32>
  linalg.generic {indexing_maps = [#rows, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%bias : memref<5xf32>) outs(%c : memref<5x3x10xf32>) {
  ^bb0(%x: f32, %o: f32):
    linalg.yield %x : f32
  }
  %cv = memref.collapse_shape %c [[0], [1, 2]] : memref<5x3x10xf32> into memref<5x30xf32>
  linalg.matmul ins(%a, %b : memref<5x20xf32>, memref<20x30xf32>) outs(%cv : memref<5x30xf32>)
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%c : memref<5x3x10xf32>) outs(%d : memref<5x3x10xf32, strided<[60, 12, 1], offset: 13>>) {
  ^bb0(%x: f32, %o: f32):
    %m = arith.maximumf %x, %zero : f32
    linalg.yield %m : f32
  }
  return
}
