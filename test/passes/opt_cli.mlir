// RUN: qc opt --help | FileCheck %s --check-prefix=HELP
// RUN: qc opt --list-passes | FileCheck %s --check-prefix=LIST
// RUN: qc opt %s | FileCheck %s --check-prefix=ROUNDTRIP
// RUN: qc opt %s -p 'qc-linalg-cleanup,cse' | FileCheck %s --check-prefix=MIXED
// RUN: not qc opt %s -p qc-no-such-pass 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not qc opt %s -p 'qc-lower-to-affine{fuse=maybe}' 2>&1 | FileCheck %s --check-prefix=BADOPT

// HELP:      Usage: qc opt [OPTIONS] [FILE]
// HELP:      -p, --pass-pipeline
// HELP:      --split-input-file
// HELP:      --list-passes
// HELP:      --debug

// One line per qc pass: its CLI name, then the first line of its docstring.
// LIST-DAG:  qc-bufferize {{ +}}Tensors → memrefs
// LIST-DAG:  qc-linalg-cleanup {{ +}}Tensor-level clean-up
// LIST-DAG:  qc-lower-to-affine {{ +}}linalg on memrefs → affine loop nests.
// LIST-DAG:  qc-lower-to-llvm {{ +}}scf/memref/arith/math/vector → the LLVM dialect.
// LIST-DAG:  qc-lower-to-scf {{ +}}affine → scf loops

// Without -p the module is parsed and printed unchanged.
// ROUNDTRIP-LABEL: func.func @f
// ROUNDTRIP:       arith.addf
// ROUNDTRIP:       arith.addf

// qc passes and upstream ones mix in one pipeline: cse merges the two adds.
// MIXED-LABEL: func.func @f
// MIXED-COUNT-1: arith.addf
// MIXED-NOT:     arith.addf

// UNKNOWN:   qc: error: unknown qc pass 'qc-no-such-pass'; qc passes: {{.*}}qc-bufferize
// UNKNOWN-NOT: Traceback
// BADOPT:    qc: error: qc-lower-to-affine: option 'fuse' takes true or false, got 'maybe'
func.func @f(%a: f32) -> (f32, f32) {
  %x = arith.addf %a, %a : f32
  %y = arith.addf %a, %a : f32
  return %x, %y : f32, f32
}
