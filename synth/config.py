"""`synth generate` configuration: Hydra composes it; `Settings` is the checked, typed result."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from synth import embodiment
from synth.actions import CONVENTIONS
from synth.backends.base import require
from synth.batched_plans import PLANNERS
from synth.batched_plans import resolve as resolve_planner
from synth.errors import ConfigError, closest
from synth.keys import check_value, key, suggest
from synth.physics import INTEGRATORS, ITERATIONS, TIMESTEP, TOLERANCE, Physics, largest_step, resolve
from synth.registry import RANDOMIZERS, TASKS, load_plugins


def _count(value: Any) -> int:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"n={value!r} is not a number; give a count such as n=1000 or n=1e6") from None
    if not math.isfinite(x) or x < 1 or x != int(x):
        raise ConfigError(f"n={value!r} must be a whole number of episodes >= 1, e.g. n=1000 or n=1e6")
    return int(x)


def _workers(w: Any) -> int:
    if w == "auto":
        return os.cpu_count() or 1
    if isinstance(w, int) and w >= 1:
        return w
    raise ConfigError(f"workers={w!r}: give a number of processes >= 1 or workers=auto")


MAX_RESOLUTION = 4096  # [px] per side: beyond it MuJoCo's offscreen buffer fails (mujoco.FatalError) or memory runs out


def _resolution(res: Any) -> tuple[int, int]:
    if len(res) != 2 or min(res) < 16:
        raise ConfigError(f"resolution={res}: give [height,width], each >= 16")
    if max(res) > MAX_RESOLUTION:
        raise ConfigError(
            f"resolution={res}: each side at most {MAX_RESOLUTION} px (the offscreen render buffer's limit); "
            "e.g. resolution=[224,224]"
        )
    return int(res[0]), int(res[1])


def _seed(seed: Any) -> int:
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed={seed!r}: give a whole number >= 0 (numpy seeds are non-negative), e.g. seed=0")
    return seed


def _control_hz(value: Any) -> float:
    hz = float(value)
    if not 0 < hz <= 500:
        raise ConfigError(f"control_hz={hz}: give a control rate in (0, 500] Hz, e.g. 5, 15, 20 or 30")
    return hz


def _shard(shard: Any) -> Any:
    if shard != "auto" and (not isinstance(shard, int) or shard < 1):
        raise ConfigError(f"shard={shard!r}: give attempts per shard >= 1 or shard=auto")
    return shard


def _counterfactuals(cf: Any) -> int:
    if not isinstance(cf, int) or cf < 1:
        raise ConfigError(f"counterfactuals={cf!r}: give attempts per scene >= 1 (1: off, 2: pairs)")
    return cf


def _backend(name: Any) -> str:
    require(str(name))
    return str(name)


@dataclass
class PhysicsConfig:
    """`physics.*` keys (synth.physics): what the MjModel is stepped with."""

    timestep: Any = key("auto", "[s] physics step dividing the control period; auto: the task's (5 ms pick_place)")
    integrator: str = key("implicitfast", "implicitfast, implicit, euler or rk4", choices=tuple(INTEGRATORS))
    iterations: int = key(ITERATIONS, "constraint solver iterations", low=1)
    tolerance: float = key(TOLERANCE, "constraint solver tolerance", low=0)


@dataclass
class GenerateConfig:
    """Keys of `synth generate`, each declared once (default, help, check); Hydra composes them with the plugins'
    groups (task, embodiment, randomizers), `settings` checks them, `synth generate --help` prints them."""

    task: Any = key(MISSING, "what is demonstrated; its task.<key>= settings: `synth tasks <name>`")
    embodiment: Any = key(MISSING, "the robot (`synth embodiments`)")
    randomizers: Any = key(
        {}, "randomizers=[a,b]; their randomizers.<name>.<key>= settings: `synth randomizers <name>`"
    )
    n: Any = key(100, "successful episodes to write; n=1e6 works as typed", check=_count)
    out: str = key("", "dataset directory (empty: data/<task>)", check=str)
    seed: int = key(0, "root seed >= 0: episode i depends only on (seed, i)", check=_seed)
    workers: Any = key("auto", "processes; auto: all cores", check=_workers)
    cameras: list[str] = key([], "cameras rendered: [] state only, or e.g. [front,wrist]", check=tuple)
    resolution: list[int] = key([128, 128], "[px] [height,width] of rendered frames, each >= 16", check=_resolution)
    control_hz: float = key(20.0, "[Hz] control and frame rate, in (0, 500]", check=_control_hz)
    action: str = key("joint_pos", "action written: " + ", ".join(CONVENTIONS), choices=CONVENTIONS, check=str)
    shard: Any = key("auto", "attempts per shard (unit of work, files, resuming); auto: from n", check=_shard)
    batch: int = key(16, "worlds stepped together by the physics (mujoco_warp: e.g. 1024)", low=1, check=int)
    overwrite: bool = key(False, "replace an existing dataset made with another config", check=bool)
    held_out: bool = key(False, "write the held-out instruction paraphrases (evaluation sets)", check=bool)
    codec: str = key("h264", "video codec: h264 or av1", choices=("h264", "av1"), check=str)
    progress: bool = key(True, "show the progress bar", check=bool)
    mode: str = key(
        "physics",
        "physics (simulated, judged) or kinematic (planned and checked only, ~100x faster)",
        choices=("physics", "kinematic"),
        check=str,
    )
    counterfactuals: int = key(1, "k > 1: each scene again about up to k-1 other objects", check=_counterfactuals)
    backend: str = key("mujoco", "physics engine: mujoco (reference), mujoco_warp or pybullet", check=_backend)
    focus: str = key("", "an eval report.json: draw more scenes where that policy failed (mode=physics)", check=str)
    executor: str = key("local", "where shards run: local (a process pool) or ray (Ray tasks, one machine or cluster)")
    address: str = key("", "executor=ray: the cluster to join (default RAY_ADDRESS, else a local Ray)")
    transfer: str = key("object", "executor=ray: staged shards reach the head by object (Ray) or path (shared out=)")
    part: str = key("", "i/K: only the i-th of K disjoint slices of the attempts (then `synth merge`)")
    physics: PhysicsConfig = key(PhysicsConfig(), "the physics step and solver: physics.<key>= below")
    planner: str = key(
        "auto",
        "physics mode's plans: batched (W at once, OMPL fallback), per_attempt (version 2's), auto: batched if it can",
        choices=PLANNERS,
        check=str,
    )


PLUGIN_KEYS = ("task", "embodiment", "randomizers")  # Hydra groups: built by the registry, not checked per key


@dataclass(frozen=True)
class Settings:
    """A checked generate config: plugins built, numbers typed."""

    task: Any
    embodiment: str
    randomizers: tuple
    n: int
    out: str
    seed: int
    workers: int
    cameras: tuple[str, ...]
    resolution: tuple[int, int]
    control_hz: float
    action: str
    shard: int
    batch: int
    overwrite: bool
    held_out: bool
    codec: str
    progress: bool
    raw: dict  # the composed config, for the dataset's record
    shard_auto: bool = False  # shard was "auto": an existing dataset's shard size is adopted
    mode: str = "physics"  # physics | kinematic
    counterfactuals: int = 1
    backend: str = "mujoco"  # physics engine (synth.backends.base.BACKENDS)
    physics: Physics | None = None  # resolved physics.* keys; None: Physics(timestep_for(control_hz))
    focus: Any = None  # synth.focus.Focus of focus=, or None
    executor: str = "local"  # local | ray (synth.executors)
    address: str = ""  # executor=ray: cluster address ("" = RAY_ADDRESS or a local Ray)
    transfer: str = "object"  # executor=ray: object | path
    part: tuple[int, int] | None = None  # (i, K): this run's slice of the attempts (synth.parts)
    planner: str = "per_attempt"  # resolved planner=: batched | per_attempt (synth.batched_plans)

    def attempts_of(self, k: int) -> range:
        """Attempt indices of shard k; with part=i/K, this dataset's shard k is the whole run's shard k*K+i."""
        g = k * self.part[1] + self.part[0] if self.part else k
        return range(g * self.shard, (g + 1) * self.shard)

    def fingerprint(self) -> dict:
        """What decides the episodes' content; a dataset resumes only under the same fingerprint."""
        keep = (
            "task",
            "embodiment",
            "randomizers",
            "seed",
            "cameras",
            "resolution",
            "control_hz",
            "shard",
            "held_out",
            "codec",
        )
        fp = {"task_name": self.task.name, **{k: self.raw[k] for k in keep}}
        if self.action != "joint_pos":  # datasets written before `action=` existed keep their fingerprint
            fp["action"] = self.action
        if self.mode != "physics":  # likewise for datasets written before `mode=` existed
            fp["mode"] = self.mode
        if self.counterfactuals != 1:
            fp["counterfactuals"] = self.counterfactuals
        if self.backend != "mujoco":  # likewise for `backend=`: another engine judges other episodes successful
            fp["backend"] = self.backend
        if self.mode == "physics" and self.physics and self.physics != Physics(largest_step(self.control_hz, TIMESTEP)):
            fp["physics"] = self.physics.record()  # likewise: datasets stepped before `physics.*` keep theirs
        if self.focus is not None:  # other scenes: the focus file's content decides them
            fp["focus"] = self.focus.sha256
        if self.mode == "physics" and self.planner == "batched":  # other plans; per-attempt datasets keep theirs
            fp["planner"] = self.planner
        if self.part:  # a part holds other attempts than the whole run (and than the other parts)
            fp["part"] = f"{self.part[0]}/{self.part[1]}"
        return fp


