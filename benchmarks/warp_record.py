"""Bytes copied from the device to the host per trajectory by backend=mujoco_warp, before and after recording only
the control-rate frames, on 8 planned pick_place worlds of one layout (Warp's preferred device: the CPU without a
GPU), with MuJoCo C's labels beside it.

    python benchmarks/warp_record.py

"today" is computed from the array shapes of the code that copied every step (a (W, min(1000, N), .) float32 buffer
of states and one of sensors per 1,000 steps, then two (W,) int32 flags); "every=1" and "every=k" are the bytes the
backend counts (`MujocoWarp.copied`) for the every-step and the control-rate rollout of the same worlds.
"""

import time

import numpy as np

from synth.backends.mujoco_cpu import MujocoCPU, initial_state
from synth.backends.mujoco_warp import MujocoWarp
from synth.embodiment import load
from synth.execute import controls, run, substeps
from synth.pipeline import Worker
from synth.registry import RANDOMIZERS, TASKS
from synth.tabletop.compiler import Layout, initial_qpos
from synth.task import Frames

FIXED = {
    "object_shape": {"shapes": ["box"]},
    "object_pose": {},
    "target": {"kinds": ["tray"]},
    "table": {},
    "lighting": {},
    "object_physics": {},
    "arm_dynamics": {},
}


def main() -> None:
    w = Worker(TASKS.build("pick_place"), [RANDOMIZERS.build(n, p) for n, p in FIXED.items()], load("panda"), seed=0)
    atts = [a for a in (w.prepare(i) for i in range(12)) if a.plan is not None][:8]
    W = len(atts)
    settle = round(w.task.settle * w.ctx.control_hz)
    T = max(len(a.p.actions) for a in atts) + settle
    acts = np.stack([np.concatenate([a.p.actions, np.repeat(a.p.actions[-1:], T, 0)])[:T] for a in atts])
    models = [a.model for a in atts]
    lay = Layout(models[0], w.emb)
    qpos0 = np.stack([initial_qpos(m, w.emb, lay) for m in models])
    start = np.tile(w.start, (W, 1))
    steps = substeps(models[0], 20.0)
    N = T * steps
    m0 = models[0]
    nx, ns = m0.nq + m0.nv + m0.na, m0.nsensordata
    C = min(1000, N)
    today = (-(-N // C)) * W * C * (
        nx + ns
    ) * 4 + 2 * W * 4  # the code before: full (W, C, .) float32 buffers per chunk
    print(f"W={W} T={T} periods steps/period={steps} N={N} nq={m0.nq} nv={m0.nv} na={m0.na} ns={ns}")
    out = {}
    for name, be in (("mujoco", MujocoCPU()), ("mujoco_warp", MujocoWarp())):
        t0 = time.perf_counter()
        r = run(be, models, qpos0, acts, start, steps, w.scale)
        labels = []
        for k, a in enumerate(atts):
            n = len(a.p.actions) + settle + 1
            fr = Frames(r["qpos"][k, :n], r["qvel"][k, :n], r["sensordata"][k, : n - 1])
            labels.append("unstable" if r["diverged"][k] else w.task.judge(a.p, fr, lay))
        out[name] = (r, labels)
        print(name, f"{time.perf_counter() - t0:.1f} s", labels, "groups", getattr(be, "groups", None))
    r, _ = out["mujoco_warp"]
    ref, _ = out["mujoco"]
    print("labels equal:", out["mujoco"][1] == out["mujoco_warp"][1])
    obj = slice(lay.obj_qadr[0], lay.obj_qadr[0] + 3)
    print(
        "max |obj pos| diff [m]:",
        np.abs(r["qpos"][:, :, obj] - ref["qpos"][:, :, obj]).max(),
        "max |arm| diff [rad]:",
        np.abs(r["qpos"][:, :, lay.arm_qadr] - ref["qpos"][:, :, lay.arm_qadr]).max(),
    )
    be2 = MujocoWarp()
    state0 = np.stack([initial_state(m, q) for m, q in zip(models, qpos0, strict=True)])
    ctrl = controls(acts, start, steps, w.scale)
    s1, d1 = be2.rollout(models, state0, ctrl)
    every1 = be2.copied
    sk, dk = be2.rollout(models, state0, ctrl, every=steps)
    after = be2.copied
    print(
        "every-k equals every-step at k-th steps:",
        np.array_equal(sk, s1[:, steps - 1 :: steps]),
        np.array_equal(dk, d1[:, ::steps]),
    )
    print(
        f"bytes/traj: today (shapes of the code before) {today / W:,.0f}; every=1 counted {every1 / W:,.0f}; "
        f"every={steps} counted {after / W:,.0f}; ratio after/today {after / today:.4f}"
    )


if __name__ == "__main__":
    main()
