// RUN: qc opt %s -split-input-file -p 'qc-lower-qgemm{mr=2 nr=4 vector-bits=128 kc=64 dot=vnni}' | FileCheck %s --check-prefix=VNNI
// RUN: qc opt %s -split-input-file -p 'qc-lower-qgemm{mr=4 nr=8 vector-bits=128 kc=64 dot=sdot}' | FileCheck %s --check-prefix=SDOT

// int8 x int8 with a constant B. vpdpbusd multiplies u8 by s8, so the
// run-time A is flipped (xor 0x80 reads its s8 a as the u8 a + 128) and B's
// packed panel [N/NR][K/4 + 1][NR] of byte quads ends with the correction
// -128 * sum_k B[k, j]. Column 0 is (0, 1, -1, 2) = 0x02FF0100 = 50266368;
// the partial second quad holds B[4, j] alone (-128 -> 0x80); column 0 sums
// to -126: 16128. C is not zeroed first, so the first block starts from C
// plus the correction.
// VNNI:       memref.global "private" constant @b_q4cncols4s : memref<1x3x4xi32> = dense<{{\[\[\[}}50266368, 50266369, 50266370, 50266371], [128, 127, 0, 5], [16128, -16640, -512, -1280]]]>
// VNNI-LABEL: func.func @flipped_a
// VNNI:         call @qc_qgemm_3x4x5_p2x4_ss_dot_flip_a5s(
// VNNI:       func.func private @qc_dot4_us_4(vector<4xi32>, vector<16xi8>, vector<16xi8>) -> vector<4xi32>
// VNNI-LABEL: func.func @qc_par_qgemm_3x4x5_p2x4_ss_dot_flip_range
// VNNI:         %[[C0:.+]] = vector.load %{{.+}} : memref<3x4xi32, strided<[4, 1], offset: ?>>, vector<4xi32>
// VNNI:         %[[FIX:.+]] = vector.load %{{.+}}[%{{.+}}, %c2, %c0] : memref<1x3x4xi32>, vector<4xi32>
// VNNI:         %[[INIT:.+]] = arith.addi %[[C0]], %[[FIX]] : vector<4xi32>
// VNNI:         scf.for %{{.+}} = %c0 to %c2 step %c1 iter_args(%[[ACC:.+]] = %[[INIT]], %{{.+}}) -> (vector<4xi32>, vector<4xi32>)
// VNNI:           %[[BV:.+]] = vector.load %{{.+}} : memref<1x3x4xi32>, vector<4xi32>
// VNNI:           %[[BB:.+]] = vector.bitcast %[[BV]] : vector<4xi32> to vector<16xi8>
// VNNI:           %[[AV:.+]] = memref.load %{{.+}} : memref<2x2x2xi32>
// VNNI:           %[[AB:.+]] = vector.broadcast %[[AV]] : i32 to vector<4xi32>
// VNNI:           %[[ABB:.+]] = vector.bitcast %[[AB]] : vector<4xi32> to vector<16xi8>
// The flipped A is the unsigned operand: it goes first.
// VNNI:           func.call @qc_dot4_us_4(%[[ACC]], %[[ABB]], %[[BB]])
// The wrapper packs A's rows into quads (byte j = k 4p + j) and flips them.
// VNNI-LABEL: func.func private @qc_qgemm_3x4x5_p2x4_ss_dot_flip_a5s
// VNNI-DAG:     %[[FLIP:.+]] = arith.constant -2139062144 : i32
// VNNI-DAG:     %[[S24:.+]] = arith.constant 24 : i32
// VNNI:           arith.extui %{{.+}} : i8 to i32
// VNNI:           %[[B3:.+]] = arith.shli %{{.+}}, %[[S24]] : i32
// VNNI:           %[[Q:.+]] = arith.ori %{{.+}}, %[[B3]] : i32
// VNNI:           arith.xori %[[Q]], %[[FLIP]] : i32
// sdot multiplies s8 by s8: int8 x int8 needs no flip and no correction.
// SDOT-LABEL: func.func @flipped_a
// SDOT:         call @qc_qgemm_3x4x5_p4x8_ss_dot_a5s(
// SDOT-NOT:     arith.xori
// SDOT-LABEL: func.func private @qc_qgemm_3x4x5_p4x8_ss_dot_a5s
// SDOT-NOT:     arith.xori
memref.global "private" constant @b : memref<5x4xi8> = dense<[[0, 1, 2, 3], [1, 1, 1, 1], [-1, -1, -1, -1], [2, 2, 2, 2], [-128, 127, 0, 5]]>
func.func @flipped_a(%a: memref<3x5xi8>, %c: memref<3x4xi32>) {
  %b = memref.get_global @b : memref<5x4xi8>
  linalg.matmul ins(%a, %b : memref<3x5xi8>, memref<5x4xi8>) outs(%c : memref<3x4xi32>)
  return
}

// -----

