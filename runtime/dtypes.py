"""Element types of the model ABI.

The codes are ONNX's TensorProto data types, so a model's metadata reads the
same in the header, in Python and in the ONNX file. This module needs only
numpy: the runtime must load without the compiler.
"""

import numpy as np

# code -> (name, numpy dtype)
DTYPES: dict[int, tuple[str, np.dtype]] = {
    1: ("float32", np.dtype(np.float32)),
    2: ("uint8", np.dtype(np.uint8)),
    3: ("int8", np.dtype(np.int8)),
    4: ("uint16", np.dtype(np.uint16)),
    5: ("int16", np.dtype(np.int16)),
    6: ("int32", np.dtype(np.int32)),
    7: ("int64", np.dtype(np.int64)),
    9: ("bool", np.dtype(np.bool_)),
    10: ("float16", np.dtype(np.float16)),
    11: ("float64", np.dtype(np.float64)),
    12: ("uint32", np.dtype(np.uint32)),
    13: ("uint64", np.dtype(np.uint64)),
}

CODE_OF: dict[np.dtype, int] = {dt: code for code, (_, dt) in DTYPES.items()}


def numpy_dtype(code: int) -> np.dtype:
    try:
        return DTYPES[code][1]
    except KeyError:
        raise ValueError(f"unknown element type code {code}") from None


def code_of(dtype) -> int:
    dt = np.dtype(dtype)
    if dt not in CODE_OF:
        raise ValueError(f"element type {dt} has no qc ABI code")
    return CODE_OF[dt]
