"""Generation rate and success rate of every (task, embodiment) pair, measured in the same run.

    python benchmarks/tasks.py                 # n=200 state-only episodes per pair, 2 workers
    python benchmarks/tasks.py --n 500 --tasks push place_in_container
    python benchmarks/tasks.py --tasks stack --set task.levels=3    # overrides for the measured pairs

Each pair is one `synth generate` in a fresh process, followed by its own physics floor (the written
episodes' physics alone, by `mujoco.rollout`; see generate.py). Columns: successful trajectories/s,
actual/floor, the rate relative to pick_place on panda measured in the same run, and the success rate
over all attempts with the most common failure reasons.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import floor, run_generate  # noqa: E402

from synth.embodiment import load  # noqa: E402
from synth.embodiment import names as embodiments  # noqa: E402
from synth.registry import TASKS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="successful episodes per pair")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", nargs="*", default=TASKS.names())
    ap.add_argument("--embodiments", nargs="*", default=embodiments())
    ap.add_argument("--set", nargs="*", default=[], help="overrides of the measured pairs (not the reference)")
    args = ap.parse_args()
    pairs = [("pick_place", "panda")] + [  # the pairs a task supports: as many arms as it drives
        (t, e)
        for t in args.tasks
        for e in args.embodiments
        if (t, e) != ("pick_place", "panda") and len(load(e).mounts) == TASKS.get(t).arms
    ]
    tmp = Path(tempfile.mkdtemp(prefix="synth-bench-tasks-"))
    rows = []
    for k, (task, emb) in enumerate(pairs):
        out = tmp / f"{task}-{emb}-{k}"
        ov = [f"task={task}", f"embodiment={emb}", f"n={args.n}", f"workers={args.workers}", "seed=1"]
        if k and args.set:
            ov += args.set
            task = f"{task} {' '.join(args.set)}"
        dt, prog = run_generate(out, ov)
        fl, n_eps, _ = floor(out, ov, args.workers)
        attempts = max(1, int(prog.get("attempts", 0)))
        written = int(prog.get("episodes", n_eps))
        reasons = sorted(((v, k) for k, v in (prog.get("failures") or {}).items() if v), reverse=True)[:3]
        rows.append((task, emb, written, written / dt, n_eps / fl, written / attempts, reasons))
        print(f"{task:>20} {emb:>6}: {written / dt:6.1f} traj/s, success {written / attempts:.1%}", flush=True)
    ref = rows[0][3]
    print(
        "\n| task | embodiment | n | successful traj/s | floor traj/s | actual/floor | vs pick_place/panda "
        "| success rate | main failures |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for task, emb, n, rate, fl_rate, ok, reasons in rows:
        why = ", ".join(f"{k} {v}" for v, k in reasons) or "-"
        print(
            f"| {task} | {emb} | {n} | {rate:.1f} | {fl_rate:.1f} | {rate / fl_rate:.2f} | {rate / ref:.2f} "
            f"| {ok:.1%} | {why} |"
        )


if __name__ == "__main__":
    main()
