"""Frontends: model formats → MLIR on tensors."""
