"""The qc runtime: the C runtime linked into every model, and its Python
wrapper. Importing this package needs numpy only."""

from .model import InputError, LoadError, Model, RunError, TensorInfo, load  # noqa: F401
