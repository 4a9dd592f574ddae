"""The f32 GEMM's cache-block depth follows the target's L1 data cache on
AVX-512: 256 deep (a 32 KiB B panel) where the L1D has 48 KiB, 1024 where it
has 32 KiB or is not known (passes/pipelines.py, AVX512_L1_48K)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qc.passes.pipelines import gemm_tile
from qc.targets import L1D_KIB, resolve

AVX512 = "+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512dq,+avx512vl"


@pytest.mark.parametrize("cpu, kc", [("sapphirerapids", 256), ("icelake-server", 256), ("znver5", 256),
                                     ("skylake-avx512", 1024), ("znver4", 1024), ("x86-64-v4", 1024)])
def test_block_depth_per_cpu(cpu, kc):
    target = resolve(f"x86_64-unknown-linux-gnu:{cpu}:{AVX512}")
    tile = gemm_tile(target)
    assert (tile.mr, tile.nr, tile.kc) == (10, 32, kc)
    assert tile.kc * tile.nr * 4 <= (target.l1d_kib or 32) * 1024 * 2 // 3 or kc == 1024


def test_host_reads_its_l1d_from_linux():
    import glob

    host = resolve("host")
    sizes = [open(f"{d}/size").read().strip() for d in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")
             if open(f"{d}/level").read().strip() == "1" and open(f"{d}/type").read().strip() == "Data"]
    # Without the sysfs entries (some containers), the CPU name decides.
    assert host.l1d_kib == (int(sizes[0].rstrip("K")) if sizes else L1D_KIB.get(host.cpu))
    if host.arch == "x86_64" and host.vector_bits == 512:
        assert gemm_tile(host).kc == (256 if (host.l1d_kib or 0) >= 48 else 1024)


def test_print_pipeline_shows_the_block_depth(tmp_path):
    model = tmp_path / "m.onnxtxt"
    model.write_text('<ir_version: 8, opset_import: ["" : 17]>\n'
                     "g (float[4,8] a, float[8,4] b) => (float[4,4] y) {\n  y = MatMul(a, b)\n}\n")
    for cpu, shown in (("sapphirerapids", "qc-lower-gemm{mr=10 nr=32 vector-bits=512 mc=100}"),
                       ("skylake-avx512", "qc-lower-gemm{mr=10 nr=32 vector-bits=512 kc=1024 mc=100}")):
        res = run_qc("compile", str(model), "--print-pipeline", "--target", f"x86_64-unknown-linux-gnu:{cpu}:{AVX512}")
        assert res.returncode == 0, res.stderr
        assert f"    {shown}" in res.stdout.splitlines(), res.stdout


def run_qc(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qc", *args], capture_output=True, text=True)


def test_table_names_only_known_sizes():
    assert set(L1D_KIB.values()) == {32, 48}
