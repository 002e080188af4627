"""How many physics layouts N default-randomized attempts compile to, per task, and what differs between them.

    python benchmarks/layouts.py                        # pick_place, 1,024 attempts
    python benchmarks/layouts.py --tasks all --n 256    # every registered task
    python benchmarks/layouts.py --uniform              # the compiler's one-layout mode (tabletop.build uniform=)
    python benchmarks/layouts.py --uniform --shapes box cylinder sphere capsule   # no random convex meshes
    python benchmarks/layouts.py --share 1024           # uniform, each batch of 1,024 worlds sharing its meshes
    python benchmarks/layouts.py --agree 256            # success labels of both compiles (MuJoCo C), pick_place

Each attempt is drawn and compiled as generation draws and compiles it (synth.randomize.apply, then
tabletop.build with the task's slots and physics step); nothing is planned or stepped. A layout is counted two
ways: MuJoCo Warp's (`synth.backends.mujoco_warp.layout_key`: worlds one device model can batch; needs
mujoco_warp, else skipped) and the CPU backend's (`synth.backends.mujoco_cpu.signature`: worlds that share an
MjData). "What differs" lists every size (n*) and every unbatched model array that takes more than one value
over the layouts found, and the scene features behind them (shapes per slot, distractors placed, target kinds).
With `--share W` the layouts are those of the models a MuJoCo Warp batch of W worlds gets (uniform.share_meshes),
counted per batch: the most in any batch.
`--agree N` plans attempts 0..N-1 of pick_place once (on the per-scene model, as generation does), steps each
plan on both compiles of its scene with MuJoCo C and counts equal success labels.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter

import mujoco
import numpy as np

from synth.backends.base import available
from synth.backends.mujoco_cpu import signature
from synth.embodiment import load
from synth.physics import default
from synth.randomize import apply, slots
from synth.registry import RANDOMIZERS, TASKS
from synth.tabletop.compiler import build
from synth.tabletop.uniform import share_meshes

DEFAULT = ("object_shape", "object_pose", "target", "distractors", "table", "lighting", "camera_jitter")
DEFAULT += ("object_physics", "drawer")  # configs/generate.yaml's randomizers


def features(scene) -> str:
    """The scene choices that decide a layout today: each active object's shape, target kinds, textures."""
    shapes = ",".join((o.family or o.shape) if o.active else "-" for o in scene.objects)
    kinds = ",".join(t.kind for t in scene.all_targets)
    return f"objects[{shapes}] targets[{kinds}]" + (" textured" if scene.textures else "")


def randomizers(shapes: list[str] | None = None) -> list:
    """generate.yaml's randomizers; `shapes` limits the task objects' and the distractors' shapes."""
    over = {"shapes": shapes} if shapes else {}
    return [RANDOMIZERS.build(r, over if r in ("object_shape", "distractors") else {}) for r in DEFAULT]


def measure(
    task_name: str, n: int, emb_name: str, uniform: bool, shapes: list[str] | None = None, share: int = 0
) -> dict:
    """Layouts of attempts 0..n-1 of `task_name` with the default randomizers (seed 0). share = W > 0: the uniform
    models of each W consecutive attempts share their meshes (uniform.share_meshes, as a MuJoCo Warp batch), and
    the layouts are counted per batch (the most in any batch)."""
    task, emb = TASKS.build(task_name), load(emb_name)
    rands = randomizers(shapes)
    k = slots(task.scene(), rands)
    physics = default(20.0, task.physics_step)
    warp = available("mujoco_warp")
    if warp:
        from synth.backends.mujoco_warp import layout_key

    def compile_(scene, meshes=()):
        return build(scene, emb, k, control_hz=20.0, physics=physics, uniform=uniform or share > 0, meshes=meshes)

    keys: dict[bytes, mujoco.MjModel] = {}
    sigs: set[tuple] = set()
    feats: Counter = Counter()
    most = (0, 0)  # (Warp keys, CPU signatures) in the batch with the most
    t0 = time.perf_counter()
    for b in range(0, n, share or n):
        scenes = [apply(rands, task.scene(), 0, i)[0] for i in range(b, min(n, b + (share or n)))]
        models = [compile_(sc) for sc in scenes]
        if share:
            models = share_meshes(scenes, models, compile_)
        batch_keys = {layout_key(m): m for m in models} if warp else {}
        batch_sigs = {signature(m) for m in models}
        most = max(most, (len(batch_keys), len(batch_sigs)))
        keys |= batch_keys
        sigs |= batch_sigs
        feats.update(features(sc) for sc in scenes)
    seconds = time.perf_counter() - t0
    out = {"task": task_name, "n": n, "keys": keys, "sigs": len(sigs), "feats": feats, "seconds": seconds}
    if share:  # per batch: the model of one batch holds that batch's meshes, another batch's others
        out["keys"], out["sigs"] = dict(list(keys.items())[: most[0]]), most[1]
    return out