_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    load_plugins()
    cs = ConfigStore.instance()
    cs.store(name="generate_schema", node=GenerateConfig)
    for name in embodiment.names():
        cs.store(group="embodiment", name=name, node={"name": name})


_GROUPS = {"task": TASKS.names, "embodiment": embodiment.names, "randomizers": RANDOMIZERS.names}


def _check_choices(overrides: list[str]) -> None:
    """Unknown plugin names get our one-line error (with the closest match) before Hydra sees them."""
    for ov in overrides:
        m = re.fullmatch(r"[+~]?(task|embodiment|randomizers)=(.*)", ov)
        if not m:
            continue
        group, value = m.groups()
        names = [v.strip() for v in value.strip("[]").split(",") if v.strip()] if group == "randomizers" else [value]
        options = _GROUPS[group]()
        for name in names:
            if name not in options:
                kind = {"task": "task", "embodiment": "embodiment", "randomizers": "randomizer"}[group]
                raise ConfigError(f"unknown {kind} '{name}'{closest(name, options)}")


def compose_config(overrides: list[str], config_name: str = "generate") -> DictConfig:
    """Hydra composition of the packaged configs with command-line overrides."""
    _register()
    _check_choices(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module="synth.configs", version_base=None):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except (HydraException, OmegaConfBaseException) as e:
        cause = f" ({str(e.__cause__).splitlines()[0]})" if e.__cause__ else ""
        raise ConfigError(f"bad override: {str(e).splitlines()[0]}{cause}; see `synth generate --help`") from None


