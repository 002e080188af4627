"""Physics step study: success labels, object paths, replay error and speed per physics setting vs a 1 ms reference.

    python benchmarks/physics_step.py                                  # every task, n=200 episodes per setting
    python benchmarks/physics_step.py --tasks pick_place --n 2000      # the issue's headline case
    python benchmarks/physics_step.py --tasks push --settings 1ms 2ms 5ms 5ms/it20

Per task (on its default body: panda, aloha for a two-arm task) and setting, one `synth generate` of n successful
state-only episodes, mode=physics, the same seed: every setting runs the same attempts (attempt i follows from
(seed, i) alone), in a fresh process with the same workers, one after another. Compared with the first setting
(the reference, 1 ms) over the attempts both ran:
  agree     share of attempts with the same label (success, or failure whatever its reason)
  final     |object final position - reference| [m], median and p95, over the attempts both wrote (successes)
  path      max over frames of the same, median and p95 [m]
  replay    max |replayed - recorded observation.state| over `--replay` written episodes, each replayed by
            synth.replay through the physics recorded in the dataset's meta/synth.json
  traj/s    successful trajectories/s of the whole run (planning included), and physics s/attempt (the batched
            physics alone, from the attempt records), each also relative to 2 ms of the same run.
On a shared host the wall times drift with the load; `--cpu K` then times the physics alone in CPU seconds
(`mujoco.rollout` of K episodes written at 2 ms, kept by `--dir`, under every setting, settings alternated twice).
Settings are named <step>[/it<iterations>][/tol<tolerance>][/<integrator>]; a step that does not divide the
control period (4 ms does not divide 50 ms) takes the largest that does below it (4ms -> 3.85 ms, 13 steps).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import mujoco
import numpy as np
import pyarrow.parquet as pq
from mujoco import rollout

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import run_generate  # noqa: E402

from synth.config import compose_config, settings  # noqa: E402
from synth.embodiment import load  # noqa: E402
from synth.execute import controls, substeps  # noqa: E402
from synth.physics import largest_step  # noqa: E402
from synth.randomize import apply, slots  # noqa: E402
from synth.registry import TASKS  # noqa: E402
from synth.replay import replay  # noqa: E402
from synth.tabletop.compiler import build  # noqa: E402

SETTINGS = ["1ms", "2ms", "4ms", "5ms", "5ms/it20", "5ms/it10/tol1e-6"]


def overrides(name: str, hz: float) -> list[str]:
    """`physics.*` overrides of a setting name such as 5ms/it20/tol1e-6/implicit."""
    step, *rest = name.split("/")
    out = [f"physics.timestep={largest_step(hz, float(step.removesuffix('ms')) / 1000 + 1e-12)!r}"]
    for part in rest:
        if part.startswith("it"):
            out.append(f"physics.iterations={int(part[2:])}")
        elif part.startswith("tol"):
            out.append(f"physics.tolerance={float(part[3:])!r}")
        else:
            out.append(f"physics.integrator={part}")
    return out


def read(out: Path) -> dict:
    """Labels (attempt -> success), per-attempt physics seconds, and object positions (attempt -> (T, 3))."""
    atts = [r for f in sorted((out / "meta/synth/attempts").glob("*/*.parquet")) for r in pq.read_table(f).to_pylist()]
    labels = {r["attempt"]: bool(r["success"]) for r in atts}
    physics = [p for r in atts if (p := json.loads(r["seconds"]).get("physics", 0.0)) > 0]
    ep_attempt = {r["episode_index"]: r["attempt"] for r in atts if r["success"] and r["episode_index"] >= 0}
    paths: dict[int, list] = {}
    for f in sorted((out / "data").glob("*/*.parquet")):
        t = pq.read_table(f, columns=["episode_index", "synth.object_pose"])
        for e, pose in zip(t["episode_index"].to_pylist(), t["synth.object_pose"].to_pylist(), strict=True):
            paths.setdefault(ep_attempt.get(e, -1), []).append(pose[:3])
    paths.pop(-1, None)
    return {
        "labels": labels,
        "physics": float(np.mean(physics)),
        "paths": {a: np.asarray(p) for a, p in paths.items()},
    }


def replay_error(out: Path, episodes: int, k: int) -> float:
    """Max |replayed - recorded state| over k written episodes spread over the dataset."""
    picks = sorted(set(np.linspace(0, episodes - 1, min(k, episodes)).round().astype(int).tolist()))
    return max(float(np.max(np.abs(r.replayed_state - r.recorded_state))) for r in map(lambda e: replay(out, e), picks))


def study(task: str, args) -> list[tuple]:
    body = "aloha" if TASKS.get(task).arms == 2 else "panda"
    base = [f"task={task}", f"embodiment={body}", f"n={args.n}", f"workers={args.workers}", f"seed={args.seed}"]
    tmp = Path(args.dir) / task if args.dir else Path(tempfile.mkdtemp(prefix=f"synth-physstep-{task}-"))
    res = {}
    for name in args.settings:
        out = tmp / name.replace("/", "_")
        ov = overrides(name, 20.0)
        dt, prog = run_generate(out, base + ov)  # a dataset left in --dir is resumed: its rate then covers the rest
        r = read(out)
        r.update(dt=dt, eps=int(prog["episodes"]), replay=replay_error(out, int(prog["episodes"]), args.replay))
        r["step_ms"] = float(json.loads((out / "meta/synth.json").read_text())["physics"]["timestep"]) * 1000
        res[name] = r
        ok = sum(r["labels"].values()) / len(r["labels"])
        print(f"{task} {name}: {len(r['labels'])} attempts, success {ok:.1%}, {dt:.0f} s", flush=True)
        if not args.dir:
            shutil.rmtree(out, ignore_errors=True)
    ref, two = res[args.settings[0]], res.get("2ms", res[args.settings[0]])
    rows = []
    for name, r in res.items():
        common = sorted(set(ref["labels"]) & set(r["labels"]))
        agree = np.mean([ref["labels"][a] == r["labels"][a] for a in common])
        both = [a for a in common if a in ref["paths"] and a in r["paths"]]
        d = [np.linalg.norm(r["paths"][a] - ref["paths"][a], axis=1) for a in both]
        fin = np.array([x[-1] for x in d]) if d else np.zeros(1)
        path = np.array([x.max() for x in d]) if d else np.zeros(1)
        rate = r["eps"] / r["dt"]
        rows.append(
            (task, body, name, r["step_ms"], len(common), agree, np.mean([r["labels"][a] for a in common]), fin,
             path, r["replay"], rate, rate / (two["eps"] / two["dt"]), r["physics"], two["physics"] / r["physics"])
        )  # fmt: skip
    shutil.rmtree(tmp, ignore_errors=True) if not args.dir else None
    table(rows, args.settings[0])
    return rows


def cpu_seconds(task: str, args) -> None:
    """Physics CPU seconds per attempt under each setting, on the first `args.cpu` episodes written at 2 ms."""
    out = Path(args.dir) / task / "2ms"
    eps = [r for f in sorted((out / "meta/episodes").glob("*/*.parquet")) for r in pq.read_table(f).to_pylist()]
    eps = eps[: args.cpu]
    data = pq.read_table(sorted((out / "data").glob("*/*.parquet"))[0], columns=["action"])
    acts = np.asarray(data["action"].to_pylist(), np.float64)
    body = "aloha" if TASKS.get(task).arms == 2 else "panda"
    cpu: dict[str, list[float]] = {n: [] for n in args.settings}
    for _ in range(2):
        for name in args.settings:
            ov = [f"task={task}", f"embodiment={body}", f"seed={args.seed}", *overrides(name, 20)]
            s = settings(compose_config(ov))
            emb, settle, total = load(s.embodiment), round(s.task.settle * 20), 0.0
            for e in eps:
                meta = json.loads(e["synth/meta"])
                scene, _ = apply(list(s.randomizers), s.task.scene(), args.seed, meta["attempt"])
                m = build(scene, emb, slots(s.task.scene(), list(s.randomizers)), (128, 128), 20.0, s.physics)
                a = acts[e["dataset_from_index"] : e["dataset_to_index"]]
                a = np.vstack([a, np.repeat(a[-1:], settle, 0)])
                c = controls(a[None], emb.start[None], substeps(m, 20.0), emb.scale)
                t = time.process_time()
                rollout.rollout(m, mujoco.MjData(m), np.asarray(meta["initial_state"])[None], c)
                total += time.process_time() - t
            cpu[name].append(total / len(eps))
    ref = np.median(cpu.get("2ms", cpu[args.settings[0]]))
    print(f"\n{task}: physics CPU s/attempt over {len(eps)} episodes (median of 2 alternated rounds)")
    print("| setting | CPU s/attempt | speed vs 2 ms |\n|---|---|---|")
    for name, v in cpu.items():
        print(f"| {name} | {np.median(v):.4f} | {ref / np.median(v):.2f}x |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="*", default=TASKS.names())
    ap.add_argument("--n", type=int, default=200, help="successful episodes per setting")
    ap.add_argument("--settings", nargs="*", default=SETTINGS, help="the first is the reference")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replay", type=int, default=10, help="written episodes replayed per setting")
    ap.add_argument("--dir", default="", help="keep the datasets in <dir>/<task>/<setting> (and resume them)")
    ap.add_argument("--cpu", type=int, default=0, help="only time the physics in CPU s on K episodes of --dir")
    args = ap.parse_args()
    if args.cpu:
        for t in args.tasks:
            cpu_seconds(t, args)
        return
    rows = [row for t in args.tasks for row in study(t, args)]
    print("\nall tasks:")
    table(rows, args.settings[0])


def table(rows: list[tuple], ref: str) -> None:
    print(
        f"\n| task | body | setting | step [ms] | attempts | agree with {ref} | success "
        "| final diff median / p95 [m] | path diff median / p95 [m] | replay max err | traj/s | vs 2 ms "
        "| physics s/attempt | physics speed vs 2 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for t, b, name, ms, n, agree, ok, fin, path, rep, rate, rel, phys, prel in rows:
        print(
            f"| {t} | {b} | {name} | {ms:.3g} | {n} | {agree:.2%} | {ok:.1%} "
            f"| {np.median(fin):.4f} / {np.percentile(fin, 95):.4f} | {np.median(path):.4f} / "
            f"{np.percentile(path, 95):.4f} | {rep:.1e} | {rate:.1f} | {rel:.2f} | {phys:.3f} | {prel:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
