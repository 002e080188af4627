"""Physics mode planned per attempt against the batched planner, alternated in one sitting, each run against its own
physics floor (benchmarks/generate.py's `floor`: the written episodes' physics alone, by mujoco.rollout on as many
threads as workers).

    python benchmarks/physics_batched.py --n 2000 --repeats 3      # pick_place, state-only, 2 workers

Arms, run in turn per repeat (seed = repeat): `before` (planner=per_attempt physics.timestep=0.002: the code before
issue 25, whose plans the per-attempt path still makes; no floor), `per_attempt` and `batched` (the task's default
physics step). Reports per arm the medians of successful traj/s, floor traj/s, actual/floor (paired per run),
success rate, and the share of attempts the batched planner handed to the per-attempt fallback.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from generate import floor, run_generate

ARMS = {
    "before": ["planner=per_attempt", "physics.timestep=0.002"],
    "per_attempt": ["planner=per_attempt"],
    "batched": ["planner=batched"],
}


def records(out: Path) -> list[dict]:
    """The dataset's attempt records, their `seconds` parsed."""
    files = sorted(glob.glob(str(out / "meta/synth/attempts/*/*.parquet")))
    return [{**r, "seconds": json.loads(r["seconds"])} for f in files for r in pq.read_table(f).to_pylist()]


def fallback_share(out: Path) -> float:
    """Share of the dataset's attempts whose plan fell back to the per-attempt planner (seconds["fallback"])."""
    recs = records(out)
    return sum("fallback" in r["seconds"] for r in recs) / max(len(recs), 1)


def stages(out: Path) -> dict[str, float]:
    """Worker seconds per successful episode [ms] by stage, from the attempt records: build (randomize, instruction,
    compile), plan (batched share or per-attempt), fallback, physics (the rollout, per world), episode (labels)."""
    recs = records(out)
    eps = max(sum(r["success"] for r in recs), 1)
    out_ = {k: 0.0 for k in ("build", "plan", "fallback", "physics", "episode")}
    for r in recs:
        for k, v in r["seconds"].items():
            out_[k] = out_.get(k, 0.0) + v
    return {k: 1e3 * v / eps for k, v in out_.items()}


def one(tmp: Path, arm: str, r: int, args) -> dict:
    """One generation run of `arm` with seed r, then (but for `before`) its floor."""
    out = tmp / f"{arm}-{r}"
    ov = [f"task={args.task}", f"n={args.n}", f"workers={args.workers}", f"seed={r}", *ARMS[arm]]
    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    dt, prog = run_generate(out, ov)
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run's process tree, reaped: main process and workers
    row = {"arm": arm, "run": r, "traj_per_s": prog["episodes"] / dt, "success": prog["successes"] / prog["attempts"]}
    cpu = c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
    row["cpu_ms_per_episode"] = 1e3 * cpu / prog["episodes"]  # less sensitive to the other jobs' load than traj/s
    row["fallback"] = fallback_share(out)
    row["ms_per_episode"] = {k: round(v, 2) for k, v in stages(out).items()}
    if arm != "before":
        threads: list[float] = []
        fdt, neps, _ = floor(out, ov, args.workers, threads)
        row["floor"] = neps / fdt
        row["ratio"] = row["traj_per_s"] / row["floor"]
        row["floor_cpu_ms_per_episode"] = 1e3 * sum(threads) / neps
        row["cpu_ratio"] = row["floor_cpu_ms_per_episode"] / row["cpu_ms_per_episode"]  # floor CPU / generation CPU
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--task", default="pick_place")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--stages-of", nargs="+", default=[], help="only print stages() of these dataset directories")
    args = ap.parse_args()
    if args.stages_of:
        for d in args.stages_of:
            print(d, json.dumps({k: round(v, 2) for k, v in stages(Path(d)).items()}))
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tmp = Path(tempfile.mkdtemp(prefix="synth-physbatch-"))
    run_generate(tmp / "warm", [f"task={args.task}", "n=8", "workers=1"])  # compiled kernels cached before timing
    rows = [one(tmp, arm, r, args) for r in range(args.repeats) for arm in args.arms]
    print(f"\n{args.task}, state-only, {args.workers} workers, n={args.n}, median of {args.repeats} alternations")
    print(
        "| planner | successful traj/s | physics floor traj/s | actual/floor | CPU ms per episode | floor CPU ms "
        "| floor CPU / CPU | success | fallback share |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    med = {}
    for arm in args.arms:
        rs = [x for x in rows if x["arm"] == arm]
        med[arm] = {k: float(np.median([x[k] for x in rs])) for k in rs[0] if k not in ("arm", "run", "ms_per_episode")}
        m = med[arm]
        fl, ra, fc, cr = (
            f"{m[k]:{f}}" if k in m else "-"
            for k, f in (("floor", ".1f"), ("ratio", ".2f"), ("floor_cpu_ms_per_episode", ".0f"), ("cpu_ratio", ".2f"))
        )
        print(
            f"| {arm} | {m['traj_per_s']:.1f} | {fl} | {ra} | {m['cpu_ms_per_episode']:.0f} | {fc} | {cr} "
            f"| {m['success']:.1%} | {m['fallback']:.1%} |"
        )
    for arm in ("before", "per_attempt"):
        if arm in med and "batched" in med:  # paired per repeat: the host's speed drifts between sittings
            pair = [
                b["traj_per_s"] / a["traj_per_s"]
                for a, b in zip(
                    [x for x in rows if x["arm"] == arm], [x for x in rows if x["arm"] == "batched"], strict=True
                )
            ]
            print(f"batched / {arm}: {np.median(pair):.2f} (per repeat {', '.join(f'{p:.2f}' for p in pair)})")
            cpu = [
                a["cpu_ms_per_episode"] / b["cpu_ms_per_episode"]
                for a, b in zip(
                    [x for x in rows if x["arm"] == arm], [x for x in rows if x["arm"] == "batched"], strict=True
                )
            ]
            each = ", ".join(f"{p:.2f}" for p in cpu)
            print(f"  CPU per episode, {arm} / batched: {np.median(cpu):.2f} (per repeat {each})")


if __name__ == "__main__":
    main()