def settings(cfg: DictConfig) -> Settings:
    """Check every value and build the plugins; raises ConfigError naming the fix."""
    choices = cfg.hydra.runtime.choices
    raw = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(raw, dict)
    raw.pop("hydra")
    task_obj = TASKS.build(choices["task"], raw["task"])
    task_obj.check_embodiment(body := embodiment.load(choices["embodiment"]))
    rands = tuple(RANDOMIZERS.build(name, node) for name, node in (raw.get("randomizers") or {}).items())
    fields = [f for f in dataclasses.fields(GenerateConfig) if f.name not in PLUGIN_KEYS]
    values = {f.name: check_value(f, raw[f.name], quote=True) for f in fields}
    known = [c.name for c in task_obj.scene().cameras] + [f"{m.prefix}wrist" for m in body.mounts]
    for cam in values["cameras"]:
        if cam not in known:
            raise ConfigError(f"unknown camera '{cam}'{closest(cam, known)}; e.g. cameras=[front,wrist]")
    _check_mode(values, task_obj, rands)
    _check_backend(values, task_obj, body, rands)
    shard_auto = values["shard"] == "auto"
    if shard_auto:
        # >= ~16 shards unless n is large; a kinematic shard is cheap per attempt, so more fit in one file
        kinematic = values["mode"] == "kinematic"
        values["shard"] = int(min(2048 if kinematic else 256, max(16, math.ceil(values["n"] * 1.1 / 16))))
    raw["shard"] = values["shard"]
    values["out"] = values["out"] or f"data/{task_obj.name}"
    values["focus"] = _focus(values, rands, task_obj)
    values["executor"], values["address"], values["transfer"], values["part"] = _distribution(values)
    values["physics"] = _physics(values, task_obj)
    values["planner"] = resolve_planner(str(values["planner"]), values["mode"], task_obj, rands)
    return Settings(
        task=task_obj,
        embodiment=choices["embodiment"],
        randomizers=rands,
        raw=raw,
        shard_auto=shard_auto,
        **values,
    )


