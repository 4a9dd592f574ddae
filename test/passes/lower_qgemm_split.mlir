// RUN: qc opt %s -p 'qc-lower-qgemm{mr=2 nr=8 vector-bits=128 kc=256 split=true}' | FileCheck %s

// The split form of the micro-kernel (NEON, RVV: no pair multiply-add): per
// k pair each B vector of i16 pairs is cut once into its even halves
// ((b << 16) >> 16) and odd halves (b >> 16), sign-extended in i32 lanes;
// each row's A pair is cut the same way as scalars and broadcast; then two
// i32 multiply-adds per accumulator. 2 rows x 2 vectors of 4 lanes: 8.
// CHECK-LABEL: func.func @qc_par_qgemm_2x8x4_p2x8_ss_range
// CHECK:         scf.for %{{.+}} iter_args({{.+}}) -> (vector<4xi32>, vector<4xi32>, vector<4xi32>, vector<4xi32>)
// CHECK:           %[[B0:.+]] = vector.load %{{.+}} : memref<1x2x8xi32>, vector<4xi32>
// CHECK:           %[[L0:.+]] = arith.shli %[[B0]], %[[C16:.+]] : vector<4xi32>
// CHECK:           %[[E0:.+]] = arith.shrsi %[[L0]], %[[C16]] : vector<4xi32>
// CHECK:           %[[O0:.+]] = arith.shrsi %[[B0]], %[[C16]] : vector<4xi32>
// CHECK:           %[[A:.+]] = memref.load %{{.+}} : memref<1x2x2xi32>
// CHECK:           %[[AL:.+]] = arith.shli %[[A]], %[[S16:.+]] : i32
// CHECK:           %[[AE:.+]] = arith.shrsi %[[AL]], %[[S16]] : i32
// CHECK:           %[[AO:.+]] = arith.shrsi %[[A]], %[[S16]] : i32
// CHECK:           %[[AEB:.+]] = vector.broadcast %[[AE]] : i32 to vector<4xi32>
// CHECK:           %[[AOB:.+]] = vector.broadcast %[[AO]] : i32 to vector<4xi32>
// CHECK:           %[[PE:.+]] = arith.muli %[[E0]], %[[AEB]] : vector<4xi32>
// CHECK:           %[[X:.+]] = arith.addi %{{.+}}, %[[PE]] : vector<4xi32>
// CHECK:           %[[PO:.+]] = arith.muli %[[O0]], %[[AOB]] : vector<4xi32>
// CHECK:           arith.addi %[[X]], %[[PO]] : vector<4xi32>
// CHECK-COUNT-6:   arith.muli %{{.+}}, %{{.+}} : vector<4xi32>
// CHECK-NOT:       vector.shuffle
// CHECK:           scf.yield
memref.global "private" constant @b : memref<4x8xi8> = dense<[[0, 1, 2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 1, 1, 1, 1], [-1, -1, -1, -1, -1, -1, -1, -1], [3, 3, 3, 3, 3, 3, 3, 3]]>
func.func @packed_b(%a: memref<2x4xi8>, %c: memref<2x8xi32>) {
  %b = memref.get_global @b : memref<4x8xi8>
  linalg.matmul ins(%a, %b : memref<2x4xi8>, memref<4x8xi8>) outs(%c : memref<2x8xi32>)
  return
}
