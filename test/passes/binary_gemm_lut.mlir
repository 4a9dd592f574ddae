// RUN: qc opt %s -p 'qc-lower-binary-gemm{lut=true}' | FileCheck %s

// The AVX2 lookup kernel with the threshold folded in. A binary conv's
// layer as the frontend leaves it, bufferized: P = bgemm(A, W) into a zeroed
// C, then the threshold op (qc.k = K = 100) reads P with a padding
// correction per position (3 positions, 2 images: M = 6 rows) and
// tf = 2 t + flip per channel, and ORs the bits into a zeroed output.
// The pass compares P with h = floor((K + corr - t) / 2) per class of
// positions (rows 0 and 2 of corr are equal: 2 classes, class 0 the
// smaller h, of position 1) and xors the not-flip bits (even channels:
// 0x5555555555555555); C, its fill, the output's fill and the threshold
// op are gone.
// CHECK-DAG:   memref.global "private" constant @qc_bthr_h_{{[0-9a-f]+}} : memref<2x64xi16>
// CHECK-DAG:   memref.global "private" constant @qc_bthr_cls_{{[0-9a-f]+}} : memref<6xi32> = dense<[1, 0, 1, 1, 0, 1]>
// CHECK-DAG:   memref.global "private" constant @qc_bthr_notflip_{{[0-9a-f]+}} : memref<1xi64> = dense<6148914691236517205>
// CHECK-DAG:   memref.global "private" constant @qc_bgemm_lut_xor_{{[0-9a-f]+}} : memref<256x32xi8>
// CHECK-DAG:   memref.global "private" constant @w_lut_{{[0-9a-f]+}} : memref<1x2x8x128xi8>
// CHECK-LABEL: func.func @qc_model
// CHECK-NOT:     linalg.fill
// CHECK-NOT:     memref.alloc
// CHECK:         call @qc_bgemm_6x64x2_xor_lut2x64_bits2(
// CHECK-NOT:     linalg.
// CHECK:         return
// vpshufb: the intrinsic, declared as an LLVM function.
// CHECK:       llvm.func @llvm.x86.avx2.pshuf.b(vector<32xi8>, vector<32xi8>) -> vector<32xi8>
// The k loop: 2 rows x 8 bytes x 4 vectors of lookups, byte counters.
// CHECK-LABEL: func.func private @qc_bgemm_6x64x2_xor_lut2x64_bits2
// CHECK:         scf.for {{.+}} -> (vector<32xi8>, vector<32xi8>, vector<32xi8>, vector<32xi8>, vector<32xi8>, vector<32xi8>, vector<32xi8>, vector<32xi8>)
// CHECK:           %[[TAB:.+]] = vector.load %{{.+}} : memref<256x32xi8>, vector<32xi8>
// CHECK:           %[[L:.+]] = llvm.call @llvm.x86.avx2.pshuf.b(%[[TAB]], %{{.+}})
// CHECK:           arith.addi %{{.+}}, %[[L]] : vector<32xi8>
// Widened: the low and high nibble lanes of 16 channels, added as i16.
// CHECK:         vector.extract_strided_slice
// CHECK:         arith.extui %{{.+}} : vector<16xi8> to vector<16xi16>
// The epilogue: a row's class, 4 compares, 64 bits, not-flip, one store.
// CHECK:         memref.load %{{.+}} : memref<6xi32>
// CHECK:         arith.cmpi sgt, %{{.+}}, %{{.+}} : vector<16xi16>
// CHECK:         vector.bitcast %{{.+}} : vector<64xi1> to vector<1xi64>
// CHECK:         arith.xori %{{.+}}, %{{.+}} : i64
// CHECK:         memref.store %{{.+}}, %{{.+}} : memref<6x1xi64, strided<[1, 1], offset: ?>>
memref.global "private" constant @w : memref<2x64xi64> = dense<[[1263248596961149231, -2123342786782762096, -4233771963502889892, -4459245487058225138, 2889407964218599581, 3806998249519189543, 983541432339323199, 2116732163134147874, 402369526390210527, 4012834827570733046, 2913234838825737126, -4586427812535121832, 3296472610530097912, -4301913762313287025, 2118197622713346492, -2991548879245372461, 3349734316776996743, 382412259459349655, -1847331748131993316, -713084522097054856, -4350483155491401338, -3465375121312619212, 1573732455289943508, 1357583625172250973, 1064239810705568536, -1072885193279501006, 4585952218204568205, 4434923218000274079, 1711322751321782422, 1387741881413985055, 1738114305184715486, -1024519031964781353, -3365640691726869027, 2042869363435471370, 233852348936008989, -1750209778735536372, -130645755262957940, 3592391200029694369, 4003344827849003849, -1311607806179995570, 659746240553833192, -1642964877258068106, 869764261618445137, -1495005070145566175, -999638279854929570, 3599645544982619381, -2516527022272389807, 1136200865597227358, -3836781247762872969, 3068100729689740894, 2648014501119457063, -2403892591448688976, 3472454126776225666, -4071491243951620554, -1511553321080720169, -3225602585756085668, -458038496979463669, 2733108988409226583, -2484387117476042058, -4131874204869108028, -880353891559351339, -2780726354749814050, -3774636915204572816, 740935482564943245], [-1856700459468676847, 1586372747824935050, -2771480851610303113, 4077773700572517490, -1244139102266692854, -3638663806819155722, 1190812514641363523, 3939805360181368647, -549923683952156070, 4192857247727154072, -960949119979239, -689644210724213960, 1108773391772419928, 4566459261932013492, 4140774537543805345, -368518544832910796, 2377129024907365646, -23771438369954463, 270356958698699791, 2635907840496680937, -787160852562026586, 2162729219137995946, 1947449316631699158, 3985047231762070836, -3551619582502202360, 2112291626858655297, 3942289911158377938, 4315857335462980715, -4476044296444342031, 3353987839850391374, 4438240876821133956, 4217019585589111713, -3239580187911844817, 4359231385226485552, 3596520700808078130, 2973373746374600602, -184578823950246972, -2468424129303930425, 2784356888219978536, 3906376232511488116, -2157067506806108500, 359106526533985023, -528011956425348539, 3975433059620784378, -4238040657658879256, 2139879457395780875, 1054907007673662450, -4350061703024160948, 2021945522615813773, -4464188347518728943, 2379178062012939942, 117678451361419613, 3957787870995464517, -4002182566017008968, 3148096252472198491, -3996579256427304141, -1435986987915358687, -642880726685672842, 4298663963342144543, 573987433411909451, -2224081568442823138, -2382620995062696769, 3579759665758914733, -2528408248382666345]]>
memref.global "private" constant @tf : memref<1x64xi64> = dense<[[-40, -37, -36, -33, -32, -29, -28, -25, -24, -21, -20, -17, -16, -13, -12, -9, -8, -5, -4, -1, 0, 3, 4, 7, 8, 11, 12, 15, 16, 19, 20, 23, 24, 27, 28, 31, 32, 35, 36, 39, 40, 43, 44, 47, 48, 51, 52, 55, 56, 59, 60, 63, 64, 67, 68, 71, 72, 75, 76, 79, 80, 83, 84, 87]]>
memref.global "private" constant @corr : memref<3x1x64xi32> = dense<[[[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], [[-2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2]], [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]]>
func.func @qc_model(%a: memref<6x2xi64>, %o: memref<2x3x1xi64>) {
  %c0_i32 = arith.constant 0 : i32
  %c0_i64 = arith.constant 0 : i64
  %c1_i64 = arith.constant 1 : i64
  %c1_i32 = arith.constant 1 : i32
  %c100_i32 = arith.constant 100 : i32
  %w = memref.get_global @w : memref<2x64xi64>
  %tf = memref.get_global @tf : memref<1x64xi64>
  %corr = memref.get_global @corr : memref<3x1x64xi32>
  %c = memref.alloc() {alignment = 64 : i64} : memref<6x64xi32>
  linalg.fill ins(%c0_i32 : i32) outs(%c : memref<6x64xi32>)
  linalg.generic {indexing_maps = [affine_map<(m, f, k) -> (m, k)>, affine_map<(m, f, k) -> (k, f)>, affine_map<(m, f, k) -> (m, f)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %w : memref<6x2xi64>, memref<2x64xi64>) outs(%c : memref<6x64xi32>) attrs = {qc.op = "bgemm", qc.bgemm = "xor"} {
  ^bb0(%x: i64, %y: i64, %acc: i32):
    %v = arith.xori %x, %y : i64
    %p = math.ctpop %v : i64
    %t = arith.trunci %p : i64 to i32
    %s = arith.addi %acc, %t : i32
    linalg.yield %s : i32
  }
  %p4 = memref.expand_shape %c [[0, 1], [2, 3]] output_shape [2, 3, 1, 64] : memref<6x64xi32> into memref<2x3x1x64xi32>
  linalg.fill ins(%c0_i64 : i64) outs(%o : memref<2x3x1xi64>)
  linalg.generic {indexing_maps = [affine_map<(n, q, fw, b) -> (n, q, fw, b)>, affine_map<(n, q, fw, b) -> (q, fw, b)>,
                                   affine_map<(n, q, fw, b) -> (fw, b)>, affine_map<(n, q, fw, b) -> (n, q, fw)>],
                  iterator_types = ["parallel", "parallel", "parallel", "reduction"]}
      ins(%p4, %corr, %tf : memref<2x3x1x64xi32>, memref<3x1x64xi32>, memref<1x64xi64>) outs(%o : memref<2x3x1xi64>)
      attrs = {qc.op = "threshold", qc.k = 100 : i64} {
  ^bb0(%p: i32, %cr: i32, %tfv: i64, %acc: i64):
    %p2 = arith.shli %p, %c1_i32 : i32
    %d0 = arith.subi %c100_i32, %p2 : i32
    %d1 = arith.addi %d0, %cr : i32
    %d = arith.extsi %d1 : i32 to i64
    %tv = arith.shrsi %tfv, %c1_i64 : i64
    %fv = arith.andi %tfv, %c1_i64 : i64
    %ge = arith.cmpi sge, %d, %tv : i64
    %g = arith.extui %ge : i1 to i64
    %bit = arith.xori %g, %fv : i64
    %b = linalg.index 3 : index
    %bi = arith.index_cast %b : index to i64
    %sh = arith.shli %bit, %bi : i64
    %r = arith.ori %acc, %sh : i64
    linalg.yield %r : i64
  }
  return
}