// Constant int8 weights times a run-time uint8 B (mode s: B's panels packed
// per cache block). For sdot the u8 B is flipped to s8 (b - 128) while four
// rows are interleaved into quads in the scratch panel, and A's packed
// panel [M/MR][K/4 + 1][MR] ends with +128 * sum_k A[i, k]: row 0
// (1..6) = 21 -> 2688, row 2 (127, -128, 0, 0, 1, 1) = 1 -> 128. Rows
// past K = 6 are clamped to row 5 (A's quad is zero there). C starts as the
// correction (C was zeroed). Four rows' quads of A are one load; each
// row's is a lane shuffle (sdot by element).
// SDOT:       memref.global "private" constant @w_q4cprows4s : memref<1x3x4xi32> = dense<{{\[\[\[}}67305985, -50462977, 32895, 0], [1541, 64251, 257, 0], [2688, -2688, 128, 0]]]>
// SDOT-LABEL: func.func @flipped_b
// SDOT:         call @qc_qgemm_3x10x6_s4x8_su_dot_flip_z(
// SDOT-NOT:     linalg.generic
// SDOT-LABEL: func.func @qc_par_qgemm_3x10x6_s4x8_su_dot_flip_z_range
// SDOT:         %[[FLIP:.+]] = arith.constant dense<-2139062144> : vector<8xi32>
// SDOT:         scf.for %[[P:.+]] = %c0 to %c2 step %c1 {
// SDOT:           %[[R0:.+]] = arith.muli %[[P]], %c4 : index
// SDOT:           %[[R1:.+]] = arith.addi %[[R0]], %c1 : index
// SDOT:           arith.minui %[[R1]], %c5 : index
// SDOT-COUNT-4:   vector.load %{{.+}} : memref<6x10xi8, strided<[10, 1], offset: ?>>, vector<8xi8>
// SDOT:           %[[I01:.+]] = vector.interleave %{{.+}}, %{{.+}} : vector<8xi8> -> vector<16xi8>
// SDOT:           %[[I23:.+]] = vector.interleave %{{.+}}, %{{.+}} : vector<8xi8> -> vector<16xi8>
// SDOT:           %[[W01:.+]] = vector.bitcast %[[I01]] : vector<16xi8> to vector<8xi16>
// SDOT:           %[[W23:.+]] = vector.bitcast %[[I23]] : vector<16xi8> to vector<8xi16>
// SDOT:           %[[QD:.+]] = vector.interleave %[[W01]], %[[W23]] : vector<8xi16> -> vector<16xi16>
// SDOT:           %[[QI:.+]] = vector.bitcast %[[QD]] : vector<16xi16> to vector<8xi32>
// SDOT:           %[[QF:.+]] = arith.xori %[[QI]], %[[FLIP]] : vector<8xi32>
// SDOT:           vector.store %[[QF]], %{{.+}}[%[[P]], %c0] : memref<2x8xi32>, vector<8xi32>
// SDOT:         %[[F0:.+]] = memref.load %{{.+}}[%c0, %c2, %c0] : memref<1x3x4xi32>
// SDOT:         %[[V0:.+]] = vector.broadcast %[[F0]] : i32 to vector<4xi32>
// SDOT:         scf.for %{{.+}} iter_args(%[[X0:.+]] = %[[V0]], %{{.+}} = %[[V0]], %{{.+}}) -> (vector<4xi32>, vector<4xi32>, vector<4xi32>, vector<4xi32>, vector<4xi32>, vector<4xi32>)
// SDOT:           %[[BV:.+]] = vector.load %{{.+}} : memref<2x8xi32>, vector<4xi32>
// SDOT:           %[[BB:.+]] = vector.bitcast %[[BV]] : vector<4xi32> to vector<16xi8>
// SDOT:           %[[AQ:.+]] = vector.load %{{.+}} : memref<1x3x4xi32>, vector<4xi32>
// SDOT:           %[[A0:.+]] = vector.shuffle %[[AQ]], %[[AQ]] [0, 0, 0, 0] : vector<4xi32>, vector<4xi32>
// SDOT:           %[[A0B:.+]] = vector.bitcast %[[A0]] : vector<4xi32> to vector<16xi8>
// SDOT:           func.call @qc_dot4_ss_4(%[[X0]], %[[BB]], %[[A0B]])
// SDOT:           vector.shuffle %[[AQ]], %[[AQ]] [1, 1, 1, 1]
// SDOT:           vector.shuffle %[[AQ]], %[[AQ]] [2, 2, 2, 2]
// vpdpbusd takes this u8 B as it is, with the s8 weights second: no flip.
// VNNI-LABEL: func.func @qc_par_qgemm_3x10x6_s2x4_su_dot_z_range
// VNNI-NOT:     arith.xori
// VNNI:         func.call @qc_dot4_us_4(%{{.+}}, %{{.+}}, %{{.+}})
memref.global "private" constant @w : memref<3x6xi8> = dense<[[1, 2, 3, 4, 5, 6], [-1, -2, -3, -4, -5, -6], [127, -128, 0, 0, 1, 1]]>
func.func @flipped_b(%x: memref<6x10xi8>, %c: memref<3x10xi32>) {
  %w = memref.get_global @w : memref<3x6xi8>
  %zero = arith.constant 0 : i32
  linalg.fill ins(%zero : i32) outs(%c : memref<3x10xi32>)
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%w, %x : memref<3x6xi8>, memref<6x10xi8>) outs(%c : memref<3x10xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %ea = arith.extsi %a : i8 to i32
    %eb = arith.extui %b : i8 to i32
    %p = arith.muli %ea, %eb : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}
