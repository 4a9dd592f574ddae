// RUN: qc opt %s -p 'qc-lower-binary-gemm{lut=true}' | FileCheck %s

// binary_gemm_float.mlir's layer with the output written transposed
// (O[n, f, w, h]): the maps, evaluated point by point, do not put (m, f) at
// its NCHW place, so the float epilogue is not used: the kernel stores the
// counts and the generic stays.
// CHECK:       #[[SWAP:.+]] = affine_map<(d0, d1, d2, d3) -> (d0, d1, d3, d2)>
// CHECK-LABEL: func.func @qc_model
// CHECK:         call @qc_bgemm_8x64x1_xor_lut2x64_store(
// CHECK:         linalg.generic {{.+}}, #[[SWAP]]]
// CHECK-NOT:     qc_bgemm_{{.*}}_float
memref.global "private" constant @w : memref<1x64xi64> = dense<[[ 1263248596961149231, -2123342786782762096, -4233771963502889892, -4459245487058225138,  2889407964218599581,  3806998249519189543,   983541432339323199,  2116732163134147874,   402369526390210527,  4012834827570733046,  2913234838825737126, -4586427812535121832,  3296472610530097912, -4301913762313287025,  2118197622713346492, -2991548879245372461,  3349734316776996743,   382412259459349655, -1847331748131993316,  -713084522097054856, -4350483155491401338, -3465375121312619212,  1573732455289943508,  1357583625172250973,  1064239810705568536, -1072885193279501006,  4585952218204568205,  4434923218000274079,  1711322751321782422,  1387741881413985055,  1738114305184715486, -1024519031964781353, -3365640691726869027,  2042869363435471370,   233852348936008989, -1750209778735536372,  -130645755262957940,  3592391200029694369,  4003344827849003849, -1311607806179995570,   659746240553833192, -1642964877258068106,   869764261618445137, -1495005070145566175,  -999638279854929570,  3599645544982619381, -2516527022272389807,  1136200865597227358, -3836781247762872969,  3068100729689740894,  2648014501119457063, -2403892591448688976,  3472454126776225666, -4071491243951620554, -1511553321080720169, -3225602585756085668,  -458038496979463669,  2733108988409226583, -2484387117476042058, -4131874204869108028,  -880353891559351339, -2780726354749814050, -3774636915204572816,   740935482564943245]]>
memref.global "private" constant @corr : memref<2x2x64xi32> = dense<[[[-2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2, -2],  [ 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0]], [[ 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0],  [ 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0]]]>
memref.global "private" constant @s : memref<64xf32> = dense<[0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25, 0.5 , 0.75, 1.  , 1.25]>
memref.global "private" constant @b : memref<64xf32> = dense<[-32., -31., -30., -29., -28., -27., -26., -25., -24., -23., -22., -21., -20., -19., -18., -17., -16., -15., -14., -13., -12., -11., -10.,  -9.,  -8.,  -7.,  -6.,  -5.,  -4.,  -3.,  -2.,  -1.,   0.,   1.,   2.,   3.,   4.,   5.,   6.,   7.,   8.,   9.,  10.,  11.,  12.,  13.,  14.,  15.,  16.,  17.,  18.,  19.,  20.,  21.,  22.,  23.,  24.,  25.,  26.,  27.,  28.,  29.,  30.,  31.]>
func.func @qc_model(%a: memref<8x1xi64>, %r: memref<2x64x2x2xf32>, %o: memref<2x64x2x2xf32>) {
  %c0_i32 = arith.constant 0 : i32
  %c1_i32 = arith.constant 1 : i32
  %c64_i32 = arith.constant 64 : i32
  %w = memref.get_global @w : memref<1x64xi64>
  %corr = memref.get_global @corr : memref<2x2x64xi32>
  %s = memref.get_global @s : memref<64xf32>
  %b = memref.get_global @b : memref<64xf32>
  %c = memref.alloc() {alignment = 64 : i64} : memref<8x64xi32>
  linalg.fill ins(%c0_i32 : i32) outs(%c : memref<8x64xi32>)
  linalg.generic {indexing_maps = [affine_map<(m, f, k) -> (m, k)>, affine_map<(m, f, k) -> (k, f)>, affine_map<(m, f, k) -> (m, f)>],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%a, %w : memref<8x1xi64>, memref<1x64xi64>) outs(%c : memref<8x64xi32>) attrs = {qc.op = "bgemm", qc.bgemm = "xor"} {
  ^bb0(%x: i64, %y: i64, %acc: i32):
    %v = arith.xori %x, %y : i64
    %p = math.ctpop %v : i64
    %t = arith.trunci %p : i64 to i32
    %sum = arith.addi %acc, %t : i32
    linalg.yield %sum : i32
  }
  %p4 = memref.expand_shape %c [[0, 1, 2], [3]] output_shape [2, 2, 2, 64] : memref<8x64xi32> into memref<2x2x2x64xi32>
  linalg.generic {indexing_maps = [affine_map<(n, f, h, w) -> (n, f, h, w)>, affine_map<(n, f, h, w) -> (n, h, w, f)>,
                                   affine_map<(n, f, h, w) -> (h, w, f)>, affine_map<(n, f, h, w) -> (f)>,
                                   affine_map<(n, f, h, w) -> (f)>, affine_map<(n, f, h, w) -> (n, f, w, h)>],
                  iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%r, %p4, %corr, %s, %b : memref<2x64x2x2xf32>, memref<2x2x2x64xi32>, memref<2x2x64xi32>, memref<64xf32>, memref<64xf32>)
      outs(%o : memref<2x64x2x2xf32>) {
  ^bb0(%res: f32, %pv: i32, %cr: i32, %sv: f32, %bv: f32, %out: f32):
    %p2 = arith.shli %pv, %c1_i32 : i32
    %d0 = arith.subi %c64_i32, %p2 : i32
    %d1 = arith.addi %d0, %cr : i32
    %fl = arith.sitofp %d1 : i32 to f32
    %y1 = arith.mulf %fl, %sv : f32
    %y2 = arith.addf %y1, %bv : f32
    %y3 = arith.addf %y2, %res : f32
    linalg.yield %y3 : f32
  }
  return
}
