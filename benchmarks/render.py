"""Rendering speed of the tabletop scene on this machine, against MuJoCo's default settings measured in
the same run.

    python benchmarks/render.py                      # 128x128, 74 steps per call, 9 repeats
    python benchmarks/render.py --size 256 --repeats 15

Every call gets a new model (another object colour), as every episode does. Per-model setup is a call
with no frames: the model's render context, scene and data (the GL context is made once per process).
steps/s: configurations per second within a call, setup excluded: T / (median t(T) - median t(0));
images/s counts each camera. Repeats are interleaved over the settings, so load from other jobs falls
on all of them alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import mujoco
import numpy as np

from synth import render as render_module
from synth.embodiment import load
from synth.render import backend, render
from synth.tabletop.compiler import Layout, build, initial_qpos
from synth.types import Obj, Scene

EMB = load("panda")
CAMERAS = {1: ["front"], 2: ["front", "wrist"]}


def scene_model(i: int, size: int) -> mujoco.MjModel:
    """The benchmark scene (a box and a cylinder); the box's colour changes with i."""
    rgba = (0.9, 0.1 + 0.8 * (i % 7) / 7, 0.1, 1.0)
    objects = (Obj("o0", rgba=rgba), Obj("o1", shape="cylinder", size=(0.025, 0.04, 0), xy=(0.45, -0.15)))
    return build(Scene(objects=objects), EMB, slots=4, resolution=(size, size))


def trajectory(model: mujoco.MjModel, steps: int) -> np.ndarray:
    """(steps, nq) the arm sweeping its first joints away from home."""
    layout = Layout(model, EMB)
    q = np.tile(initial_qpos(model, EMB, layout), (steps, 1))
    q[:, layout.arm_qadr[:4]] += np.linspace(0.0, 0.6, steps)[:, None]
    return q


def timed(fn, *args, **kw) -> float:
    """Seconds that fn(*args, **kw) took."""
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def new_renderer(model: mujoco.MjModel, size: int) -> None:
    """What ``mujoco.Renderer(model)`` makes and frees: a GL context, a scene of 10,000 geoms, and a
    render context with the model's settings. (``mujoco.Renderer`` itself takes the GL backend that
    MUJOCO_GL named when mujoco was imported, possibly none.)"""
    ctx = render_module._context_class(backend())(size, size)
    ctx.make_current()
    mujoco.MjvScene(model, maxgeom=10_000)
    mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150).free()
    ctx.free()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128, help="frame height and width [px]")
    ap.add_argument("--steps", type=int, default=74, help="configurations per call (an episode's frames)")
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    n = args.size
    models = iter(scene_model(i, n) for i in range(10**6))
    q = trajectory(scene_model(0, n), args.steps)

    first = timed(render, next(models), q[:1], ["front"], n, n)
    qualities = ["default", "cheap", "low"]
    configs = [(k, c) for k in qualities for c in CAMERAS]
    t0: dict = {k: [] for k in configs}
    tT: dict = {k: [] for k in configs}
    naive = []
    for r in range(args.repeats):
        for qual, ncam in configs[r % len(configs) :] + configs[: r % len(configs)]:
            for steps, out in ((0, t0), (args.steps, tT)):
                out[qual, ncam].append(timed(render, next(models), q[:steps], CAMERAS[ncam], n, n, quality=qual))
        naive.append(timed(new_renderer, next(models), n))

    med = statistics.median
    print(
        f"render benchmark: {n}x{n}, {args.steps} steps per call, {args.repeats} repeats; backend {backend()}, "
        f"LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS')}, mujoco {mujoco.__version__}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"first call in a process (backend, GL context, shader compilation): {first * 1e3:.0f} ms")
    print(f"a new mujoco.Renderer per model (GL context, scene, render context): {med(naive) * 1e3:.1f} ms\n")
    print(f"{'quality':8} {'cams':>4} {'steps/s':>8} {'images/s':>9} {'x default':>9} {'setup ms':>9} {'x default':>9}")
    for qual, ncam in configs:
        setup = med(t0[qual, ncam])
        rate = args.steps / (med(tT[qual, ncam]) - setup)
        base_setup = med(t0["default", ncam])
        base_rate = args.steps / (med(tT["default", ncam]) - base_setup)
        print(
            f"{qual:8} {ncam:>4} {rate:8.0f} {rate * ncam:9.0f} {rate / base_rate:9.2f} "
            f"{setup * 1e3:9.2f} {setup / base_setup:9.2f}"
        )
    for qual, (off, vis) in render_module.QUALITY.items():
        print(f"{qual}: off {[f.name for f in off]}, render context {vis or 'as the model states'}")


if __name__ == "__main__":
    main()
