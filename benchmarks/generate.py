"""Generation speed against the physics floor, measured in the same run.

    python benchmarks/generate.py                 # state-only and one 128x128 camera, 2 workers
    python benchmarks/generate.py --memory        # also peak RSS at n=1,000 and n=10,000 (slow)

Floor: measured right after each generation run, on the same written episodes' physics alone
(their recorded initial states and actions, expanded to physics-rate controls exactly as generation
does, plus the judged settle time), stepped by `mujoco.rollout` on as many threads as generation had
workers. actual/floor is the median of the
per-run ratios (each run paired with its own floor, since a shared host's speed drifts).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mujoco
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from mujoco import rollout

from synth.config import compose_config, settings
from synth.embodiment import load
from synth.execute import controls, substeps
from synth.randomize import apply, slots
from synth.tabletop.compiler import build


def _tree_rss(pid: int) -> int:
    """Proportional set size [bytes] of a process and all its descendants, from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:  # PSS: pages shared by forked workers counted once
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:")) * 1024
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def run_generate(out: Path, overrides: list[str]) -> tuple[float, dict]:
    """Wall time of `synth generate` in a fresh process, and the peak resident memory of its whole
    process tree (main process + workers, PSS) sampled every 0.2 s [MiB]."""
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={out}", "progress=false", *overrides]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.2)
    dt = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(proc.stderr.read().decode())
    prog = json.loads((out / ".synth" / "progress.json").read_text())
    return dt, {"peak_mib": peak / 2**20, **prog}


def floor(out: Path, overrides: list[str], threads: int, cpu: list | None = None) -> tuple[float, int, int]:
    """(seconds, episodes, physics steps) of the written episodes' physics alone, by mujoco.rollout
    (which releases the GIL) on `threads` threads; `cpu`, if given, gets each rollout's thread CPU seconds."""
    s = settings(compose_config([f"out={out}", *overrides]))
    emb = load(s.embodiment)
    n_slots = slots(s.task.scene(), list(s.randomizers))
    scale = emb.scale
    settle = round(s.task.settle * s.control_hz)
    start = emb.start[None]
    eps = [r for f in sorted((out / "meta" / "episodes").glob("*/*.parquet")) for r in pq.read_table(f).to_pylist()]
    data = pa.concat_tables([pq.read_table(f) for f in sorted((out / "data").glob("*/*.parquet"))])
    executed = "synth.joint_target" if "synth.joint_target" in data.column_names else "action"
    actions = np.asarray(data[executed].to_pylist(), np.float64)
    jobs = []
    for e in eps:
        meta = json.loads(e["synth/meta"])
        scene, _ = apply(list(s.randomizers), s.task.scene(), s.seed, meta["attempt"])
        m = build(scene, emb, n_slots, s.resolution, s.control_hz, s.physics)
        a = actions[e["dataset_from_index"] : e["dataset_to_index"]]
        a = np.vstack([a, np.repeat(a[-1:], settle, 0)])
        jobs.append(
            (m, np.asarray(meta["initial_state"])[None], controls(a[None], start, substeps(m, s.control_hz), scale))
        )
    steps = sum(c.shape[1] for _, _, c in jobs)

    def one(job):
        m, st, c = job
        t0 = time.thread_time()
        out = rollout.rollout(m, mujoco.MjData(m), st, c)
        if cpu is not None:
            cpu.append(time.thread_time() - t0)
        return out

    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(one, jobs))
    return time.perf_counter() - t, len(eps), steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="episodes for the state-only run")
    ap.add_argument("--n-rendered", type=int, default=150)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="peak RSS at n=1,000 and n=10,000")
    ap.add_argument("--memory-only", action="store_true", help="only the memory comparison")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="synth-bench-"))
    runs = (
        []
        if args.memory_only
        else [("state-only", args.n, []), ("1 camera 128x128", args.n_rendered, ["cameras=[front]"])]
    )
    runs = [r for r in runs if r[1] > 0]  # --n-rendered 0: state-only alone
    for label, n, extra in runs:
        rates, floors, ratios, succ = [], [], [], []
        for r in range(args.repeats):
            out = tmp / f"{label.split()[0]}-{r}"
            ov = [f"n={n}", f"workers={args.workers}", f"seed={r}", *extra]
            dt, prog = run_generate(out, ov)
            rates.append(prog["episodes"] / dt)
            succ.append(prog["successes"] / prog["attempts"])
            if not extra:
                fdt, neps, steps = floor(out, ov, args.workers)
                floors.append(neps / fdt)
                ratios.append(rates[-1] / floors[-1])  # paired: the host's speed drifts between runs
                print(f"  floor run {r}: {neps} episodes, {steps} physics steps, {steps / fdt:.0f} steps/s", flush=True)
            print(f"  {label} run {r}: {prog['episodes']} episodes in {dt:.1f}s ({rates[-1]:.1f}/s)", flush=True)
        row = {"run": label, "n": n, "traj_per_s": float(np.median(rates)), "success": float(np.median(succ))}
        if floors:
            row["floor_traj_per_s"] = float(np.median(floors))
            row["ratio"] = float(np.median(ratios))
        rows.append(row)
    if rows:
        print(f"\npick_place on {os.cpu_count()} cores, {args.workers} workers, median of {args.repeats} runs")
        print("| run | n | successful traj/s | physics floor traj/s | actual/floor | success rate |")
        print("|---|---|---|---|---|---|")
    for r in rows:
        fl = f"{r['floor_traj_per_s']:.1f}" if "floor_traj_per_s" in r else "-"
        ra = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        print(f"| {r['run']} | {r['n']} | {r['traj_per_s']:.1f} | {fl} | {ra} | {r['success']:.1%} |")
    if args.memory or args.memory_only:
        peaks = {}
        for n in (1000, 10000):
            _, prog = run_generate(tmp / f"mem-{n}", [f"n={n}", f"workers={args.workers}", "shard=256"])
            peaks[n] = prog["peak_mib"]
        print("\n| peak memory (PSS, main + workers) n=1,000 | n=10,000 | ratio |\n|---|---|---|")
        print(f"| {peaks[1000]:.0f} MiB | {peaks[10000]:.0f} MiB | {peaks[10000] / peaks[1000]:.2f} |")


if __name__ == "__main__":
    main()
