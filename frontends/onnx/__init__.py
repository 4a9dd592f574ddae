"""The ONNX frontend: one importer module per op family."""

from .importer import ENTRY, ImportedModel, TensorSpec, import_model, load_model  # noqa: F401