def agree(n: int, emb_name: str) -> None:
    """Print how many of pick_place's attempts 0..n-1 get the same label from the per-scene and uniform models."""
    from synth.pipeline import Worker

    w = Worker(TASKS.build("pick_place"), randomizers(), load(emb_name), seed=0)
    old = [a for a in (w.prepare(i) for i in range(n)) if a.plan is not None]
    new = [
        dataclasses.replace(a, model=build(a.scene, w.emb, w.slots, w.resolution, w.ctx.control_hz, w.physics, True))
        for a in old
    ]
    r_old, r_new = w.execute(old), w.execute(new)
    same = sum(a.failure == b.failure for a, b in zip(old, new, strict=True))
    dq = [np.abs(x["frames"].qpos - y["frames"].qpos).max() for x, y in zip(r_old, r_new, strict=True)]
    ok_old, ok_new = sum(not a.failure for a in old), sum(not a.failure for a in new)
    print(f"pick_place: {len(old)} of {n} attempts planned; labels equal on {same}/{len(old)}")
    print(f"  successes: per-scene {ok_old}, uniform {ok_new}")
    print(f"  max |qpos difference| per attempt [m or rad]: median {np.median(dq):.1e}, max {np.max(dq):.1e}")
    for a, b in zip(old, new, strict=True):
        if a.failure != b.failure:
            print(f"  attempt {a.index}: {a.failure or 'success'} -> {b.failure or 'success'}")


def differing(models: list[mujoco.MjModel]) -> list[str]:
    """Sizes (name=min..max) and unbatched arrays that take more than one value over `models`."""
    if len(models) < 2:
        return []
    from synth.backends.mujoco_warp import _structural

    out = []
    for k in sorted(dir(models[0])):
        v = getattr(models[0], k)
        if k.startswith("n") and isinstance(v, int):
            vals = {getattr(m, k) for m in models}
            if len(vals) > 1:
                out.append(f"{k}={min(vals)}..{max(vals)}")
    for k in _structural():
        vals = {np.ascontiguousarray(getattr(m, k)).tobytes() for m in models}
        if len(vals) > 1:
            out.append(k)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["pick_place"], help="task names, or 'all'")
    ap.add_argument("--n", type=int, default=1024, help="attempts per task")
    ap.add_argument("--embodiment", default="panda")
    ap.add_argument("--uniform", action="store_true", help="compile with tabletop.build(uniform=randomizers)")
    ap.add_argument("--detail", action="store_true", help="print the differing fields and the scene features")
    ap.add_argument("--shapes", nargs="+", help="limit object_shape's and distractors' shapes (default: theirs)")
    ap.add_argument("--share", type=int, default=0, help="W: uniform, meshes shared per batch of W (Warp's way)")
    ap.add_argument("--agree", type=int, default=0, help="instead: label agreement of both compiles on N attempts")
    args = ap.parse_args()
    if args.agree:
        agree(args.agree, args.embodiment)
        return
    names = TASKS.names() if args.tasks == ["all"] else args.tasks
    print("| task | attempts | layouts (mujoco_warp key) | layouts (CPU signature) | scene feature sets | s |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name in names:
        try:
            r = measure(name, args.n, args.embodiment, args.uniform, args.shapes, args.share)
        except ValueError as e:  # the uniform compile refuses what it cannot hold yet (concave objects)
            print(f"| {name} | - | refused: {e} | | | |", flush=True)
            continue
        rows.append(r)
        nk = len(r["keys"]) if r["keys"] else "-"
        print(f"| {name} | {r['n']} | {nk} | {r['sigs']} | {len(r['feats'])} | {r['seconds']:.0f} |", flush=True)
    if args.detail:
        for r in rows:
            print(f"\n{r['task']}: differs between layouts: {', '.join(differing(list(r['keys'].values())))}")
            for f, c in r["feats"].most_common(5):
                print(f"  {c:5d} x {f}")


if __name__ == "__main__":
    main()
