"""Kinematic-mode generation rate against physics mode's state-only rate, measured in the same run.

    python benchmarks/kinematic.py                       # kinematic n=20000 (workers=1, 2), physics n=60 (workers=2)
    python benchmarks/kinematic.py --n 5000 --repeats 1  # quicker (default: 3 repeats)
    python benchmarks/kinematic.py --numpy               # one more row: SYNTH_JIT=0, the numpy sweep and IK
    python benchmarks/kinematic.py --set randomizers.object_shape.shapes=[box,cylinder]  # extra overrides, every run

Each row is a whole `synth generate` in a fresh process (start-up, workers, writing and committing the LeRobot
dataset included), repeated; the table gives medians. "traj/s" is successful trajectories per second of wall
time; "per CPU-s" per CPU-second of the whole process tree, which other jobs on a shared host disturb least;
"2 idle cores" is 2 x per CPU-s, the wall rate two otherwise idle cores would give if the work kept them busy.
Ratios are against the physics row of the same run. The issue's target is >= 1,000 pick_place traj/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(out: Path, overrides: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one `synth generate`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", "progress=false", *overrides]
    r = subprocess.run(cmd, capture_output=True, text=True, env=None if env is None else {**os.environ, **env})
    if r.returncode:
        raise SystemExit(r.stderr)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000, help="kinematic episodes per run")
    ap.add_argument("--n-physics", type=int, default=60, help="physics episodes per run (the reference)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per row; the table gives medians")
    ap.add_argument("--set", action="append", default=[], help="extra override for every run")
    ap.add_argument("--numpy", action="store_true", help="one more row: the numpy reference kernels (SYNTH_JIT=0)")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        plan = [("physics", a.n_physics, 2, "1"), ("kinematic", a.n, 1, "1"), ("kinematic", a.n, 2, "1")]
        plan += [("kinematic", a.n, 2, "0")] if a.numpy else []
        for mode, n, workers, jit in plan:
            rates, per_cpu = [], []
            for k in range(a.repeats):
                out = Path(tmp) / f"{mode}{workers}{jit}-{k}"
                wall, cpu = run(out, [f"mode={mode}", f"n={n}", f"workers={workers}", *a.set], {"SYNTH_JIT": jit})
                rates.append(n / wall)
                per_cpu.append(n / cpu)
            name = mode if jit == "1" or mode == "physics" else f"{mode}, numpy (SYNTH_JIT=0)"
            rows.append((name, n, workers, statistics.median(rates), statistics.median(per_cpu)))
    ref_wall, ref_cpu = rows[0][3], rows[0][4]
    print(f"medians of {a.repeats} runs")
    print("| mode | n | workers | traj/s | per CPU-s | 2 idle cores | traj/s vs physics | per CPU-s vs physics |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, n, w, rate, cpu in rows:
        ratios = f"{rate / ref_wall:.1f}x | {cpu / ref_cpu:.1f}x"
        print(f"| {mode} | {n} | {w} | {rate:.1f} | {cpu:.1f} | {2 * cpu:.0f} | {ratios} |")
    if a.set:
        print("overrides:", " ".join(a.set))


if __name__ == "__main__":
    main()
