"""Physics backends against MuJoCo C on the CPU (the reference, measured in the same run): world-steps/s and
successful pick_place trajectories/s against the number of worlds W stepped together.

    python benchmarks/backends.py                              # W = 64, 256 on Warp's preferred device
    python benchmarks/backends.py --worlds 1024 4096 8192      # a GPU
    python benchmarks/backends.py --layouts default            # the default randomizers

What is timed is the physics of W planned attempts, as generation runs it (synth.execute.run: controls at the
physics rate, states read back, divergence check) plus judging; planning (CPU) comes first and is not timed.
All W worlds go in one call, the shorter plans padded with their last action (world-steps count the padding:
it is stepped). `--layouts fixed` (default) draws a box into a tray without distractors, so every world has
one layout and MuJoCo Warp steps them as one batch; `--layouts default` uses generation's randomizers, where
almost every world has its own geom types and MuJoCo Warp runs one small batch per layout.
MuJoCo Warp is warmed up (kernels compiled and loaded) on the same worlds before it is timed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from synth.backends.base import available, make
from synth.backends.mujoco_cpu import MujocoCPU
from synth.embodiment import load
from synth.execute import run, substeps
from synth.pipeline import Attempt, Worker
from synth.registry import RANDOMIZERS, TASKS
from synth.tabletop.compiler import Layout, initial_qpos
from synth.task import Frames

FIXED = {"object_shape": {"shapes": ["box"]}, "object_pose": {}, "target": {"kinds": ["tray"]}, "table": {}}
FIXED |= {"lighting": {}, "object_physics": {}}
DEFAULT = ["object_shape", "object_pose", "target", "distractors", "table", "lighting", "object_physics"]


def planned(w: Worker, n: int, start: int = 0) -> list[Attempt]:
    """The first n attempts from `start` that have a plan."""
    out, i = [], start
    while len(out) < n:
        a = w.prepare(i)
        if a.plan is not None:
            out.append(a)
        i += 1
    return out


def physics(w: Worker, backend, atts: list[Attempt], periods: int | None = None) -> tuple[float, int, list[str]]:
    """(seconds, world-steps, failure per world: "" = success) of one call for all worlds."""
    settle = round(w.task.settle * w.ctx.control_hz)
    T = periods or max(len(a.p.actions) for a in atts) + settle
    acts = np.stack([np.concatenate([a.p.actions, np.repeat(a.p.actions[-1:], T, 0)])[:T] for a in atts])
    models = [a.model for a in atts]
    lay = Layout(models[0], w.emb)
    qpos0 = np.stack([initial_qpos(m, w.emb, lay) for m in models])
    start = np.tile(np.r_[w.emb.home, w.emb.gripper.stroke], (len(atts), 1))
    steps = substeps(models[0], w.ctx.control_hz)
    t0 = time.perf_counter()
    out = run(backend, models, qpos0, acts, start, steps, w.scale)
    labels: list[str] = []
    for k, a in enumerate(atts if periods is None else []):  # a warm-up (periods=) is not judged
        n = min(len(a.p.actions) + settle, T) + 1
        fr = Frames(out["qpos"][k, :n], out["qvel"][k, :n], out["sensordata"][k, : n - 1])
        labels.append("unstable" if out["diverged"][k] else w.task.judge(a.p, fr, Layout(a.model, w.emb)))
    return time.perf_counter() - t0, len(atts) * T * steps, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--backends", nargs="+", default=["mujoco_warp"])
    ap.add_argument("--layouts", choices=["fixed", "default"], default="fixed")
    ap.add_argument("--threads", type=int, default=1, help="threads of the MuJoCo C reference (mujoco.rollout)")
    args = ap.parse_args()
    rands = FIXED if args.layouts == "fixed" else {n: {} for n in DEFAULT}
    w = Worker(TASKS.build("pick_place"), [RANDOMIZERS.build(n, p) for n, p in rands.items()], load("panda"), seed=0)
    names = [b for b in args.backends if available(b)]
    rows = []
    for W in args.worlds:
        t0 = time.perf_counter()
        atts = planned(w, W)
        print(f"W={W}: planned in {time.perf_counter() - t0:.0f} s (not timed below)", flush=True)
        ref_s, ref_steps, ref_labels = physics(w, MujocoCPU(nthread=args.threads), atts)
        rows.append((W, f"mujoco ({args.threads} thread)", ref_s, ref_steps, ref_labels, 1, ref_labels, 0))
        for name in names:
            be = make(name)
            physics(w, be, atts, periods=2)  # warm-up: compile and load the kernels for these layouts
            s, steps, labels = physics(w, be, atts)
            copied = getattr(be, "copied", 0) / W  # [B] device -> host per trajectory (MuJoCo Warp counts them)
            rows.append((W, name, s, steps, labels, len(getattr(be, "groups", [1])), ref_labels, copied))
            print(f"W={W}: {name} {s:.1f} s, MuJoCo C {ref_s:.1f} s", flush=True)
    print_table(rows)


def print_table(rows: list) -> None:
    """A markdown table; ratio = world-steps/s over the MuJoCo C reference's at the same W; to host: bytes copied from
    the device per trajectory (0: the physics ran on the host)."""
    ref: dict[int, float] = {}
    print(
        "| W | backend | layout batches | world-steps/s | successful traj/s | success | labels = MuJoCo | ratio "
        "| to host [kB/traj] |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for W, name, s, steps, labels, groups, ref_labels, copied in rows:
        rate = steps / s
        ref.setdefault(W, rate)
        ok = sum(lab == "" for lab in labels)
        same = np.mean([a == b for a, b in zip(labels, ref_labels, strict=True)])
        print(
            f"| {W} | {name} | {groups} | {rate:,.0f} | {ok / s:.2f} | {ok / len(labels):.0%} | {same:.0%} "
            f"| {rate / ref[W]:.2f} | {copied / 1e3:,.1f} |"
        )


if __name__ == "__main__":
    main()
