// RUN: qc opt %s -split-input-file -p 'qc-parallel-loops{min-work=1}' | FileCheck %s
// RUN: qc opt %s -split-input-file -p qc-parallel-loops | FileCheck %s --check-prefix=SMALL

// An elementwise op with a per-channel operand: split along the channels
// (dim 0 has one element), each operand viewed along the dim that d1 indexes;
// the outlined function hands its operands to the runtime's parallel entry,
// listed with its panels (8 channels) and operands; its work (128 x (2 ops +
// 3 operands)) is below the runtime's threshold, so none is listed: the pass
// chose to split it.
// CHECK: module attributes {qc.parallel_kernels = [{name = "qc_model_part0", operands = 3 : i64, panels = 8 : i64}]}
// CHECK-LABEL: func.func private @qc_model_part0(
// CHECK-SAME:    %[[X:[^:]+]]: memref<1x8x16xf32>, %[[B:[^:]+]]: memref<8xf32>, %[[Y:[^:]+]]: memref<1x8x16xf32>)
// CHECK-NEXT:    call @qc_par_model_part0(%[[X]], %[[B]], %[[Y]])
// CHECK-NEXT:    return
// CHECK:       func.func @qc_model_part0_range(%[[X2:[^:]+]]: memref<1x8x16xf32>, %[[B2:[^:]+]]: memref<8xf32>, %[[Y2:[^:]+]]: memref<1x8x16xf32>, %[[LO:[^:]+]]: index, %[[HI:[^:]+]]: index) attributes {llvm.emit_c_interface}
// CHECK:         %[[N:.+]] = arith.subi %[[HI]], %[[LO]]
// CHECK-NEXT:    %[[XS:.+]] = memref.subview %[[X2]][0, %[[LO]], 0] [1, %[[N]], 16] [1, 1, 1] : memref<1x8x16xf32> to memref<1x?x16xf32, strided<[128, 16, 1], offset: ?>>
// CHECK-NEXT:    %[[BS:.+]] = memref.subview %[[B2]][%[[LO]]] [%[[N]]] [1]
// CHECK-NEXT:    %[[YS:.+]] = memref.subview %[[Y2]][0, %[[LO]], 0] [1, %[[N]], 16] [1, 1, 1]
// CHECK-NEXT:    linalg.generic {{.+}} ins(%[[XS]], %[[BS]] : {{.+}}) outs(%[[YS]] : {{.+}})
// CHECK:       func.func private @qc_par_model_part0(memref<1x8x16xf32>, memref<8xf32>, memref<1x8x16xf32>) attributes {llvm.emit_c_interface}
// Below the runtime's serial threshold nothing changes.
// SMALL-NOT:   qc.parallel_kernels
// SMALL-LABEL: func.func private @qc_model_part0(
// SMALL-NEXT:    arith.constant
// SMALL-NEXT:    linalg.generic
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
#ch = affine_map<(d0, d1, d2) -> (d1)>
func.func @qc_model(%x: memref<1x8x16xf32>, %b: memref<8xf32>, %y: memref<1x8x16xf32>) {
  call @qc_model_part0(%x, %b, %y) : (memref<1x8x16xf32>, memref<8xf32>, memref<1x8x16xf32>) -> ()
  return
}
func.func private @qc_model_part0(%x: memref<1x8x16xf32>, %b: memref<8xf32>, %y: memref<1x8x16xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.generic {indexing_maps = [#id, #ch, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x, %b : memref<1x8x16xf32>, memref<8xf32>) outs(%y : memref<1x8x16xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    %r = arith.maximumf %s, %zero : f32
    linalg.yield %r : f32
  }
  return
}

// -----

// A window read from a captured buffer (qc-pool-window's form): the body's
// linalg.index of the split dim counts from the slice's start.
// CHECK-LABEL: {{^}}module
// CHECK:       func.func @qc_model_part0_range(
// CHECK-SAME:    %[[IN:[^:]+]]: memref<4x10xf32>, %[[OUT:[^:]+]]: memref<4x5xf32>, %[[LO:[^:]+]]: index, %{{.+}}: index)
// CHECK:         linalg.generic
// CHECK:           %[[I:.+]] = linalg.index 0 : index
// CHECK-NEXT:      %[[G:.+]] = arith.addi %[[I]], %[[LO]] : index
// CHECK:           memref.load %[[IN]][%[[G]], %{{.+}}]
#o = affine_map<(d0, d1) -> (d0, d1)>
func.func @qc_model(%x: memref<4x10xf32>, %y: memref<4x5xf32>) {
  call @qc_model_part0(%x, %y) : (memref<4x10xf32>, memref<4x5xf32>) -> ()
  return
}
func.func private @qc_model_part0(%x: memref<4x10xf32>, %y: memref<4x5xf32>) {
  %c2 = arith.constant 2 : index
  %c1 = arith.constant 1 : index
  linalg.generic {indexing_maps = [#o], iterator_types = ["parallel", "parallel"]} outs(%y : memref<4x5xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %j = linalg.index 1 : index
    %j2 = arith.muli %j, %c2 : index
    %j3 = arith.addi %j2, %c1 : index
    %a = memref.load %x[%i, %j2] : memref<4x10xf32>
    %b = memref.load %x[%i, %j3] : memref<4x10xf32>
    %m = arith.maximumf %a, %b : f32
    linalg.yield %m : f32
  }
  return
}

// -----

// A transpose: the output's dim 0 is the input's dim 1.
// CHECK-LABEL: {{^}}module
// CHECK:       func.func @qc_model_part0_range(
// CHECK:         memref.subview %{{.+}}[0, %[[LO:[a-z0-9_]+]]] [6, %[[N:[0-9]+]]] [1, 1] : memref<6x4xf32> to memref<6x?xf32, strided<[4, 1], offset: ?>>
// CHECK-NEXT:    memref.subview %{{.+}}[%[[LO]], 0] [%[[N]], 6] [1, 1] : memref<4x6xf32> to memref<?x6xf32, strided<[6, 1], offset: ?>>
// CHECK-NEXT:    linalg.transpose
func.func @qc_model(%x: memref<6x4xf32>, %y: memref<4x6xf32>) {
  call @qc_model_part0(%x, %y) : (memref<6x4xf32>, memref<4x6xf32>) -> ()
  return
}
func.func private @qc_model_part0(%x: memref<6x4xf32>, %y: memref<4x6xf32>) {
  linalg.transpose ins(%x : memref<6x4xf32>) outs(%y : memref<4x6xf32>) permutation = [1, 0]
  return
}

// -----

// A transposing generic (loops in the input's order): split along d1, the
// dim that indexes the output's leading dim, so that each thread writes
// whole rows of the output; along d0, both would write into every row.
// CHECK-LABEL: {{^}}module attributes {qc.parallel_kernels = [{name = "qc_model_part0", operands = 2 : i64, panels = 4 : i64
// CHECK:       func.func @qc_model_part0_range(
// CHECK:         memref.subview %{{.+}}[0, %[[LO:[a-z0-9_]+]]] [6, %[[N:[0-9]+]]] [1, 1] : memref<6x4xf32> to memref<6x?xf32, strided<[4, 1], offset: ?>>
// CHECK-NEXT:    memref.subview %{{.+}}[%[[LO]], 0] [%[[N]], 6] [1, 1] : memref<4x6xf32> to memref<?x6xf32, strided<[6, 1], offset: ?>>
// CHECK-NEXT:    linalg.generic
#in = affine_map<(d0, d1) -> (d0, d1)>
#tr = affine_map<(d0, d1) -> (d1, d0)>
func.func @qc_model(%x: memref<6x4xf32>, %y: memref<4x6xf32>) {
  call @qc_model_part0(%x, %y) : (memref<6x4xf32>, memref<4x6xf32>) -> ()
  return
}
func.func private @qc_model_part0(%x: memref<6x4xf32>, %y: memref<4x6xf32>) {
  linalg.generic {indexing_maps = [#in, #tr], iterator_types = ["parallel", "parallel"]} ins(%x : memref<6x4xf32>) outs(%y : memref<4x6xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  return
}

// -----

// A row sum: the reduction dim (d0, first) is never split, d1 is.
// CHECK-LABEL: {{^}}module attributes {qc.parallel_kernels = [{name = "qc_model_part0", operands = 2 : i64, panels = 4 : i64
// CHECK:       func.func @qc_model_part0_range(
// CHECK:         memref.subview %{{.+}}[%[[LO:[a-z0-9_]+]], 0] [%[[N:[0-9]+]], 8] [1, 1] : memref<4x8xf32>
// CHECK-NEXT:    memref.subview %{{.+}}[%[[LO]]] [%[[N]]] [1] : memref<4xf32>
// CHECK-NEXT:    linalg.generic {{.+}} iterator_types = ["reduction", "parallel"]
#rows = affine_map<(d0, d1) -> (d1, d0)>
#sum = affine_map<(d0, d1) -> (d1)>
func.func @qc_model(%x: memref<4x8xf32>, %y: memref<4xf32>) {
  call @qc_model_part0(%x, %y) : (memref<4x8xf32>, memref<4xf32>) -> ()
  return
}
func.func private @qc_model_part0(%x: memref<4x8xf32>, %y: memref<4xf32>) {
  linalg.generic {indexing_maps = [#rows, #sum], iterator_types = ["reduction", "parallel"]} ins(%x : memref<4x8xf32>) outs(%y : memref<4xf32>) {
  ^bb0(%a: f32, %acc: f32):
    %s = arith.addf %a, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Not taken: the body reads the buffer it writes at another element (a
// thread could read what the other already overwrote)...
// CHECK-LABEL: {{^}}module
// CHECK-NOT:   qc.parallel_kernels
// CHECK:       func.func private @qc_model_part0(
// CHECK-NEXT:    arith.constant
// CHECK-NEXT:    linalg.generic
#s = affine_map<(d0) -> (d0)>
func.func @qc_model(%y: memref<64xf32>) {
  call @qc_model_part0(%y) : (memref<64xf32>) -> ()
  return
}
func.func private @qc_model_part0(%y: memref<64xf32>) {
  %c63 = arith.constant 63 : index
  linalg.generic {indexing_maps = [#s], iterator_types = ["parallel"]} outs(%y : memref<64xf32>) {
  ^bb0(%out: f32):
    %i = linalg.index 0 : index
    %r = arith.subi %c63, %i : index
    %v = memref.load %y[%r] : memref<64xf32>
    linalg.yield %v : f32
  }
  return
}

// -----

// ...or two operands are views of one buffer (the call site shows it)...
// CHECK-LABEL: {{^}}module
// CHECK-NOT:   qc.parallel_kernels
// CHECK:       func.func private @qc_model_part0(
// CHECK-NEXT:    linalg.copy
func.func @qc_model(%y: memref<2x64xf32>) {
  %a = memref.subview %y[0, 0] [1, 64] [1, 1] : memref<2x64xf32> to memref<64xf32, strided<[1]>>
  %b = memref.subview %y[1, 0] [1, 64] [1, 1] : memref<2x64xf32> to memref<64xf32, strided<[1], offset: 64>>
  call @qc_model_part0(%a, %b) : (memref<64xf32, strided<[1]>>, memref<64xf32, strided<[1], offset: 64>>) -> ()
  return
}
func.func private @qc_model_part0(%a: memref<64xf32, strided<[1]>>, %b: memref<64xf32, strided<[1], offset: 64>>) {
  linalg.copy ins(%a : memref<64xf32, strided<[1]>>) outs(%b : memref<64xf32, strided<[1], offset: 64>>)
  return
}

// -----

// ...or the only dim of size >= 2 also appears in an index expression of
// an operand (a slice of it would not be the same op).
// CHECK-LABEL: {{^}}module
// CHECK-NOT:   qc.parallel_kernels
// CHECK:       func.func private @qc_model_part0(
// CHECK-NEXT:    linalg.generic
#in = affine_map<(d0) -> (d0 + 1)>
#out = affine_map<(d0) -> (d0)>
func.func @qc_model(%x: memref<65xf32>, %y: memref<64xf32>) {
  call @qc_model_part0(%x, %y) : (memref<65xf32>, memref<64xf32>) -> ()
  return
}
func.func private @qc_model_part0(%x: memref<65xf32>, %y: memref<64xf32>) {
  linalg.generic {indexing_maps = [#in, #out], iterator_types = ["parallel"]} ins(%x : memref<65xf32>) outs(%y : memref<64xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  return
}

// -----

// One buffer written through one view at several indexings (a Winograd
// transform's planes): split along the channels like any other output,
// each occurrence viewed along the dim that d0 indexes.
// CHECK-LABEL: {{^}}module attributes {qc.parallel_kernels = [{name = "qc_model_part0"
// CHECK:       func.func @qc_model_part0_range(%[[X:[^:]+]]: memref<8x16xf32>, %[[V:[^:]+]]: memref<2x8x16xf32>, %[[LO:[^:]+]]: index, %[[HI:[^:]+]]: index)
// CHECK:         %[[XS:.+]] = memref.subview %[[X]][%[[LO]], 0]
// CHECK:         %[[V0:.+]] = memref.subview %[[V]][0, %[[LO]], 0]
// CHECK:         %[[V1:.+]] = memref.subview %[[V]][0, %[[LO]], 0]
// CHECK:         linalg.generic {{.+}} ins(%[[XS]] : {{.+}}) outs(%[[V0]], %[[V1]] : {{.+}})
#x = affine_map<(d0, d1) -> (d0, d1)>
#p0 = affine_map<(d0, d1) -> (0, d0, d1)>
#p1 = affine_map<(d0, d1) -> (1, d0, d1)>
func.func @qc_model(%x: memref<8x16xf32>, %v: memref<2x8x16xf32>) {
  call @qc_model_part0(%x, %v) : (memref<8x16xf32>, memref<2x8x16xf32>) -> ()
  return
}
func.func private @qc_model_part0(%x: memref<8x16xf32>, %v: memref<2x8x16xf32>) {
  linalg.generic {indexing_maps = [#x, #p0, #p1], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<8x16xf32>) outs(%v, %v : memref<2x8x16xf32>, memref<2x8x16xf32>) {
  ^bb0(%a: f32, %o0: f32, %o1: f32):
    %n = arith.negf %a : f32
    linalg.yield %a, %n : f32, f32
  }
  return
}

// -----

// Two views of one buffer written by one op: left on one thread.
// CHECK-LABEL: {{^}}module
// CHECK-NOT:   qc.parallel_kernels
#x2 = affine_map<(d0, d1) -> (d0, d1)>
func.func @qc_model(%x: memref<8x16xf32>, %v: memref<2x8x16xf32>) {
  %a = memref.subview %v[0, 0, 0] [1, 8, 16] [1, 1, 1] : memref<2x8x16xf32> to memref<8x16xf32, strided<[16, 1]>>
  %b = memref.subview %v[1, 0, 0] [1, 8, 16] [1, 1, 1] : memref<2x8x16xf32> to memref<8x16xf32, strided<[16, 1], offset: 128>>
  call @qc_model_part0(%x, %a, %b) : (memref<8x16xf32>, memref<8x16xf32, strided<[16, 1]>>, memref<8x16xf32, strided<[16, 1], offset: 128>>) -> ()
  return
}
func.func private @qc_model_part0(%x: memref<8x16xf32>, %a: memref<8x16xf32, strided<[16, 1]>>, %b: memref<8x16xf32, strided<[16, 1], offset: 128>>) {
  linalg.generic {indexing_maps = [#x2, #x2, #x2], iterator_types = ["parallel", "parallel"]}
      ins(%x : memref<8x16xf32>) outs(%a, %b : memref<8x16xf32, strided<[16, 1]>>, memref<8x16xf32, strided<[16, 1], offset: 128>>) {
  ^bb0(%in: f32, %o0: f32, %o1: f32):
    linalg.yield %in, %in : f32, f32
  }
  return
}

// -----

// Below the serial threshold, an op is split when it is local: split along
// its output's leading dim (batch 1, then 16 rows), reading a buffer the op
// before it split the same way (part1 reads part0's %y), or reading no
// buffer at all (part3, a fill). Each thread then reads the half it wrote
// itself. part2 reads a buffer no split op wrote: it stays on one thread.
// Their work (2048 x 3, 2048 x 2) is below the runtime's threshold: listed
// without it, as the pass chose to split them. With min-work=1 all four split.
// CHECK-LABEL: {{^}}module
// CHECK-SAME:  qc.parallel_kernels = [{name = "qc_model_part0", {{.+}}}, {name = "qc_model_part1", {{.+}}}, {name = "qc_model_part2", {{.+}}}, {name = "qc_model_part3", {{.+}}}]
// SMALL:       qc.parallel_kernels = [{name = "qc_model_part0", operands = 2 : i64, panels = 16 : i64}, {name = "qc_model_part1", operands = 2 : i64, panels = 16 : i64}, {name = "qc_model_part3", operands = 1 : i64, panels = 16 : i64}]
// SMALL-LABEL: func.func private @qc_model_part2(
// SMALL-NEXT:    linalg.generic
#id = affine_map<(d0, d1, d2) -> (d0, d1, d2)>
func.func @qc_model(%x: memref<1x16x128xf32>, %x2: memref<1x16x128xf32>, %y: memref<1x16x128xf32>,
                    %z: memref<1x16x128xf32>, %w: memref<1x16x128xf32>, %f: memref<1x16x128xf32>) {
  call @qc_model_part0(%x, %y) : (memref<1x16x128xf32>, memref<1x16x128xf32>) -> ()
  call @qc_model_part1(%y, %z) : (memref<1x16x128xf32>, memref<1x16x128xf32>) -> ()
  call @qc_model_part2(%x2, %w) : (memref<1x16x128xf32>, memref<1x16x128xf32>) -> ()
  call @qc_model_part3(%f) : (memref<1x16x128xf32>) -> ()
  return
}
// 2048 x (6 ops + 2 operands): at the threshold.
func.func private @qc_model_part0(%x: memref<1x16x128xf32>, %y: memref<1x16x128xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x : memref<1x16x128xf32>) outs(%y : memref<1x16x128xf32>) {
  ^bb0(%a: f32, %o: f32):
    %1 = arith.mulf %a, %a : f32
    %2 = arith.addf %1, %a : f32
    %3 = arith.mulf %2, %a : f32
    %4 = arith.addf %3, %a : f32
    %5 = arith.mulf %4, %a : f32
    %6 = arith.addf %5, %a : f32
    linalg.yield %6 : f32
  }
  return
}
func.func private @qc_model_part1(%y: memref<1x16x128xf32>, %z: memref<1x16x128xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%y : memref<1x16x128xf32>) outs(%z : memref<1x16x128xf32>) {
  ^bb0(%a: f32, %o: f32):
    %1 = arith.mulf %a, %a : f32
    linalg.yield %1 : f32
  }
  return
}
func.func private @qc_model_part2(%x2: memref<1x16x128xf32>, %w: memref<1x16x128xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%x2 : memref<1x16x128xf32>) outs(%w : memref<1x16x128xf32>) {
  ^bb0(%a: f32, %o: f32):
    %1 = arith.mulf %a, %a : f32
    linalg.yield %1 : f32
  }
  return
}
func.func private @qc_model_part3(%f: memref<1x16x128xf32>) {
  %zero = arith.constant 0.0 : f32
  linalg.fill ins(%zero : f32) outs(%f : memref<1x16x128xf32>)
  return
}
