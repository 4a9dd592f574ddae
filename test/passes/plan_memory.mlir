// RUN: qc opt %s -split-input-file -p qc-plan-memory | FileCheck %s

// Three buffers of 4 KiB: %a is dead once %b is written, so %c takes its
// bytes; %b meets both. The arena (8 KiB = the lower bound) is the entry's
// new last argument and every alloc becomes a view at its offset.
// CHECK:       module attributes {qc.arena_buffers = 3 : i64, qc.arena_bytes = 8192 : i64, qc.arena_intermediates = 12288 : i64, qc.arena_lower_bound = 8192 : i64}
// CHECK-LABEL: func.func @qc_model
// CHECK-SAME:    (%[[X:.+]]: memref<1024xf32>, %[[Y:.+]]: memref<1024xf32>, %[[ARENA:.+]]: memref<8192xi8>)
// CHECK:         %[[O0:.+]] = arith.constant 0 : index
// CHECK:         %[[O1:.+]] = arith.constant 4096 : index
// CHECK:         %[[A:.+]] = memref.view %[[ARENA]][%[[O0]]][] : memref<8192xi8> to memref<1024xf32>
// CHECK:         %[[B:.+]] = memref.view %[[ARENA]][%[[O1]]][] : memref<8192xi8> to memref<1024xf32>
// CHECK:         %[[C:.+]] = memref.view %[[ARENA]][%[[O0]]][] : memref<8192xi8> to memref<1024xf32>
// CHECK-NOT:     memref.alloc
// CHECK:         call @fill(%[[A]])
// CHECK-NEXT:    call @add(%[[A]], %[[X]], %[[B]])
// CHECK-NEXT:    call @fill(%[[C]])
// CHECK-NEXT:    call @add(%[[B]], %[[C]], %[[Y]])
func.func private @fill(memref<1024xf32>)
func.func private @add(memref<1024xf32>, memref<1024xf32>, memref<1024xf32>)
func.func @qc_model(%x: memref<1024xf32>, %y: memref<1024xf32>) {
  %a = memref.alloc() {alignment = 64 : i64} : memref<1024xf32>
  %b = memref.alloc() {alignment = 64 : i64} : memref<1024xf32>
  %c = memref.alloc() {alignment = 64 : i64} : memref<1024xf32>
  call @fill(%a) : (memref<1024xf32>) -> ()
  call @add(%a, %x, %b) : (memref<1024xf32>, memref<1024xf32>, memref<1024xf32>) -> ()
  call @fill(%c) : (memref<1024xf32>) -> ()
  call @add(%b, %c, %y) : (memref<1024xf32>, memref<1024xf32>, memref<1024xf32>) -> ()
  return
}

// -----

