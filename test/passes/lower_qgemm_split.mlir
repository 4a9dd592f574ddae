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
// RUN: qc opt %s -p 'qc-lower-qgemm{mr=2 nr=8 vector-bits=128 kc=256 split=true planar=true}' | FileCheck %s --check-prefix=PLANAR

// planar (RVV): per k pair the packed panel holds the NR i16 values of the
// even row, then the NR of the odd one (rows 0..7 and 1s: 0 | 1 << 16 =
// 65536, ..., 1 | 1 << 16 = 65537; rows -1s and 3s: -1, 196611). Each half
// of a column vector is loaded as i16 and sign-extended, A's pair is two i16
// scalars: no shifts, and LLVM's RISC-V backend makes every multiply-add a
// widening vwmacc.vx.
// PLANAR:       memref.global "private" constant @b_qpcols8s : memref<1x2x8xi32> = dense<{{\[\[\[}}65536, 196610, 327684, 458758, 65537, 65537, 65537, 65537], [-1, -1, -1, -1, 196611, 196611, 196611, 196611]]]>
// PLANAR-LABEL: func.func @qc_par_qgemm_2x8x4_p2x8_ss_range
// PLANAR:         scf.for %[[K:.+]] = %{{.+}} iter_args({{.+}}) -> (vector<4xi32>, vector<4xi32>, vector<4xi32>, vector<4xi32>)
// PLANAR:           %[[BE:.+]] = vector.load %{{.+}}[%{{.+}}, %[[K]], %c0] : memref<1x2x8xi32>, vector<2xi32>
// PLANAR:           %[[BE16:.+]] = vector.bitcast %[[BE]] : vector<2xi32> to vector<4xi16>
// PLANAR:           %[[E0:.+]] = arith.extsi %[[BE16]] : vector<4xi16> to vector<4xi32>
// PLANAR:           %[[BO:.+]] = vector.load %{{.+}}[%{{.+}}, %[[K]], %c4] : memref<1x2x8xi32>, vector<2xi32>
// PLANAR:           %[[BO16:.+]] = vector.bitcast %[[BO]] : vector<2xi32> to vector<4xi16>
// PLANAR:           %[[O0:.+]] = arith.extsi %[[BO16]] : vector<4xi16> to vector<4xi32>
// PLANAR:           vector.load %{{.+}}[%{{.+}}, %[[K]], %c2] : memref<1x2x8xi32>, vector<2xi32>
// PLANAR:           vector.load %{{.+}}[%{{.+}}, %[[K]], %c6] : memref<1x2x8xi32>, vector<2xi32>
// PLANAR:           %[[AP:.+]] = vector.load %{{.+}} : memref<1x2x2xi32>, vector<1xi32>
// PLANAR:           %[[AP16:.+]] = vector.bitcast %[[AP]] : vector<1xi32> to vector<2xi16>
// PLANAR:           %[[AE:.+]] = vector.extract %[[AP16]][0] : i16 from vector<2xi16>
// PLANAR:           %[[AEW:.+]] = arith.extsi %[[AE]] : i16 to i32
// PLANAR:           %[[AO:.+]] = vector.extract %[[AP16]][1] : i16 from vector<2xi16>
// PLANAR:           %[[AOW:.+]] = arith.extsi %[[AO]] : i16 to i32
// PLANAR:           %[[AEB:.+]] = vector.broadcast %[[AEW]] : i32 to vector<4xi32>
// PLANAR:           %[[AOB:.+]] = vector.broadcast %[[AOW]] : i32 to vector<4xi32>
// PLANAR:           %[[PE:.+]] = arith.muli %[[E0]], %[[AEB]] : vector<4xi32>
// PLANAR:           %[[X:.+]] = arith.addi %{{.+}}, %[[PE]] : vector<4xi32>
// PLANAR:           %[[PO:.+]] = arith.muli %[[O0]], %[[AOB]] : vector<4xi32>
// PLANAR:           arith.addi %[[X]], %[[PO]] : vector<4xi32>
// PLANAR-NOT:       arith.shrsi
// PLANAR:           scf.yield
memref.global "private" constant @b : memref<4x8xi8> = dense<[[0, 1, 2, 3, 4, 5, 6, 7], [1, 1, 1, 1, 1, 1, 1, 1], [-1, -1, -1, -1, -1, -1, -1, -1], [3, 3, 3, 3, 3, 3, 3, 3]]>
func.func @packed_b(%a: memref<2x4xi8>, %c: memref<2x8xi32>) {
  %b = memref.get_global @b : memref<4x8xi8>
  linalg.matmul ins(%a, %b : memref<2x4xi8>, memref<4x8xi8>) outs(%c : memref<2x8xi32>)
  return
}
