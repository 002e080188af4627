"""`synth eval`: closed-loop success of a policy per variation axis, with the scripted expert on the same cells;
or (data=<dir>) open-loop action error per horizon step on any LeRobot v3.0 dataset.

Closed loop: W worlds in lockstep on MuJoCo (CPU). Every `execute` control periods the policy sees each
world's cameras and state and returns a chunk; the chunk's first `execute` actions are applied with the same
first-order hold as generation. Success is the task's physics predicate (Task.outcome), never the policy's,
read as generation reads it: a world stops acting once its state looks done (or its time runs out), holds its
last target for the task's settle time, and the final settled frame is judged.
With eval_backend=pybullet the in-distribution scenes also run on PyBullet (the same compiled scenes rebuilt
there, synth.backends.pybullet; frames rendered by MuJoCo from PyBullet's state), policy and expert alike,
reported as the axis "backend: pybullet"."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import mujoco
import numpy as np

from synth.backends.base import Backend, World, world
from synth.backends.base import make as make_backend
from synth.embodiment import load as load_embodiment
from synth.errors import ConfigError, closest
from synth.execute import substeps
from synth.keys import key
from synth.pipeline import Attempt, Worker
from synth.registry import RANDOMIZERS, TASKS
from synth.tabletop.compiler import Layout, initial_qpos
from synth.task import Frames
from synth.vla import checkpoint, report
from synth.vla.axes import AXES, Axis, randomizer_nodes
from synth.vla.data import NEAR
from synth.vla.policy import Policy

RESERVED_SEED = 7_000_003
"""The headline seed: evaluation scenes nobody looks at while choosing a recipe. `synth eval reserved=true` uses
it (never by default), records each use in <run>/eval/reserved.jsonl and the report, wants at least
HEADLINE_EPISODES per cell, and warns when the run was already evaluated on it: one look per recipe. It differs
from the seeds recipes were chosen on (1000000, the default, and 2000000)."""
HEADLINE_EPISODES = 50  # episodes per cell a reserved-seed (headline) evaluation needs: intervals of ~+/-12 pts
BACKENDS = ("mujoco", "pybullet")  # cross-engine evaluation: pybullet adds the axis "backend: pybullet"


@dataclass(frozen=True)
class EvalConfig:
    """Keys of `synth eval` (each declared once: default, help, check; `synth eval --help` prints them)."""

    policy: str = key("", "run (or checkpoint) directory written by `synth train` (required)")
    task: str = key("", "task evaluated (default: the task of the policy's training data)")
    episodes: int = key(50, "episodes per axis", low=1)
    axes: tuple[str, ...] = key((), "variation axes (default: all; `synth axes` lists them)", choices=tuple(AXES))
    execute: int = key(8, "[control periods] chunk actions applied before the policy is asked again", low=1)
    ensemble: float = key(
        0.01, "temporal ensemble: ask every step, weight exp(-ensemble*i); 0: open-loop chunks", low=0
    )
    sampling_steps: int = key(10, "Euler steps of the flow", low=1)
    temperature: float = key(0.0, "std of the flow's starting noise: 0 deterministic, 1 sampled", low=0)
    seed: int = key(1_000_000, "evaluation seed; must differ from the training data's seed")
    reserved: bool = key(False, "headline numbers: the reserved seed, >= 50 episodes per cell, each use recorded")
    batch: int = key(25, "worlds run in lockstep", low=1)
    max_seconds: float | str = key(
        "auto", "[s] episode time limit; auto (or 0): 1.5x the longest expert plan, >= 6 s", names=("auto",), low=0
    )
    expert: bool = key(True, "also run the scripted expert on the same cells (the upper bound)")
    name: str = key("default", "report folder: <run>/eval/<name>/")
    data: str = key("", "open-loop mode: action error on this LeRobot v3.0 dataset")
    frames: int = key(512, "open-loop mode: frames sampled from data=", low=1)
    eval_backend: str = key(
        "mujoco", "mujoco, or pybullet: also in-distribution on PyBullet (axis 'backend: pybullet')", choices=BACKENDS
    )
    device: str = key("cpu", "torch device of the policy: cpu, cuda or cuda:<i>")


def evaluate(cfg: EvalConfig) -> dict:
    if not cfg.policy:
        raise ConfigError("policy= is required: synth eval policy=runs/pp")
    if cfg.eval_backend not in BACKENDS:
        raise ConfigError(f"eval_backend={cfg.eval_backend}: not a backend{closest(cfg.eval_backend, list(BACKENDS))}")
    if cfg.eval_backend == "pybullet":
        from synth.backends.pybullet import require_pybullet

        require_pybullet()
    pol = Policy(cfg.policy, cfg.device)
    if cfg.data:
        from synth.vla.openloop import open_loop

        return open_loop(pol, cfg)
    gen = next((g for g in pol.meta["generate"] if g), None)
    if gen is None:
        raise ConfigError("closed-loop eval needs a policy trained on synth data; give data=<dir> for open-loop error")
    unknown = [a for a in cfg.axes if a not in AXES]
    if unknown:
        raise ConfigError(f"axes: unknown '{unknown[0]}'{closest(unknown[0], list(AXES))}")
    if cfg.episodes <= 0 or cfg.execute <= 0 or cfg.batch <= 0:
        raise ConfigError("episodes, execute and batch must be positive")
    if cfg.ensemble < 0:
        raise ConfigError(f"ensemble={cfg.ensemble}: give 0 (off) or a positive decay rate such as 0.01")
    if cfg.temperature < 0:
        raise ConfigError(f"temperature={cfg.temperature}: give a noise scale >= 0 (1: sampled, 0: deterministic)")
    if cfg.reserved:
        if cfg.seed != EvalConfig.seed:
            raise ConfigError(f"reserved=true evaluates on seed {RESERVED_SEED}: drop seed={cfg.seed}")
        if cfg.episodes < HEADLINE_EPISODES:
            raise ConfigError(f"reserved=true is for headline numbers: give episodes>={HEADLINE_EPISODES}")
        cfg = replace(cfg, seed=RESERVED_SEED)
    used = training_seeds(pol)
    if cfg.seed in used:
        raise ConfigError(f"seed={cfg.seed} is a training data seed (of {sorted(used)}); evaluate on another seed")
    task = cfg.task or gen["task"]
    if task != gen["task"]:
        raise ConfigError(f"task={task}: this policy was trained on {gen['task']} only")
    out = checkpoint.run_of(pol.dir) / "eval" / cfg.name
    cells: dict[str, dict] = {}
    rep = {
        "policy": str(pol.dir),
        "task": task,
        "episodes": cfg.episodes,
        "seed": cfg.seed,
        "execute": cfg.execute,
        "ensemble": cfg.ensemble,
        "sampling_steps": cfg.sampling_steps,
        "temperature": cfg.temperature,
        "backend": cfg.eval_backend,
        "config": asdict(cfg),
        "axes": cells,
    }
    names = [(n, "mujoco") for n in cfg.axes or tuple(AXES)]
    if cfg.eval_backend != "mujoco":  # the engine as its own axis: in-distribution scenes, another physics
        names.append(("in_distribution", cfg.eval_backend))
    if cfg.reserved:
        rep["reserved"] = reserved_use(checkpoint.run_of(pol.dir), cfg, out)
    for axis, backend in names:
        name = axis if backend == "mujoco" else f"backend: {backend}"
        t0 = time.perf_counter()
        c = run_axis(pol, gen, AXES[axis], cfg, backend)
        c["seconds"] = time.perf_counter() - t0
        cells[name] = c
        print(
            f"{name:>16}: {100 * c['rate']:5.1f}%  (expert {100 * c.get('expert_rate', float('nan')):.0f}%)"
            f"  [{c['seconds']:.0f}s]",
            flush=True,
        )
    report.write(out, rep, checkpoint.run_of(pol.dir))
    print(report.markdown(rep))
    print(f"report: {out / 'report.md'}")
    return rep


def reserved_use(run: Path, cfg: EvalConfig, out: Path) -> dict:
    """Record this evaluation on RESERVED_SEED in <run>/eval/reserved.jsonl (one JSON line per use) and return the
    record (with `earlier`, the uses before it); warn in one line when there were any."""
    ledger = run / "eval" / "reserved.jsonl"
    earlier = [json.loads(x) for x in ledger.read_text().splitlines() if x.strip()] if ledger.is_file() else []
    if earlier:
        where = ", ".join(f"eval/{e['name']} ({e['time']})" for e in earlier)
        print(f"warning: {run} was already evaluated on the reserved seed ({where}): not a first look", flush=True)
    rec = {
        "seed": RESERVED_SEED,
        "name": cfg.name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "episodes": cfg.episodes,
        "axes": list(cfg.axes),
        "report": str(out / "report.json"),
    }
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with ledger.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    return {**rec, "earlier": len(earlier)}


def training_seeds(pol: Policy) -> set[int]:
    """The root seeds of every synth dataset the policy was trained on (its own sources, and those of the run
    it was initialised from, state["init"]): evaluation scenes must come from other seeds."""
    gens = [g for g in pol.meta.get("generate", []) if g] + [
        g for g in (pol.meta.get("init") or {}).get("generate", []) if g
    ]
    return {int(g["config"]["seed"]) for g in gens}


def make_worker(pol: Policy, gen: dict, axis: Axis, cfg: EvalConfig, backend: str = "mujoco") -> tuple[Worker, float]:
    tc = gen["config"]
    nodes = randomizer_nodes(tc.get("randomizers") or {}, axis)
    rands = [RANDOMIZERS.build(n, node) for n, node in nodes.items()]
    hz = float(tc["control_hz"]) * axis.control_hz_factor
    emb = load_embodiment(tc["embodiment"]["name"])
    res = tuple(tc["resolution"]) if tc.get("cameras") else (pol.cfg.resolution, pol.cfg.resolution)
    w = Worker(
        TASKS.build(gen["task"], tc["task"]),
        rands,
        emb,
        cfg.seed,
        hz,
        pol.cameras,
        res,
        held_out=axis.held_out,
        batch=16,
        backend=_physics(backend),
    )
    return w, hz


def _physics(backend: str) -> Backend | None:
    """The expert's rollout backend (None: the Worker's own MuJoCo on the CPU)."""
    return None if backend == "mujoco" else make_backend(backend)


def run_axis(pol: Policy, gen: dict, axis: Axis, cfg: EvalConfig, backend: str = "mujoco") -> dict:
    """One cell: the policy (and the expert) on `cfg.episodes` scenes of this axis, on physics `backend`."""
    worker, hz = make_worker(pol, gen, axis, cfg, backend)
    atts = [worker.prepare(i) for i in range(cfg.episodes)]
    expert = None
    if cfg.expert:
        planned = [a for a in atts if a.plan is not None]
        if planned:
            worker.execute(planned)
        expert = sum(a.plan is not None and not a.failure for a in atts)
    longest = max([len(a.plan.actions) for a in atts if a.plan is not None] + [0]) / hz
    limit = (0.0 if cfg.max_seconds == "auto" else float(cfg.max_seconds)) or max(6.0, 1.5 * longest)
    reasons: Counter = Counter()
    wins = 0
    misses: list[tuple[bool, float, float, float, int]] = []
    results: list[str] = []
    for k in range(0, len(atts), cfg.batch):
        for r, miss, height, off, closes in rollout(pol, worker, atts[k : k + cfg.batch], hz, limit, cfg, backend):
            wins += r == ""
            misses.append((r == "", miss, height, off, closes))
            results.append(r)
            if r:
                reasons[r] += 1
    c = report.cell(wins, len(atts), expert, len(atts) if cfg.expert else None, dict(reasons), misses)
    c["results"] = results  # per episode ('' won, else the failure reason), in attempt order
    c["draws"] = [a.draws for a in atts]  # per episode, what its randomizers drew (what `synth generate focus=` reads)
    c["overrides"] = {name: sorted(node) for name, node in axis.randomizers.items()}  # keys this axis draws itself
    return c


def rollout(
    pol: Policy, worker: Worker, atts: list[Attempt], hz: float, limit: float, cfg: EvalConfig, backend: str = "mujoco"
) -> list[tuple[str, float, float, float, int]]:
    """Closed-loop episodes of W worlds on physics `backend`; returns per world ('' on success or the failure
    reason, the close miss [m] and the close height [m]: see close_offset, the approach offset [m]: see
    approach_offset, and how many times the gripper was told to close: more than once is a retried grasp)."""
    emb = worker.emb
    models = [a.model for a in atts]
    assert all(m is not None for m in models)
    lay = Layout(models[0], emb)  # type: ignore[arg-type]
    worlds: list[World] = []
    try:
        for m in models:
            worlds.append(world(backend, m, initial_qpos(m, emb, lay)))  # type: ignore[arg-type]
        return _loop(pol, worker, atts, worlds, lay, hz, limit, cfg)
    finally:
        for wd in worlds:
            wd.close()


def _loop(
    pol: Policy,
    worker: Worker,
    atts: list[Attempt],
    worlds: list[World],
    lay: Layout,
    hz: float,
    limit: float,
    cfg: EvalConfig,
) -> list[tuple[str, float, float, float, int]]:
    """The policy's closed loop over `worlds`, each at rest with every arm at home and its gripper open."""
    emb, task = worker.emb, worker.task
    models = [a.model for a in atts]
    start = emb.start
    lo, hi = np.zeros(len(start)), np.array(start, float)  # per column: a gripper 0 .. its stroke, joints' limits
    lo[emb.arm_columns], hi[emb.arm_columns] = emb.lower, emb.upper
    W, T, n_sub = len(atts), round(limit * hz), substeps(models[0], hz)  # type: ignore[arg-type]
    settle = round(task.settle * hz)  # generation's settle time: the last target held this long, then judged
    qpos = np.zeros((W, T + settle + 1, models[0].nq))  # type: ignore[union-attr]
    qvel = np.zeros((W, T + settle + 1, models[0].nv))  # type: ignore[union-attr]
    qpos[:, 0] = [wd.qpos for wd in worlds]
    qvel[:, 0] = [wd.qvel for wd in worlds]
    prev = np.tile(start, (W, 1))
    card, convention = _card(pol, emb.name)
    frac = (np.arange(1, n_sub + 1) / n_sub)[:, None]
    done = np.zeros(W, bool)
    result = ["timeout"] * W
    chunk = np.zeros((W, pol.horizon, len(start)))
    every = 1 if cfg.ensemble > 0 else cfg.execute  # the policy is asked every `every` steps
    issued: list[tuple[int, np.ndarray]] = []  # (step asked, chunk) for the ensemble
    grip = emb.gripper_columns[0]
    closed = np.full(W, -1)  # the step at which the first arm's gripper was first told to close, -1: never
    closes, shut = np.zeros(W, int), np.zeros(W, bool)  # how often it was told to close; told to close now
    ended = np.full(W, -1)  # the step at which a world stopped acting (it looked done, or time ran out)
    for t in range(T + settle + 1):
        acting = ended < 0
        if t % every == 0 and t < T:  # a world that looks done stops acting: its last target is held
            for w in np.flatnonzero(acting & (t > 0)):
                if task.outcome(atts[w].scene, _frames(qpos[w], qvel[w], t), lay) == "":
                    ended[w] = t
        ended[acting & (t >= T)] = T
        for w in np.flatnonzero(~done & (ended >= 0) & (t >= ended + settle)):  # judged as generation judges
            done[w], result[w] = True, task.outcome(atts[w].scene, _frames(qpos[w], qvel[w], t), lay)
        acting = ended < 0
        if done.all() or t == T + settle:
            break
        if acting.any() and t % every == 0:
            chunk = _ask(pol, card, worker, atts, qpos[:, t], lay, hz, cfg, t)
            issued = [(t0, c) for t0, c in issued if t - t0 < pol.horizon] + [(t, chunk)]
        if cfg.ensemble > 0 and acting.any():  # oldest first: weight exp(-m * i)
            w_i = np.exp(-cfg.ensemble * np.arange(len(issued)))
            a = sum(w * c[:, t - t0] for w, (t0, c) in zip(w_i, issued, strict=True)) / w_i.sum()
        else:
            a = chunk[:, t % cfg.execute].copy()
        if convention == "joint_delta":  # a delta on the joints measured now
            a[:, emb.arm_columns] += qpos[:, t][:, lay.arm_qadr]
        a = np.where(acting[:, None], np.clip(a, lo, hi), prev)  # a stopped world holds its last target
        now = a[:, grip] < 0.5 * start[grip]
        closed[(closed < 0) & now & acting] = t
        closes += now & ~shut & acting
        shut = now
        ctrl = (prev[:, None] + frac[None] * (a - prev)[:, None]) * worker.scale  # (W, n_sub, A)
        for w in np.flatnonzero(~done):
            for k in range(n_sub):
                worlds[w].step(ctrl[w, k])
            qpos[w, t + 1], qvel[w, t + 1] = worlds[w].qpos, worlds[w].qvel
        prev = a
    nan = (float("nan"), float("nan"))
    at = [close_offset(models[w], qpos[w, c], lay) if c >= 0 else nan for w, c in enumerate(closed)]  # type: ignore[arg-type]
    upto = np.where(closed >= 0, closed, ended)  # the approach: the steps before the first close
    off = [approach_offset(models[w], qpos[w, : upto[w] + 1], lay) for w in range(W)]  # type: ignore[arg-type]
    return [(r, m, h, o, n) for r, (m, h), o, n in zip(result, at, off, closes.tolist(), strict=True)]


