"""`synth eval`: closed-loop success of a policy per variation axis, with the scripted expert on the same cells;
or (data=<dir>) open-loop action error per horizon step on any LeRobot v3.0 dataset.

Per axis, a cell: its scenes prepared (and the expert run on them) by a generation Worker, then the policy's
closed loop on them (synth.vla.closed_loop), batch worlds at a time; the report gathers the cells.
With eval_backend=pybullet the in-distribution scenes also run on PyBullet (the same compiled scenes rebuilt
there, synth.backends.pybullet; frames rendered by MuJoCo from PyBullet's state), policy and expert alike,
reported as the axis "backend: pybullet"."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from synth.backends.base import Backend
from synth.backends.base import make as make_backend
from synth.embodiment import load as load_embodiment
from synth.errors import ConfigError, closest
from synth.keys import key
from synth.pipeline import Worker
from synth.registry import RANDOMIZERS, TASKS
from synth.vla import checkpoint, report
from synth.vla.axes import AXES, Axis, first_attempt, randomizer_nodes
from synth.vla.closed_loop import rollout
from synth.vla.eval_cells import Cells, settings
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
    done = Cells(out, settings(cfg, pol.dir))  # an interrupted eval of the same settings resumes
    if cfg.reserved:
        resumed = bool(done.done) and not (out / "report.json").is_file()  # an interrupted look, not a second
        rep["reserved"] = reserved_use(checkpoint.run_of(pol.dir), cfg, out, resumed)
    for axis, backend in names:
        name = axis if backend == "mujoco" else f"backend: {backend}"
        c = done.done.get(name)
        if c is None:
            t0 = time.perf_counter()
            c = run_axis(pol, gen, AXES[axis], cfg, backend, first_attempt(axis))
            c["seconds"] = time.perf_counter() - t0
            done.save(name, c)
        cells[name] = c
        print(
            f"{name:>16}: {100 * c['rate']:5.1f}%  (expert {100 * c.get('expert_rate', float('nan')):.0f}%)"
            f"  [{c['seconds']:.0f}s{', done before' if name in done.done else ''}]",
            flush=True,
        )
    report.write(out, rep, checkpoint.run_of(pol.dir))
    print(report.markdown(rep))
    print(f"report: {out / 'report.md'}")
    return rep


def reserved_use(run: Path, cfg: EvalConfig, out: Path, resumed: bool = False) -> dict:
    """Record this evaluation on RESERVED_SEED in <run>/eval/reserved.jsonl (one JSON line per use) and return the
    record (with `earlier`, the uses before it); warn in one line when there were any. An interrupted evaluation
    resumed (same name, same settings) is the same look: its record stands, nothing is added."""
    ledger = run / "eval" / "reserved.jsonl"
    earlier = [json.loads(x) for x in ledger.read_text().splitlines() if x.strip()] if ledger.is_file() else []
    mine = [i for i, e in enumerate(earlier) if e["name"] == cfg.name]
    if resumed and mine:
        return {**earlier[mine[-1]], "earlier": mine[-1], "resumed": True}
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


def run_axis(pol: Policy, gen: dict, axis: Axis, cfg: EvalConfig, backend: str = "mujoco", first: int = 0) -> dict:
    """One cell: the policy (and the expert) on `cfg.episodes` scenes of this axis (attempts `first` on of the eval
    seed: synth.vla.axes.first_attempt), on physics `backend`."""
    worker, hz = make_worker(pol, gen, axis, cfg, backend)
    atts = [worker.prepare(first + i) for i in range(cfg.episodes)]
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
    c["attempts"] = [first, first + len(atts)]  # the scenes: attempts first .. first + episodes - 1 of the eval seed
    c["results"] = results  # per episode ('' won, else the failure reason), in attempt order
    c["draws"] = [a.draws for a in atts]  # per episode, what its randomizers drew (what `synth generate focus=` reads)
    c["overrides"] = {name: sorted(node) for name, node in axis.randomizers.items()}  # keys this axis draws itself
    return c


def load_report(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())