// In place: the elementwise generic is %t's last use and %u's first, with
// identity maps, so %u overwrites %t (one 256-byte buffer; the lower bound
// counts the pair once). A use through a view (collapse_shape) keeps %t
// alive until the generic. Its body then reads the element through %u:
// one buffer read and written at the same index is a loop LLVM vectorizes
// as it is, where two would fail its run-time overlap check.
// CHECK:       module attributes {qc.arena_buffers = 2 : i64, qc.arena_bytes = 256 : i64, qc.arena_intermediates = 512 : i64, qc.arena_lower_bound = 256 : i64}
// CHECK-LABEL: func.func @qc_model
// CHECK:         %[[T:.+]] = memref.view %{{.+}}[%[[O:.+]]][] : memref<256xi8> to memref<8x8xf32>
// CHECK:         %[[U:.+]] = memref.view %{{.+}}[%[[O]]][] : memref<256xi8> to memref<8x8xf32>
// CHECK:         linalg.generic {{.+}} ins(%[[T]] : memref<8x8xf32>) outs(%[[U]] : memref<8x8xf32>)
// CHECK-NEXT:    ^bb0(%{{.+}}: f32, %[[OUT:.+]]: f32):
// CHECK-NEXT:      math.exp %[[OUT]] : f32
#id2 = affine_map<(d0, d1) -> (d0, d1)>
func.func private @produce(memref<64xf32>)
func.func @qc_model(%y: memref<8x8xf32>) {
  %t = memref.alloc() {alignment = 64 : i64} : memref<8x8xf32>
  %flat = memref.collapse_shape %t [[0, 1]] : memref<8x8xf32> into memref<64xf32>
  call @produce(%flat) : (memref<64xf32>) -> ()
  %u = memref.alloc() {alignment = 64 : i64} : memref<8x8xf32>
  linalg.generic {indexing_maps = [#id2, #id2], iterator_types = ["parallel", "parallel"]}
      ins(%t : memref<8x8xf32>) outs(%u : memref<8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    %e = math.exp %a : f32
    linalg.yield %e : f32
  }
  linalg.copy ins(%u : memref<8x8xf32>) outs(%y : memref<8x8xf32>)
  return
}

// -----

// Not in place: the generic reads %t transposed, so element (i, j) of %u
// would overwrite (j, i) of %t before it is read.
// CHECK:       module attributes {qc.arena_buffers = 2 : i64, qc.arena_bytes = 512 : i64, qc.arena_intermediates = 512 : i64, qc.arena_lower_bound = 512 : i64}
// CHECK-LABEL: func.func @qc_model
// CHECK:         %[[T:.+]] = memref.view %{{.+}}[%[[O0:.+]]][] : memref<512xi8> to memref<8x8xf32>
// CHECK-NOT:     memref.view %{{.+}}[%[[O0]]]
#t2 = affine_map<(d0, d1) -> (d1, d0)>
#i2 = affine_map<(d0, d1) -> (d0, d1)>
func.func private @produce(memref<8x8xf32>)
func.func @qc_model(%y: memref<8x8xf32>) {
  %t = memref.alloc() {alignment = 64 : i64} : memref<8x8xf32>
  call @produce(%t) : (memref<8x8xf32>) -> ()
  %u = memref.alloc() {alignment = 64 : i64} : memref<8x8xf32>
  linalg.generic {indexing_maps = [#t2, #i2], iterator_types = ["parallel", "parallel"]}
      ins(%t : memref<8x8xf32>) outs(%u : memref<8x8xf32>) {
  ^bb0(%a: f32, %o: f32):
    linalg.yield %a : f32
  }
  linalg.copy ins(%u : memref<8x8xf32>) outs(%y : memref<8x8xf32>)
  return
}

// -----

// A private callee's top-level alloc (a GEMM's packing buffer) becomes its
// argument, allocated in the arena at each call: the two calls do not meet,
// so both get offset 0. Dynamic and i1 allocs are left to the runtime.
// CHECK:       module attributes {qc.arena_buffers = 2 : i64, qc.arena_bytes = 1024 : i64
// CHECK-LABEL: func.func private @kernel
// CHECK-SAME:    (%{{.+}}: memref<?xf32>, %[[PACK:.+]]: memref<256xf32>)
// CHECK-NOT:     memref.alloc
// CHECK:         call @use(%{{.+}}, %[[PACK]])
// CHECK-LABEL: func.func @qc_model
// CHECK-SAME:    %[[N:.+]]: index, %[[ARENA:.+]]: memref<1024xi8>)
// CHECK:         %[[D:.+]] = memref.alloc(%[[N]]) : memref<?xf32>
// CHECK:         %[[B:.+]] = memref.alloc() : memref<16xi1>
// CHECK:         %[[P0:.+]] = memref.view %[[ARENA]][%[[Z:.+]]][] : memref<1024xi8> to memref<256xf32>
// CHECK-NEXT:    call @kernel(%[[D]], %[[P0]])
// CHECK:         %[[P1:.+]] = memref.view %[[ARENA]][%[[Z]]][] : memref<1024xi8> to memref<256xf32>
// CHECK-NEXT:    call @kernel(%[[D]], %[[P1]])
func.func private @use(memref<?xf32>, memref<256xf32>)
func.func private @flags(memref<16xi1>)
func.func private @kernel(%a: memref<?xf32>) {
  %p = memref.alloc() {alignment = 64 : i64} : memref<256xf32>
  call @use(%a, %p) : (memref<?xf32>, memref<256xf32>) -> ()
  return
}
func.func @qc_model(%n: index) {
  %d = memref.alloc(%n) : memref<?xf32>
  %b = memref.alloc() : memref<16xi1>
  call @flags(%b) : (memref<16xi1>) -> ()
  call @kernel(%d) : (memref<?xf32>) -> ()
  call @kernel(%d) : (memref<?xf32>) -> ()
  return
}

// -----

// A buffer that nothing reads or writes any more (only a view of it is left,
// as after a kernel folded its consumer) is erased with its views: it holds
// no arena bytes. %b is the one buffer left.
// CHECK:       module attributes {qc.arena_buffers = 1 : i64, qc.arena_bytes = 256 : i64, qc.arena_intermediates = 256 : i64, qc.arena_lower_bound = 256 : i64}
// CHECK-LABEL: func.func @qc_model
// CHECK-NOT:     memref<4096xi32>
// CHECK-NOT:     memref<64x64xi32>
// CHECK:         %[[B:.+]] = memref.view %{{.+}}[%{{.+}}][] : memref<256xi8> to memref<64xf32>
// CHECK-NEXT:    call @fill(%[[B]])
func.func private @fill(memref<64xf32>)
func.func @qc_model() {
  %dead = memref.alloc() {alignment = 64 : i64} : memref<4096xi32>
  %v = memref.expand_shape %dead [[0, 1]] output_shape [64, 64] : memref<4096xi32> into memref<64x64xi32>
  %b = memref.alloc() {alignment = 64 : i64} : memref<64xf32>
  call @fill(%b) : (memref<64xf32>) -> ()
  return
}

// -----

// The same through a call of an outlined generic, called once: in place,
// and its body reads %in's element through the output. %bias is another
// buffer and keeps being read.
// CHECK-LABEL: func.func private @part1
// CHECK:         ^bb0(%{{.+}}: f32, %[[BIAS:.+]]: f32, %[[OUT:.+]]: f32):
// CHECK-NEXT:      arith.addf %[[OUT]], %[[BIAS]] : f32
// CHECK-LABEL: func.func @qc_model
// CHECK:         %[[T:.+]] = memref.view %{{.+}}[%[[O:.+]]][] : memref<{{.+}}xi8> to memref<64xf32>
// CHECK:         %[[U:.+]] = memref.view %{{.+}}[%[[O]]][] : memref<{{.+}}xi8> to memref<64xf32>
// CHECK:         call @part1(%[[T]], %{{.+}}, %[[U]])
#id1 = affine_map<(d0) -> (d0)>
func.func private @produce(memref<64xf32>)
func.func private @part1(%in: memref<64xf32>, %bias: memref<64xf32>, %out: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id1, #id1, #id1], iterator_types = ["parallel"]}
      ins(%in, %bias : memref<64xf32>, memref<64xf32>) outs(%out : memref<64xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  }
  return
}
func.func @qc_model(%bias: memref<64xf32>, %y: memref<64xf32>) {
  %t = memref.alloc() {alignment = 64 : i64} : memref<64xf32>
  call @produce(%t) : (memref<64xf32>) -> ()
  %u = memref.alloc() {alignment = 64 : i64} : memref<64xf32>
  call @part1(%t, %bias, %u) : (memref<64xf32>, memref<64xf32>, memref<64xf32>) -> ()
  call @produce(%y) : (memref<64xf32>) -> ()
  linalg.copy ins(%u : memref<64xf32>) outs(%y : memref<64xf32>)
  return
}
