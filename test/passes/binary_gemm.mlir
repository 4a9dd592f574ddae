// RUN: qc opt %s -p 'qc-lower-binary-gemm{mr=2 nr=4 vector-bits=256}' | FileCheck %s

// The binary GEMM P[m, f] += popcount(A[m, k] ^ W[k, f]) with a constant W:
// W is repacked at compile time into panels [N/NR][K][NR] (8 columns -> 2
// panels of 4: W[k, 4 + j] lands in panel 1), and the generic becomes a call
// to a kernel with a 2-row register tile and a 1-row tail (M = 5).
// CHECK:       memref.global "private" constant @w_bpacked4 : memref<2x3x4xi64> = dense<{{\[\[}}[0, 1, 2, 3], [8, 9, 10, 11], [16, 17, 18, 19]], {{\[\[}}4, 5, 6, 7], [12, 13, 14, 15], [20, 21, 22, 23]]]>
// CHECK-LABEL: func.func @qc_model
// CHECK-SAME:    (%[[A:.+]]: memref<5x3xi64>, %[[C:.+]]: memref<5x8xi32>)
// CHECK:         %[[WP:.+]] = memref.get_global @w_bpacked4 : memref<2x3x4xi64>
// CHECK:         %[[AC:.+]] = memref.cast %[[A]] : memref<5x3xi64> to memref<5x3xi64, strided<[3, 1], offset: ?>>
// CHECK:         %[[CC:.+]] = memref.cast %[[C]]
// CHECK:         call @qc_bgemm_5x8x3_xor_2x4(%[[AC]], %[[WP]], %[[CC]])
// CHECK-NOT:     linalg.generic
// CHECK-LABEL: func.func private @qc_bgemm_5x8x3_xor_2x4
// The k loop carries 2 rows x 1 vector of byte counters.
// CHECK:         scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args({{.+}}) -> (vector<32xi8>, vector<32xi8>)
// CHECK:           %[[WV:.+]] = vector.load %{{.+}} : memref<2x3x4xi64>, vector<4xi64>
// CHECK:           %[[AW:.+]] = memref.load
// CHECK:           %[[AB:.+]] = vector.broadcast %[[AW]] : i64 to vector<4xi64>
// CHECK:           %[[X:.+]] = arith.xori %[[AB]], %[[WV]] : vector<4xi64>
// CHECK:           %[[XB:.+]] = vector.bitcast %[[X]] : vector<4xi64> to vector<32xi8>
// CHECK:           %[[PC:.+]] = math.ctpop %[[XB]] : vector<32xi8>
// CHECK:           arith.addi %{{.+}}, %[[PC]] : vector<32xi8>
// After the loop the byte counts are widened and added into P.
// CHECK:         arith.muli %{{.+}}, %{{.+}} : vector<4xi64>
// CHECK:         arith.trunci %{{.+}} : vector<4xi64> to vector<4xi32>
// CHECK:         vector.store %{{.+}} : memref<5x8xi32, strided<[8, 1], offset: ?>>, vector<4xi32>
// The row tail: one row, one counter.
// CHECK:         scf.for %{{.+}} -> (vector<32xi8>)
memref.global "private" constant @w : memref<3x8xi64> = dense<[[0, 1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14, 15], [16, 17, 18, 19, 20, 21, 22, 23]]>
func.func @qc_model(%a: memref<5x3xi64>, %c: memref<5x8xi32>) {
  %w = memref.get_global @w : memref<3x8xi64>
  linalg.generic {indexing_maps = [affine_map<(m, f, k) -> (m, k)>, affine_map<(m, f, k) -> (k, f)>, affine_map<(m, f, k) -> (m, f)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %w : memref<5x3xi64>, memref<3x8xi64>) outs(%c : memref<5x8xi32>) attrs = {qc.op = "bgemm", qc.bgemm = "xor"} {
  ^bb0(%x: i64, %y: i64, %acc: i32):
    %v = arith.xori %x, %y : i64
    %p = math.ctpop %v : i64
    %t = arith.trunci %p : i64 to i32
    %s = arith.addi %acc, %t : i32
    linalg.yield %s : i32
  }
  return
}
