// RUN: qc opt %s -split-input-file -p 'qc-lower-qgemm{mr=8 nr=32 vector-bits=512 kc=192 dot=vnni amx=true}' | FileCheck %s
// RUN: qc opt %s -split-input-file -p 'qc-lower-qgemm{mr=8 nr=32 vector-bits=512 kc=192 dot=vnni amx=true emulate-dot=true}' | FileCheck %s --check-prefix=EMU

// Constant int8 weights of 16 rows (one tile), a run-time int8 B: the AMX
// kernel. A's 70 k are 18 quads, padded to 32 (two 16-quad tile steps); its
// packed array keeps the correction row last, at quad 32 (-128 * 70 =
// -8960 per row: B is flipped to u8 while it is packed, as for vpdpbusd).
// The scratch panel S has whole tiles of rows (32 x 32 quads). Each call
// first writes every row's start (its correction) 16 times into a stack
// tile; the helper loads it as the row tile's start, multiplies the row
// tile into the stack tile, whose rows are then the sums. The last panel
// (8 columns) stores with a mask.
// CHECK:       scratch = array<i64: 32, 32>
// CHECK:       memref.global "private" constant @w_q4cnrows16amxs : memref<1x33x16xi32>
// CHECK-LABEL: func.func @tiles
// CHECK:         call @qc_qgemm_16x40x70_s16x32_ss_amx_flip_z(
// CHECK:       func.func private @qc_amx_su_16x32_k18_b128_c128_st(index, index, index, index)
// CHECK-LABEL: func.func @qc_par_qgemm_16x40x70_s16x32_ss_amx_flip_z_range
// CHECK-SAME:    %[[A:[a-z0-9]+]]: memref<1x33x16xi32>, %{{[a-z0-9]+}}: memref<70x40xi8, {{.+}}>, %[[S:[a-z0-9]+]]: memref<32x32xi32>
// CHECK:         %[[T:.+]] = memref.alloca() {alignment = 64 : i64} : memref<16x32xi32>
// CHECK:         %[[ST:.+]] = memref.alloca() {alignment = 64 : i64} : memref<16x16xi32>
// CHECK:         scf.for %[[SR:.+]] = %c0 to %c16 step %c1 {
// CHECK:           %[[FIX:.+]] = memref.load %[[A]][%{{.+}}, %c32, %{{.+}}] : memref<1x33x16xi32>
// CHECK:           %[[FIXV:.+]] = vector.broadcast %[[FIX]] : i32 to vector<16xi32>
// CHECK:           vector.store %[[FIXV]], %[[ST]][%[[SR]], %c0] : memref<16x16xi32>, vector<16xi32>
// CHECK:         }
// CHECK:         arith.xori
// CHECK:         %[[PA:.+]] = memref.extract_aligned_pointer_as_index %[[A]] : memref<1x33x16xi32> -> index
// CHECK:         %[[PB:.+]] = memref.extract_aligned_pointer_as_index %[[S]] : memref<32x32xi32> -> index
// CHECK:         %[[PC:.+]] = memref.extract_aligned_pointer_as_index %[[T]] : memref<16x32xi32> -> index
// CHECK:         %[[PS:.+]] = memref.extract_aligned_pointer_as_index %[[ST]] : memref<16x16xi32> -> index
// CHECK:         func.call @qc_amx_su_16x32_k18_b128_c128_st(%[[PA]], %[[PB]], %[[PC]], %[[PS]])
// Then a loop over the tile's rows: its two vectors are the sums.
// CHECK:         scf.for %[[R:.+]] = %c0 to %c16 step %c1 {
// CHECK-NEXT:      %[[R0:.+]] = vector.load %[[T]][%[[R]], %c0] : memref<16x32xi32>, vector<16xi32>
// CHECK-NEXT:      %[[R1:.+]] = vector.load %[[T]][%[[R]], %c16] : memref<16x32xi32>, vector<16xi32>
// CHECK-NEXT:      vector.store %[[R0]], %{{.+}}[%[[R]], %{{.+}}] : memref<16x40xi32, strided<[40, 1], offset: ?>>, vector<16xi32>
// CHECK-NEXT:      vector.store %[[R1]], %{{.+}}[%[[R]], %{{.+}}] : memref<16x40xi32, strided<[40, 1], offset: ?>>, vector<16xi32>
// CHECK:         func.call @qc_amx_su_16x32_k18_b128_c128_st(
// CHECK:         scf.for
// CHECK:           vector.maskedstore
// CHECK-NOT:     qc_dot4
// Emulated, the same tile product is the dot helper as vector code over
// every padded quad (32), reading A where the tile layout put it, from
// the row's start.
// EMU-NOT:     qc_amx_
// EMU-LABEL:   func.func @qc_par_qgemm_16x40x70_s16x32_ss_amx_flip_z_range
// EMU:           %[[EST:.+]] = vector.load %alloca_{{[0-9]+}}[%{{.+}}, %c0] : memref<16x16xi32>, vector<16xi32>
// EMU:           scf.for %{{.+}} = %c0 to %c32 step %c1 iter_args(%{{.+}} = %[[EST]]) -> (vector<16xi32>)
// EMU:             func.call @qc_dot4_us_16_emu(
// EMU:           vector.store %{{.+}}, %alloca[%{{.+}}, %{{.+}}] : memref<16x32xi32>, vector<16xi32>
memref.global "private" constant @w : memref<16x70xi8> = dense<1>
func.func @tiles(%x: memref<70x40xi8>, %c: memref<16x40xi32>) {
  %w = memref.get_global @w : memref<16x70xi8>
  %zero = arith.constant 0 : i32
  linalg.fill ins(%zero : i32) outs(%c : memref<16x40xi32>)
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%w, %x : memref<16x70xi8>, memref<70x40xi8>) outs(%c : memref<16x40xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %ea = arith.extsi %a : i8 to i32
    %eb = arith.extsi %b : i8 to i32
    %p = arith.muli %ea, %eb : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}

// -----

// 13 rows are not whole tiles: the vpdpbusd kernel (8 x 32).
// CHECK-LABEL: func.func @rows_not_tiles
// CHECK:         call @qc_qgemm_13x40x70_s8x32_ss_dot_flip_z(
// CHECK-NOT:   qc_amx_
memref.global "private" constant @w : memref<13x70xi8> = dense<1>
func.func @rows_not_tiles(%x: memref<70x40xi8>, %c: memref<13x40xi32>) {
  %w = memref.get_global @w : memref<13x70xi8>
  %zero = arith.constant 0 : i32
  linalg.fill ins(%zero : i32) outs(%c : memref<13x40xi32>)
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%w, %x : memref<13x70xi8>, memref<70x40xi8>) outs(%c : memref<13x40xi32>) {
  ^bb0(%a: i8, %b: i8, %acc: i32):
    %ea = arith.extsi %a : i8 to i32
    %eb = arith.extsi %b : i8 to i32
    %p = arith.muli %ea, %eb : i32
    %s = arith.addi %acc, %p : i32
    linalg.yield %s : i32
  }
  return
}
