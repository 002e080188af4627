"""The fallback per task: how many transits had a straight joint-space line in collision and were planned another
way, read from the written episodes' planner stats: by OMPL in physics mode, as a detour over the scene
(synth/batch_planner/detour.py) in kinematic mode.

    python benchmarks/fallback.py                      # n=100 episodes per task, physics mode, seed=1
    python benchmarks/fallback.py --n 50 --tasks pick_place sort
    python benchmarks/fallback.py --mode kinematic --n 2000 --tasks sort pick_place_multi "stack task.levels=3"
    python benchmarks/fallback.py --dataset OUT        # only read an existing dataset

Columns: episodes, transits per episode, the share of transits OMPL planned, the share of episodes with at least
one, and the attempts that failed with `no_path` (a grasp with no clear segment or transit, OMPL included). A failed
attempt writes no planner stats, so the shares are those of the successful episodes. A task may be followed by
overrides ("stack task.levels=3").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import run_generate  # noqa: E402

from synth.config import compose_config, settings  # noqa: E402
from synth.planners.transit import fallbacks  # noqa: E402
from synth.registry import TASKS  # noqa: E402


def detours(meta: dict, per_move: int) -> tuple[int, int]:
    """(transits, those detoured) of a kinematic episode's meta: per_move transits per pick-and-place."""
    moves = len(meta["check"].get("moves", [])) or 1
    return per_move * moves, int(meta["planner"].get("detours", 0))


def transits_per_move(out: Path) -> int:
    """The transit segments of one pick-and-place of the task of the dataset at out (its script's, at its defaults:
    no task option changes the script's segments)."""
    name = json.loads((out / "meta" / "synth.json").read_text())["task"]
    return sum(s.motion == "transit" for s in settings(compose_config([f"task={name}"])).task.script().segments)


def share(out: Path) -> dict:
    """{"episodes", "transits", "ompl", "episodes_ompl", "attempts", "no_path"} of the dataset at out."""
    metas = [
        json.loads(m)
        for f in sorted((out / "meta" / "episodes").glob("*/*.parquet"))
        for m in pq.read_table(f, columns=["synth/meta"])["synth/meta"].to_pylist()
    ]
    if metas and metas[0].get("mode") == "kinematic":
        per_move = transits_per_move(out)
        per = [detours(m, per_move) for m in metas]
    else:
        per = [fallbacks(m.get("planner", {})) for m in metas]
    reasons = [
        r
        for f in sorted((out / "meta" / "synth" / "attempts").glob("*/*.parquet"))
        for r in pq.read_table(f, columns=["reason"])["reason"].to_pylist()
    ]
    return {
        "episodes": len(per),
        "transits": sum(t for t, _ in per),
        "ompl": sum(o for _, o in per),
        "episodes_ompl": sum(o > 0 for _, o in per),
        "attempts": len(reasons),
        "no_path": reasons.count("no_path"),
    }


def row(task: str, s: dict) -> str:
    e, t = max(1, s["episodes"]), max(1, s["transits"])
    return (
        f"| {task} | {s['episodes']} | {s['transits'] / e:.2f} | {s['ompl']} ({s['ompl'] / t:.1%}) "
        f"| {s['episodes_ompl'] / e:.1%} | {s['no_path']} of {s['attempts']} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="successful episodes per task")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", nargs="*", default=TASKS.names())
    ap.add_argument("--dataset", type=Path, help="read this dataset instead of generating")
    ap.add_argument("--mode", default="physics", choices=["physics", "kinematic"])
    args = ap.parse_args()
    if args.dataset:
        args.mode = json.loads((args.dataset / "meta" / "synth.json").read_text())["mode"]
    way = "OMPL" if args.mode == "physics" else "detour"
    print(f"| task | episodes | transits/episode | by {way} | episodes with {way} | attempts `no_path` |")
    print("|---|---|---|---|---|---|")
    if args.dataset:
        print(row(args.dataset.name, share(args.dataset)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="synth-bench-fallback-"))
    for case in args.tasks:
        task, *more = case.split()
        emb = "aloha" if TASKS.get(task).arms == 2 else "panda"
        out = tmp / "-".join(case.replace("=", " ").split())  # no "=" in an override's value
        over = [f"task={task}", *more, f"embodiment={emb}", f"n={args.n}", f"workers={args.workers}", "seed=1"]
        run_generate(out, [*over, f"mode={args.mode}"])
        print(row(case, share(out)), flush=True)


if __name__ == "__main__":
    main()
