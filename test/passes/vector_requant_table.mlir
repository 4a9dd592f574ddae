// RUN: qc opt %s -p 'qc-vector-requant{table=true}' | FileCheck %s

// A requantization whose second stage (a per-row multiply, offset, shift
// and clamp after the first clamp to [-118, 137]) is a 256-byte table per
// row: entry u is that stage at clamp(u as i8 + 10, -118, 137), row 0's
// first entries (10 * 3 + 8) >> 4 = 2, ... The loop computes the value
// before the first clamp for four vectors of 16 lanes, bounds it below and
// offsets it by -10 (the clamp's range then starts at -128), narrows the
// four to 64 bytes by saturating packs (the upper bound), looks each byte up
// (two vpermi2b on the row's four table vectors, a select on the sign bit)
// and stores the bytes in order: one step of 64, then one ending at the
// row's end (outputs 6..69).
#v = affine_map<(d0, d1) -> (d0, d1)>
#r = affine_map<(d0, d1) -> (d0)>
// CHECK:       memref.global "private" constant @__requant_table_0 : memref<2x256xi8> = dense<"0x0202020203030303
// CHECK-LABEL: func.func @requant
// CHECK:         %[[T:[0-9]+]] = memref.get_global @__requant_table_0
// CHECK:         call @qc_requant_0(%arg0, %arg1, %arg2, %{{[0-9]+}}, %{{[0-9]+}}, %[[T]], %arg3)
// CHECK-LABEL: func.func private @qc_requant_0
// CHECK:         scf.for %[[R:[a-z0-9_]+]] =
// CHECK-DAG:       %[[T0:[0-9]+]] = vector.load %arg5[%[[R]], %c0] : memref<2x256xi8>, vector<64xi8>
// CHECK-DAG:       %[[T1:[0-9]+]] = vector.load %arg5[%[[R]], %c64] : memref<2x256xi8>, vector<64xi8>
// CHECK-DAG:       %[[T2:[0-9]+]] = vector.load %arg5[%[[R]], %c128] : memref<2x256xi8>, vector<64xi8>
// CHECK-DAG:       %[[T3:[0-9]+]] = vector.load %arg5[%[[R]], %c192] : memref<2x256xi8>, vector<64xi8>
// CHECK:           scf.for %[[J:[a-z0-9_]+]] = %c0 to %c64 step %c64 {
// CHECK:             %[[LO:[a-z0-9_]+]] = arith.constant dense<-118> : vector<16xi32>
// CHECK:             %[[G0:[0-9]+]] = arith.maxsi %{{[0-9]+}}, %[[LO]] : vector<16xi32>
// CHECK:             %[[OFF:[a-z0-9_]+]] = arith.constant dense<-10> : vector<16xi32>
// CHECK:             %[[X0:[0-9]+]] = arith.addi %[[G0]], %[[OFF]] : vector<16xi32>
// CHECK-NOT:         arith.minsi
// CHECK:             %[[X1:[0-9]+]] = arith.addi %{{[0-9]+}}, %[[OFF]] : vector<16xi32>
// CHECK:             %[[X2:[0-9]+]] = arith.addi %{{[0-9]+}}, %[[OFF]] : vector<16xi32>
// CHECK:             %[[X3:[0-9]+]] = arith.addi %{{[0-9]+}}, %[[OFF]] : vector<16xi32>
// CHECK:             %[[W0:[0-9]+]] = func.call @qc_x86_packssdw_512(%[[X0]], %[[X1]])
// CHECK:             %[[W1:[0-9]+]] = func.call @qc_x86_packssdw_512(%[[X2]], %[[X3]])
// CHECK:             %[[B:[0-9]+]] = func.call @qc_x86_packsswb_512(%[[W0]], %[[W1]])
// CHECK:             %[[L:[0-9]+]] = func.call @qc_x86_vpermi2b_512(%[[T0]], %[[B]], %[[T1]])
// CHECK:             %[[H:[0-9]+]] = func.call @qc_x86_vpermi2b_512(%[[T2]], %[[B]], %[[T3]])
// CHECK:             %[[N:[0-9]+]] = arith.cmpi slt, %[[B]], %{{.*}} : vector<64xi8>
// CHECK:             %[[S:[0-9]+]] = arith.select %[[N]], %[[H]], %[[L]] : vector<64xi1>, vector<64xi8>
// CHECK:             %[[D:[0-9]+]] = vector.bitcast %[[S]] : vector<64xi8> to vector<16xi32>
// CHECK:             %[[P:[0-9]+]] = vector.shuffle %[[D]], %[[D]] [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]
// CHECK:             %[[O:[0-9]+]] = vector.bitcast %[[P]] : vector<16xi32> to vector<64xi8>
// CHECK:             vector.store %[[O]], %arg6[%[[R]], %[[J]]] : memref<2x70xi8>, vector<64xi8>
// CHECK:           }
// CHECK:           vector.load %arg0[%[[R]], %c6] : memref<2x70xi32>, vector<16xi32>
// CHECK:           func.call @qc_x86_vpermi2b_512
// CHECK:           vector.store %{{[0-9]+}}, %arg6[%[[R]], %c6] : memref<2x70xi8>, vector<64xi8>
memref.global "private" constant @m2 : memref<2xi32> = dense<[3, -2]>
memref.global "private" constant @b2 : memref<2xi32> = dense<[8, 100]>
func.func @requant(%acc: memref<2x70xi32>, %m: memref<2xi32>, %c: memref<2xi64>, %out: memref<2x70xi8>) {
  %c32 = arith.constant 32 : i64
  %lo = arith.constant -118 : i32
  %hi = arith.constant 137 : i32
  %qlo = arith.constant -128 : i32
  %qhi = arith.constant 127 : i32
  %four = arith.constant 4 : i32
  %m2 = memref.get_global @m2 : memref<2xi32>
  %b2 = memref.get_global @b2 : memref<2xi32>
  linalg.generic {indexing_maps = [#v, #r, #r, #r, #r, #v], iterator_types = ["parallel", "parallel"]}
      ins(%acc, %m, %c, %m2, %b2 : memref<2x70xi32>, memref<2xi32>, memref<2xi64>, memref<2xi32>, memref<2xi32>)
      outs(%out : memref<2x70xi8>) {
  ^bb0(%a: i32, %mm: i32, %cc: i64, %mu: i32, %of: i32, %o: i8):
    %a64 = arith.extsi %a : i32 to i64
    %m64 = arith.extsi %mm : i32 to i64
    %p = arith.muli %a64, %m64 : i64
    %s = arith.addi %p, %cc : i64
    %h = arith.shrui %s, %c32 : i64
    %h32 = arith.trunci %h : i64 to i32
    %x1 = arith.maxsi %h32, %lo : i32
    %x2 = arith.minsi %x1, %hi : i32
    %y1 = arith.muli %x2, %mu : i32
    %y2 = arith.addi %y1, %of : i32
    %y3 = arith.shrsi %y2, %four : i32
    %y4 = arith.maxsi %y3, %qlo : i32
    %y5 = arith.minsi %y4, %qhi : i32
    %t = arith.trunci %y5 : i32 to i8
    linalg.yield %t : i8
  }
  return
}
