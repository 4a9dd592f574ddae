"""qc's own MLIR ops (quantized, binary), defined in IRDL and loaded at run
time where linalg has no equivalent. The fp32 path needs none of them."""