def _physics(values: dict, task_obj: Any) -> Physics:
    """The physics.* keys resolved for the control rate and the task's largest default step."""
    node = dict(values["physics"] or {})
    if values["mode"] == "kinematic" and node != vars(PhysicsConfig()):
        raise ConfigError("mode=kinematic runs no physics: drop the physics.* keys or use mode=physics")
    return resolve(node, values["control_hz"], task_obj.physics_step)


def _focus(values: dict, rands: tuple, task_obj: Any) -> Any:
    """focus=<report.json> -> synth.focus.Focus (None without focus=)."""
    if not values["focus"]:
        return None
    from synth.focus import load as load_focus

    if values["mode"] != "physics":
        raise ConfigError("focus= draws scenes for mode=physics; drop focus= or use mode=physics")
    focus = load_focus(str(values["focus"]), rands, task_obj.name)
    if not focus.fields:
        print(f"note: focus={values['focus']}: failures alike in every bin of every range; drawn as without it")
    return focus


def _check_mode(values: dict, task_obj: Any, rands: tuple) -> None:
    """mode=kinematic and counterfactuals= against the task and the randomizers."""
    mode, cf = values["mode"], values["counterfactuals"]
    if mode == "kinematic":
        if values["cameras"]:
            raise ConfigError("mode=kinematic renders nothing; drop cameras= or use mode=physics")
        if not task_obj.kinematic:
            able = [n for n in TASKS.names() if TASKS.get(n).kinematic]  # type: ignore[attr-defined]
            what = f"task={task_obj.name}" + (" as configured" if task_obj.name in able else "")
            raise ConfigError(f"mode=kinematic supports task={' or task='.join(able)}, not {what}; use mode=physics")
        refused = [r for r in rands if not r.kinematic]  # each randomizer declares it (synth.registry.randomizer)
        if refused:
            raise ConfigError(
                f"mode=kinematic does not apply randomizers {[r.name for r in refused]} (declared kinematic=False: "
                "they need the executed physics or the physics mode's expert); drop them or use mode=physics"
            )
    if cf > 1 and (task_obj.scene().task_objects != 1 or task_obj.arms != 1 or mode != "physics"):
        raise ConfigError(
            f"counterfactuals={cf} needs a task about one object in mode=physics (pick_place, place_in_container, "
            f"push), not task={task_obj.name} mode={mode}"
        )