def _card(pol: Policy, body: str) -> tuple[dict, str]:
    """The policy's dataset card for embodiment `body` (else its first) and its action convention; a convention
    closed-loop eval cannot run is a ConfigError."""
    card = pol.cards.get(body) or next(iter(pol.cards.values()))
    convention = card.get("action", {}).get("convention", "joint_pos")
    if convention not in ("joint_pos", "joint_delta"):
        raise ConfigError(
            f"the policy predicts {convention} actions; closed-loop eval runs joint_pos and joint_delta policies "
            "(train on data generated with action=joint_pos or action=joint_delta)"
        )
    return card, convention


def _ask(
    pol: Policy,
    card: dict,
    worker: Worker,
    atts: list[Attempt],
    qpos: np.ndarray,
    lay: Layout,
    hz: float,
    cfg: EvalConfig,
    t: int,
) -> np.ndarray:
    """(W, horizon, A) the policy's next action chunk at step t, from every world's state and, if the policy has
    cameras, their images rendered at `qpos` (W, nq)."""
    from synth.render import render

    state = lay.state(qpos)  # every arm's joints and gripper width
    images = None
    if pol.cameras:
        r, c = worker.resolution
        per = [render(a.model, qpos[w][None], list(pol.cameras), r, c) for w, a in enumerate(atts)]  # type: ignore[arg-type]
        images = {cam: np.concatenate([p[cam] for p in per]) for cam in pol.cameras}
    return pol.act(
        card,
        [a.instruction for a in atts],
        state,
        images,
        hz,
        cfg.sampling_steps,
        seed=cfg.seed + t,
        temperature=cfg.temperature,
    )


