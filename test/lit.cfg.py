# lit configuration: FileCheck tests of qc's frontend (.onnxtxt) and passes (.mlir).
import os
import sys

import lit.formats

config.name = "qc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".onnxtxt"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["python", "Output"]

# lit runs with the interpreter qc is installed in; its scripts (qc, filecheck) sit beside it.
bindir = os.path.dirname(sys.executable)
config.environment["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
config.substitutions.append(("%PYTHON", sys.executable))
config.substitutions.append((r"\bFileCheck\b", "filecheck"))
