"""What a shard ran on: host, CPU model and vector features, library versions.

MuJoCo's compiled paths, numba kernels compiled for the host CPU and the BLAS under numpy may round the last
bits differently on another CPU type, so every committed shard records where it ran, in
`meta/synth/provenance/chunk-XXX/shard-XXXXXX.json` (one record per run of the shard).
"""

from __future__ import annotations

import functools
import json
import platform
import socket
import sys
from pathlib import Path

from synth.dataset.durable import write_json

FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni", "amx_tile")
FILE = "provenance.json"  # inside a staged shard


@functools.cache
def host() -> dict:
    """This machine: hostname, CPU model, which of FLAGS it has, core count, library versions and BLAS."""
    import mujoco
    import numba
    import numpy as np

    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in (platform.processor(), platform.machine()):
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas_name = f"{blas.get('name')} {blas.get('version')}"
    except (TypeError, KeyError, AttributeError):
        blas_name = "unknown"
    return {
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "cpu": model,
        "cpu_flags": [f for f in FLAGS if f in flags],
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "mujoco": mujoco.__version__,
        "numba": numba.__version__,
        "blas": blas_name,
        "blas_core": _blas_core(),
    }


def _blas_core() -> str:
    """The kernel set OpenBLAS chose for this CPU (OPENBLAS_CORETYPE overrides it): numpy.linalg's numbers depend
    on it in the last bits."""
    import ctypes

    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return "unknown"
    libs = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()}, key=lambda s: "numpy" not in s)
    for lib in libs:
        try:
            dll = ctypes.CDLL(lib)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"):
            f = getattr(dll, name, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                return f().decode()
    return "unknown"


def describe(attempts: range, executor: str) -> dict:
    """This host's record for a shard of `attempts` (its first and last attempt), staged with the shard
    (`FILE` inside the shard directory, written before the directory appears under its final name)."""
    rec = {"attempts": [attempts[0], attempts[-1]], "executor": executor, **host()}
    if executor == "ray":
        import ray

        if ray.is_initialized():  # inside a Ray task: which node of the cluster
            rec["ray_node"] = ray.get_runtime_context().get_node_id()
    return rec


def path(root: Path, g: int) -> Path:
    """Where the dataset at `root` keeps the provenance of (whole-run) shard g."""
    return root / "meta" / "synth" / "provenance" / f"chunk-{g // 1000:03d}" / f"shard-{g:06d}.json"


def record(root: Path, g: int, staged: Path) -> None:
    """Before shard g is committed from `staged`: add its record to the shard's provenance file (a rerun of the
    same shard on the same host adds nothing; an unreadable or missing record is kept as 'unknown')."""
    try:
        rec = json.loads((staged / FILE).read_text())
    except (OSError, ValueError):
        rec = {"hostname": "unknown"}
    dest = path(root, g)
    runs = json.loads(dest.read_text())["runs"] if dest.exists() else []
    if rec not in runs:
        write_json(dest, {"shard": g, "runs": [*runs, rec]})
