"""`synth generate` configuration: Hydra composes it; `Settings` is the checked, typed result."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
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
from synth.errors import ConfigError, closest
from synth.physics import ITERATIONS, TIMESTEP, TOLERANCE, Physics, largest_step, resolve
from synth.registry import RANDOMIZERS, TASKS, load_plugins


@dataclass
class PhysicsConfig:
    """`physics.*` keys (synth.physics): what the MjModel is stepped with."""

    timestep: Any = "auto"  # [s]; auto = the task's default rule (largest <= 2 ms dividing the control period)
    integrator: str = "implicitfast"  # implicitfast | implicit | euler | rk4
    iterations: int = ITERATIONS  # constraint solver iterations
    tolerance: float = TOLERANCE  # constraint solver tolerance


@dataclass
class GenerateConfig:
    """Keys of `synth generate` (documented in `synth generate --help`)."""

    task: Any = MISSING
    embodiment: Any = MISSING
    randomizers: Any = field(default_factory=dict)
    n: Any = 100  # successful episodes to write; 1e6 is fine
    out: str = ""  # dataset directory; default data/<task>
    seed: int = 0  # root seed: episode i depends only on (seed, i)
    workers: Any = "auto"  # processes; auto = all cores
    cameras: list[str] = field(default_factory=list)  # [] = state only; e.g. [front,wrist]
    resolution: list[int] = field(default_factory=lambda: [128, 128])  # [height, width] of rendered frames
    control_hz: float = 20.0  # control (and frame) rate [Hz]; the physics step divides its period evenly
    action: str = "joint_pos"  # how `action` is written: joint_pos | joint_delta | ee_pose | ee_delta
    shard: Any = "auto"  # attempts per shard (unit of work, of files, and of resuming)
    batch: int = 16  # worlds stepped together by the physics
    overwrite: bool = False  # replace an `out` made with another config
    held_out: bool = False  # write the held-out instruction paraphrases instead of the training ones
    codec: str = "h264"  # video codec: h264 | av1
    progress: bool = True  # show the progress bar
    mode: str = "physics"  # physics (simulated and judged) | kinematic (planned and checked only, no dynamics)
    counterfactuals: int = 1  # attempts per scene: k > 1 also hands the task to up to k-1 other objects in it
    backend: str = "mujoco"  # physics engine: mujoco (MuJoCo C, the reference) | mujoco_warp | pybullet
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)  # physics.timestep= etc.


KEY_DOCS = {
    "n": "successful episodes to write (n=1e6 works as typed)",
    "out": "dataset directory (default data/<task>)",
    "seed": "root seed; episode i depends only on (seed, i)",
    "workers": "processes (auto = all cores)",
    "cameras": "[] for state only, or e.g. [front,wrist]",
    "resolution": "[height,width] of rendered frames",
    "control_hz": "control and frame rate [Hz]",
    "action": "action convention written: joint_pos, joint_delta, ee_pose or ee_delta",
    "shard": "attempts per shard: unit of work, files and resuming (auto from n)",
    "batch": "worlds stepped together by the physics",
    "overwrite": "replace an existing dataset made with another config",
    "held_out": "write held-out instruction paraphrases (for evaluation sets)",
    "codec": "video codec: h264 or av1",
    "progress": "show the progress bar",
    "counterfactuals": "k > 1: each scene again with the task about up to k-1 other objects (instruction pairs)",
    "mode": "physics (default: simulated, judged on the physics) or kinematic (planned, collision-checked and "
    "timed only: no dynamics, no rendering, ~100x faster; pick_place and place_in_container)",
    "backend": "physics engine: mujoco (MuJoCo C on the CPU, the reference), mujoco_warp (MuJoCo Warp, batched "
    "worlds on a GPU or Warp's CPU device; set batch= to the worlds per device batch, e.g. 1024; "
    'pip install -e ".[warp]") or pybullet (the same compiled scene rebuilt in PyBullet)',
    "physics": "physics.timestep=<s> (a whole fraction of the control period; auto: the task's default, 2 ms at "
    "20 Hz), physics.integrator=implicitfast|implicit|euler|rk4, physics.iterations=, physics.tolerance= "
    "(constraint solver)",
}


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


def _count(value: Any) -> int:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"n={value!r} is not a number; give a count such as n=1000 or n=1e6") from None
    if not math.isfinite(x) or x < 1 or x != int(x):
        raise ConfigError(f"n={value!r} must be a whole number of episodes >= 1, e.g. n=1000 or n=1e6")
    return int(x)


def settings(cfg: DictConfig) -> Settings:
    """Check every value and build the plugins; raises ConfigError naming the fix."""
    choices = cfg.hydra.runtime.choices
    raw = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(raw, dict)
    raw.pop("hydra")
    task_obj = TASKS.build(choices["task"], raw["task"])
    task_obj.check_embodiment(body := embodiment.load(choices["embodiment"]))
    rands = tuple(RANDOMIZERS.build(name, node) for name, node in (raw.get("randomizers") or {}).items())
    n = _count(raw["n"])
    w = raw["workers"]
    if w == "auto":
        workers = os.cpu_count() or 1
    elif isinstance(w, int) and w >= 1:
        workers = w
    else:
        raise ConfigError(f"workers={w!r}: give a number of processes >= 1 or workers=auto")
    known = [c.name for c in task_obj.scene().cameras] + [f"{m.prefix}wrist" for m in body.mounts]
    for cam in raw["cameras"]:
        if cam not in known:
            raise ConfigError(f"unknown camera '{cam}'{closest(cam, known)}; e.g. cameras=[front,wrist]")
    res = raw["resolution"]
    if len(res) != 2 or min(res) < 16:
        raise ConfigError(f"resolution={res}: give [height,width], each >= 16")
    hz = float(raw["control_hz"])
    if not 0 < hz <= 500:
        raise ConfigError(f"control_hz={hz}: give a control rate in (0, 500] Hz, e.g. 5, 15, 20 or 30")
    if raw["action"] not in CONVENTIONS:
        raise ConfigError(f"action={raw['action']!r}: choose one of {', '.join(CONVENTIONS)}")
    shard = raw["shard"]
    shard_auto = shard == "auto"
    if shard_auto:
        # >= ~16 shards unless n is large; a kinematic shard is cheap per attempt, so more fit in one file
        shard = int(min(2048 if raw.get("mode") == "kinematic" else 256, max(16, math.ceil(n * 1.1 / 16))))
    elif not isinstance(shard, int) or shard < 1:
        raise ConfigError(f"shard={shard!r}: give attempts per shard >= 1 or shard=auto")
    if raw["codec"] not in ("h264", "av1"):
        raise ConfigError(f"codec={raw['codec']!r}: choose h264 or av1")
    if raw["batch"] < 1:
        raise ConfigError(f"batch={raw['batch']}: give worlds per physics batch >= 1")
    mode = raw.get("mode", "physics")
    if mode not in ("physics", "kinematic"):
        raise ConfigError(f"mode={mode!r}: choose physics or kinematic")
    if mode == "kinematic":
        from synth.kinematic import SUPPORTED

        if raw["cameras"]:
            raise ConfigError("mode=kinematic renders nothing; drop cameras= or use mode=physics")
        if task_obj.name not in SUPPORTED:
            raise ConfigError(
                f"mode=kinematic supports task={' or task='.join(SUPPORTED)}, not {task_obj.name}; use mode=physics"
            )
        physical = [
            r.name for r in rands if r.name in ("robot_base", "action_noise", "action_drift", "regrasp", "near_miss")
        ]
        if physical:
            raise ConfigError(
                f"mode=kinematic does not apply randomizers {physical} (they act on the executed physics or the "
                "physics mode's expert); "
                "drop them or use mode=physics"
            )
    cf = raw.get("counterfactuals", 1)
    if not isinstance(cf, int) or cf < 1:
        raise ConfigError(f"counterfactuals={cf!r}: give attempts per scene >= 1 (1: off, 2: pairs)")
    if cf > 1 and (task_obj.scene().task_objects != 1 or task_obj.arms != 1 or mode != "physics"):
        raise ConfigError(
            f"counterfactuals={cf} needs a task about one object in mode=physics (pick_place, place_in_container, "
            f"push), not task={task_obj.name} mode={mode}"
        )
    arm_dynamics = [r for r in rands if r.name == "arm_dynamics"]
    if arm_dynamics and arm_dynamics[0].joints < body.dof:
        raise ConfigError(
            f"randomizers.arm_dynamics.joints={arm_dynamics[0].joints} is fewer than the {body.dof} arm joints of "
            f"embodiment={body.name}; set randomizers.arm_dynamics.joints={body.dof}"
        )
    backend = raw.get("backend", "mujoco")
    require(str(backend))
    if backend == "pybullet":  # what the PyBullet scene builder does not map: refused rather than dropped
        shapes = {s for r in rands for s in getattr(r, "shapes", ())}
        unmapped = sorted(({"cup", "file"} & shapes) | ({r.name for r in rands} & {"restitution"}))
        if unmapped:
            raise ConfigError(
                f"backend=pybullet does not map {unmapped} (concave objects, restitution); drop them or use "
                "backend=mujoco"
            )
    if backend != "mujoco" and mode == "kinematic":
        raise ConfigError(f"mode=kinematic runs no physics: drop backend={backend} or use mode=physics")
    phys_node = dict(raw.get("physics") or {})
    physics = resolve(phys_node, hz, task_obj.physics_step)
    if mode == "kinematic" and phys_node != vars(PhysicsConfig()):
        raise ConfigError("mode=kinematic runs no physics: drop the physics.* keys or use mode=physics")
    raw["shard"] = shard
    return Settings(
        task=task_obj,
        embodiment=choices["embodiment"],
        randomizers=rands,
        n=n,
        out=raw["out"] or f"data/{task_obj.name}",
        seed=int(raw["seed"]),
        workers=workers,
        cameras=tuple(raw["cameras"]),
        resolution=(int(res[0]), int(res[1])),
        control_hz=hz,
        action=raw["action"],
        shard=shard,
        batch=int(raw["batch"]),
        overwrite=bool(raw["overwrite"]),
        held_out=bool(raw["held_out"]),
        codec=raw["codec"],
        progress=bool(raw["progress"]),
        raw=raw,
        shard_auto=shard_auto,
        mode=mode,
        counterfactuals=cf,
        backend=backend,
        physics=physics,
    )
