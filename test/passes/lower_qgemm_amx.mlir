// RUN: qc opt %s -split-input-file -p 'qc-lower-qgemm{mr=8 nr=32 vector-bits=512 kc=192 dot=vnni amx=true}' | FileCheck %s
// RUN: qc opt %s -split-input-file -p 'qc-lower-qgemm{mr=8 nr=32 vector-bits=512 kc=192 dot=vnni amx=true emulate-dot=true}' | FileCheck %s --check-prefix=EMU

// Constant int8 weights of 16 rows (one tile), a run-time int8 B: the AMX
// kernel. A's 70 k are 18 quads, padded to 32 (two 16-quad tile steps); its
// packed array keeps the correction row last, at quad 32 (-128 * 70 =
// -8960 per row: B is flipped to u8 while it is packed, as for vpdpbusd).
// The scratch panel S has whole tiles of rows (32 x 32 quads). The helper
// multiplies the row tile into the stack tile, whose rows plus the
// correction are the sums. The last panel (8 columns) stores with a mask.
// CHECK:       scratch = array<i64: 32, 32>
// CHECK:       memref.global "private" constant @w_q4cnrows16amxs : memref<1x33x16xi32>
// CHECK-LABEL: func.func @tiles
// CHECK:         call @qc_qgemm_16x40x70_s16x32_ss_amx_flip_z(
// CHECK:       func.func private @qc_amx_su_16x32_k18_b128_c128(index, index, index)
// CHECK-LABEL: func.func @qc_par_qgemm_16x40x70_s16x32_ss_amx_flip_z_range
// CHECK-SAME:    %[[S:[a-z0-9]+]]: memref<32x32xi32>
// CHECK:         %[[T:.+]] = memref.alloca() {alignment = 64 : i64} : memref<16x32xi32>
// CHECK:         arith.xori
// CHECK:         %[[PA:.+]] = memref.extract_aligned_pointer_as_index %{{.+}} : memref<1x33x16xi32> -> index
// CHECK:         %[[PB:.+]] = memref.extract_aligned_pointer_as_index %[[S]] : memref<32x32xi32> -> index
// CHECK:         %[[PC:.+]] = memref.extract_aligned_pointer_as_index %[[T]] : memref<16x32xi32> -> index
// CHECK:         func.call @qc_amx_su_16x32_k18_b128_c128(%{{.+}}, %[[PB]], %[[PC]])
// Then a loop over the tile's rows: the row's correction, its two vectors.
// CHECK:         scf.for %[[R:.+]] = %c0 to %c16 step %c1 {
// CHECK:           %[[FIX:.+]] = memref.load %{{.+}}[%c0, %c32, %[[R]]] : memref<1x33x16xi32>
// CHECK:           %[[FIXV:.+]] = vector.broadcast %[[FIX]] : i32 to vector<16xi32>
// CHECK:           %[[R0:.+]] = vector.load %[[T]][%[[R]], %c0] : memref<16x32xi32>, vector<16xi32>
// CHECK:           %[[A0:.+]] = arith.addi %[[R0]], %[[FIXV]] : vector<16xi32>
// CHECK:           %[[R1:.+]] = vector.load %[[T]][%[[R]], %c16] : memref<16x32xi32>, vector<16xi32>
// CHECK:           %[[A1:.+]] = arith.addi %[[R1]], %[[FIXV]] : vector<16xi32>
// CHECK:           vector.store %[[A0]], %{{.+}}[%[[R]], %{{.+}}] : memref<16x40xi32, strided<[40, 1], offset: ?>>, vector<16xi32>
// CHECK:           vector.store %[[A1]], %{{.+}}[%[[R]], %{{.+}}] : memref<16x40xi32, strided<[40, 1], offset: ?>>, vector<16xi32>
// CHECK:         func.call @qc_amx_su_16x32_k18_b128_c128(
// CHECK:         scf.for
// CHECK:           vector.maskedstore
// CHECK-NOT:     qc_dot4
// Emulated, the same tile product is the dot helper as vector code over
// every padded quad (32), reading A where the tile layout put it.
// EMU-NOT:     qc_amx_
// EMU-LABEL:   func.func @qc_par_qgemm_16x40x70_s16x32_ss_amx_flip_z_range
// EMU:           scf.for %{{.+}} = %c0 to %c32 step %c1 iter_args(%{{.+}} = %{{.+}}) -> (vector<16xi32>)
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