def _check_backend(values: dict, task_obj: Any, body: Any, rands: tuple) -> None:
    """Combinations the physics would get silently wrong: each randomizer checks the body (its arm joints) and
    says what of its draws the backend cannot build (Randomizer.check_body, Randomizer.unmapped)."""
    for r in rands:
        r.check_body(body.dof, body.name)
    backend = values["backend"]
    unmapped = sorted({u for r in rands for u in r.unmapped(backend)})
    if unmapped:
        raise ConfigError(f"backend={backend} does not map {unmapped}; drop them or use backend=mujoco")
    if backend != "mujoco" and values["mode"] == "kinematic":
        raise ConfigError(f"mode=kinematic runs no physics: drop backend={backend} or use mode=physics")


def check_keys(overrides: list[str]) -> None:
    """An unknown key, task.<key> or randomizers.<name>.<key> gets 'did you mean' before Hydra sees it."""
    known = [f.name for f in dataclasses.fields(GenerateConfig)] + ["experiment", "hydra"]
    for ov in overrides:
        if "=" not in ov:
            continue
        path = ov.split("=", 1)[0].lstrip("+~").split(".")
        if path[0] not in known:
            raise ConfigError(f"unknown key '{path[0]}'{suggest(path[0], known)}")
        if path[0] == "task" and len(path) == 2:
            given = [o.split("=", 1)[1] for o in overrides if o.lstrip("+~").startswith("task=")]
            name = given[-1] if given else compose_config([]).hydra.runtime.choices["task"]
            _check_field(TASKS.get(name), path[1], f"task.{path[1]}", f"task={name}")
        elif path[0] == "physics" and len(path) == 2:
            _check_field(PhysicsConfig, path[1], f"physics.{path[1]}", "physics")
        elif path[0] == "randomizers" and len(path) == 3:
            _check_field(RANDOMIZERS.get(path[1]), path[2], ".".join(path), f"randomizer {path[1]}")


def _check_field(cls: type, name: str, spelled: str, owner: str) -> None:
    """`spelled` (e.g. task.lfit) must name a field of the plugin class; else the closest, or the keys."""
    import difflib

    fields = [f.name for f in dataclasses.fields(cls)]
    if name not in fields:
        match = difflib.get_close_matches(name, fields, n=1, cutoff=0.5)
        prefix = spelled[: len(spelled) - len(name)]
        hint = f"did you mean '{prefix}{match[0]}'?" if match else "keys: " + ", ".join(fields)
        raise ConfigError(f"unknown key '{spelled}' of {owner}; {hint}")


def _distribution(raw: dict) -> tuple[str, str, str, tuple[int, int] | None]:
    """executor, address, transfer and part, checked."""
    executor, address, transfer = raw.get("executor", "local"), str(raw.get("address") or ""), raw.get("transfer")
    if executor not in ("local", "ray"):
        raise ConfigError(f"executor={executor!r}: choose local (a process pool) or ray")
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError('executor=ray needs Ray: pip install -e ".[ray]" (or pip install "ray>=2.60")') from None
    elif address:
        raise ConfigError(f"address={address} joins a Ray cluster: add executor=ray, or drop address=")
    if transfer not in (None, "object", "path"):
        raise ConfigError(f"transfer={transfer!r}: choose object (through Ray) or path (a shared out=)")
    spec = str(raw.get("part") or "")
    part = None
    if spec:
        m = re.fullmatch(r"(\d+)/(\d+)", spec)
        if not m or not int(m.group(1)) < int(m.group(2)):
            raise ConfigError(f"part={spec!r}: give i/K with 0 <= i < K, e.g. part=0/4 (the first of 4 parts)")
        part = (int(m.group(1)), int(m.group(2)))
    return executor, address, transfer or "object", part
