"""Writes qc_app's INPUT.bin: the raw bytes (C order) of each model input,
concatenated in the model's input order.

    python make_input.py MODEL.onnx INPUTS.npz INPUT.bin

INPUTS.npz holds one array per input, by ONNX input name, of the input's
element type (as `qc run --inputs` takes them).
"""

import sys

import numpy as np
import onnx


def main(model_path: str, npz_path: str, out_path: str) -> None:
    graph = onnx.load(model_path, load_external_data=False).graph
    weights = {t.name for t in graph.initializer}  # old models list weights as inputs too
    names = [i.name for i in graph.input if i.name not in weights]
    arrays = np.load(npz_path)
    missing = [n for n in names if n not in arrays]
    if missing:
        sys.exit(f"{npz_path}: no array for input(s) {', '.join(missing)} (it has {', '.join(arrays)})")
    with open(out_path, "wb") as f:
        for n in names:
            f.write(np.ascontiguousarray(arrays[n]).tobytes())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python make_input.py MODEL.onnx INPUTS.npz INPUT.bin")
    main(*sys.argv[1:])