def _frames(qpos: np.ndarray, qvel: np.ndarray, t: int) -> Frames:
    """One world's frames 0..t (qpos (F, nq), qvel (F, nv) with F > t): what the task's predicate reads."""
    return Frames(qpos[: t + 1], qvel[: t + 1], np.zeros((t + 1, 0)))


APPROACH = (0.03, 0.15)  # [m] TCP heights above the object's centre that approach_offset reads (and, sideways,
#                            within data.NEAR: where the hand is coming down on it)


def hand_from_object(model: mujoco.MjModel, qpos: np.ndarray, lay: Layout) -> np.ndarray:
    """(T, 3) [m] the first arm's TCP (between the fingertips) minus the task object's centre in states qpos (T, nq)."""
    d = mujoco.MjData(model)
    a, site = int(lay.obj_qadr[0]), lay.arms[0].tcp
    out = np.empty((len(qpos), 3))
    for i, q in enumerate(qpos):
        d.qpos[:] = q
        mujoco.mj_kinematics(model, d)
        out[i] = d.site(site).xpos - q[a : a + 3]
    return out


def approach_offset(model: mujoco.MjModel, qpos: np.ndarray, lay: Layout) -> float:
    """[m] the median horizontal distance from the first arm's TCP to the task object's centre over the states
    qpos (T, nq) in which the TCP is APPROACH above the object and within NEAR of it horizontally (NaN when there
    are none). Over the steps before the first close, it says how far off the object the hand comes down: the
    expert comes down right above it, and a policy whose closed loop strays from the expert's states further than
    its training data did comes down centimetres off."""
    rel = hand_from_object(model, qpos, lay)
    h = np.linalg.norm(rel[:, :2], axis=1)
    got = h[(rel[:, 2] >= APPROACH[0]) & (rel[:, 2] <= APPROACH[1]) & (h < NEAR)]
    return float(np.median(got)) if len(got) else float("nan")


def close_offset(model: mujoco.MjModel, qpos: np.ndarray, lay: Layout) -> tuple[float, float]:
    """[m] the horizontal distance from the first arm's TCP (between the fingertips) to the task object's centre
    in state `qpos` (nq,) (the close miss), and the TCP's height above that centre (the close height): taken
    when the policy first tells the gripper to close, they say by how much a failed grasp missed, sideways and
    in height (the expert's are ~0: its TCP closes at the object's centre)."""
    rel = hand_from_object(model, qpos[None], lay)[0]
    return float(np.linalg.norm(rel[:2])), float(rel[2])


def load_report(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
