"""What judging costs: per task, the physics of n real attempts (MuJoCo C, in this process) against judging them,
world by world (Task.judge) and as one batch (Task.judge_batch); then the same frames tiled to --worlds worlds,
the size of a GPU batch, judged both ways (medians of --repeats).

    python benchmarks/judging.py                                  # every task, n=8, 1,024 worlds
    python benchmarks/judging.py --tasks pick_place --n 16 --worlds 4096
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from synth.embodiment import load
from synth.pipeline import Worker
from synth.registry import RANDOMIZERS, TASKS
from synth.task import FrameBatch

RANDS = ("object_pose", "target", "object_shape", "action_noise")


def capture(task: str, n: int) -> tuple[Worker, list, list[FrameBatch], object, float]:
    """Run n planned attempts; return the worker, the plans and FrameBatches it judged, the layout, and the
    physics seconds per attempt."""
    body = "panda" if TASKS.get(task).arms == 1 else "aloha"
    w = Worker(TASKS.build(task), [RANDOMIZERS.build(r, {}) for r in RANDS], load(body), seed=11)
    atts = [a for a in (w.prepare(i) for i in range(4 * n)) if a.plan is not None][:n]
    seen: list = []
    real = w.task.judge_batch
    object.__setattr__(w.task, "judge_batch", lambda p, fr, lay: seen.append((p, fr, lay)) or real(p, fr, lay))
    w.execute(atts)
    physics = sum(a.seconds["physics"] for a in atts) / len(atts)
    return w, [p for ps, _, _ in seen for p in ps], [fr for _, fr, _ in seen], seen[0][2], physics


def tiled(frames: list[FrameBatch], plans: list, worlds: int) -> tuple[list, FrameBatch]:
    """The captured worlds repeated to `worlds`, padded to one length."""
    one = [(fr, i) for fr in frames for i in range(len(fr.start))]
    F = max(fr.qpos.shape[1] for fr in frames)
    pick = [one[k % len(one)] for k in range(worlds)]

    def stack(get, minus: int = 0) -> np.ndarray:
        out = np.zeros((worlds, F - minus, get(frames[0]).shape[2]))
        for k, (fr, i) in enumerate(pick):
            x = get(fr)[i]
            out[k, : len(x)] = x
        return out

    fb = FrameBatch(
        stack(lambda f: f.qpos),
        stack(lambda f: f.qvel),
        stack(lambda f: f.sensordata, 1),
        np.array([fr.start[i] for fr, i in pick]),
        np.array([fr.length[i] for fr, i in pick]),
    )
    return [plans[k % len(plans)] for k in range(worlds)], fb


def median_time(f, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="*", default=TASKS.names())
    ap.add_argument("--n", type=int, default=8, help="real attempts per task")
    ap.add_argument("--worlds", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print("| task | physics ms/attempt | judge ms/attempt | share | worlds | one by one [s] | batch [s] | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for task in a.tasks:
        print(row(task, a.n, a.worlds, a.repeats), flush=True)


def row(task: str, n: int, worlds: int, repeats: int) -> str:
    w, plans, frames, lay, physics = capture(task, n)
    P, fb = tiled(frames, plans, worlds)
    loop = median_time(lambda: [w.task.judge(p, fb.world(i), lay) for i, p in enumerate(P)], repeats)
    batch = median_time(lambda: w.task.judge_batch(P, fb, lay), repeats)
    per = loop / worlds
    return (
        f"| {task} | {1e3 * physics:.1f} | {1e3 * per:.3f} | {per / physics:.2%} | {worlds} | {loop:.3f} "
        f"| {batch:.3f} | {loop / batch:.1f}x |"
    )


if __name__ == "__main__":
    main()
