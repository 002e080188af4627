"""Kinematic-mode generation rate against physics mode's, measured in the same run.

    python benchmarks/kinematic.py                      # n=2000 kinematic (workers=1, 2), n=100 physics (workers=2)
    python benchmarks/kinematic.py --set randomizers.object_shape.shapes=[box,cylinder,sphere,capsule] \
        --set randomizers.distractors.shapes=[box,cylinder,sphere,capsule]   # without the trimesh shape family

Each row is a whole `synth generate` in a fresh process (start-up, workers, writing and committing the
LeRobot dataset included): successful trajectories per second of wall time, and per CPU-second of the
whole process tree (what a shared host's drift affects least). The target is >= 1,000 traj/s on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(out: Path, overrides: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children) of one `synth generate`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", "progress=false", *overrides]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="kinematic episodes per run")
    ap.add_argument("--n-physics", type=int, default=100, help="physics episodes (the reference)")
    ap.add_argument("--set", action="append", default=[], help="extra override for every run")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode, n, workers in (("physics", a.n_physics, 2), ("kinematic", a.n, 1), ("kinematic", a.n, 2)):
            wall, cpu = run(Path(tmp) / f"{mode}{workers}", [f"mode={mode}", f"n={n}", f"workers={workers}", *a.set])
            rows.append((mode, n, workers, n / wall, n / cpu))
    ref = rows[0][3]
    print("| mode | n | workers | successful traj/s | traj per CPU-s | vs physics (workers=2) |")
    print("|---|---|---|---|---|---|")
    for mode, n, w, rate, per_cpu in rows:
        print(f"| {mode} | {n} | {w} | {rate:.1f} | {per_cpu:.1f} | {rate / ref:.1f}x |")
    if a.set:
        print("overrides:", " ".join(a.set))


if __name__ == "__main__":
    main()
