"""What a task is: a nominal scene, a skill script that plans it, a physics predicate, instructions.

Plan -> execute -> judge are separate: a Plan is arrays and JSON-able facts, so execution can be
batched (or moved to another backend) and judging needs only the recorded physics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import mujoco
import numpy as np

from synth import embodiment
from synth.embodiment import Embodiment
from synth.errors import ConfigError
from synth.keys import key
from synth.types import Scene


@dataclass
class Plan:
    """A planned demonstration at the control rate.

    actions: (T, A) joint targets [rad] then gripper width [m]; phase: (T,) int64 index into task.phases;
    check: what the success predicate needs (JSON-able); stats: planner statistics (JSON-able).
    """

    actions: np.ndarray
    phase: np.ndarray
    check: dict
    stats: dict = field(default_factory=dict)


@dataclass
class Attempt:
    """One attempt of a worker: its scene and draws, instruction, compiled model, and the plan or the failure;
    seconds: where its time went (build, plan, physics, ...)."""

    index: int
    scene: Scene
    draws: dict
    instruction: str
    model: mujoco.MjModel | None = None
    plan: Plan | None = None
    failure: str = ""
    seconds: dict = field(default_factory=dict)

    @property
    def p(self) -> Plan:
        """The plan of an attempt that has one."""
        assert self.plan is not None, f"attempt {self.index} has no plan ({self.failure})"
        return self.plan


@dataclass
class Frames:
    """One world's physics at the control rate: frame t is the state after t control periods.

    qpos: (F, nq); qvel: (F, nv); sensordata: (F, nsensordata), F = T + settle periods + 1.
    """

    qpos: np.ndarray
    qvel: np.ndarray
    sensordata: np.ndarray


@dataclass
class FrameBatch:
    """W worlds' physics at the control rate, stepped together and padded to one length.

    qpos: (W, F, nq); qvel: (W, F, nv); sensordata: (W, F - 1, nsensordata). World w's own frames are
    start[w] .. start[w] + length[w] - 1 (a latency starts a world's judged frames later; a shorter plan ends
    earlier): world(w) is that world's Frames.
    """

    qpos: np.ndarray
    qvel: np.ndarray
    sensordata: np.ndarray
    start: np.ndarray
    length: np.ndarray

    def world(self, w: int) -> Frames:
        a, n = int(self.start[w]), int(self.length[w])
        return Frames(self.qpos[w, a : a + n], self.qvel[w, a : a + n], self.sensordata[w, a : a + n - 1])

    def at(self, t: np.ndarray) -> np.ndarray:
        """(W,) the flat frame index of each world's own frame t (W,) (negative: from its end)."""
        t = np.asarray(t)
        return self.start + np.where(t < 0, self.length + t, t)

    def valid(self) -> np.ndarray:
        """(W, F) whether frame f is one of world w's own."""
        f = np.arange(self.qpos.shape[1])
        return (f >= self.start[:, None]) & (f < (self.start + self.length)[:, None])


@dataclass(frozen=True)
class Task:
    """Base of task plugins (frozen dataclass of parameters; register with @task("name"))."""

    name: ClassVar[str] = "task"
    description: ClassVar[str] = ""
    phases: ClassVar[tuple[str, ...]] = ()
    templates: ClassVar[tuple[str, ...]] = ()  # training paraphrases
    held_out_templates: ClassVar[tuple[str, ...]] = ()  # for evaluation only
    grip_needed: ClassVar[bool] = True  # success needs the fingers to close (False: pushing also does it)
    arms: ClassVar[int] = 1  # arms the skill script drives: 1, or 2 for a bimanual task
    # mode=kinematic plans it: its skill script (`script()`, synth/skill.py) is a pick-and-place run once per placement,
    # or one script both arms of a pair run at once (synth/batch_planner/pair.py)
    kinematic: ClassVar[bool] = False
    settle: float = key(0.5, "[s] the last action is held this long before success is judged (not written); >= 0")
    # [s] the largest physics step physics.timestep=auto takes (the largest dividing the control period below it);
    # a larger one only where benchmarks/physics_step.py found the 1 ms labels on >= 99% of >= 2,000 attempts
    physics_step: ClassVar[float] = 0.002

    def scene(self) -> Scene:
        """The nominal scene before randomizers."""
        raise NotImplementedError

    def plan(self, ctx: PlanContext, scene: Scene, model: mujoco.MjModel, seed: int) -> Plan | str:
        """A Plan, or the failure reason (e.g. "ik_failure", "no_path")."""
        raise NotImplementedError

    def judge(self, plan: Plan, frames: Frames, layout) -> str:
        """'' if the physics shows success, else the failure reason."""
        raise NotImplementedError

    def judge_batch(self, plans: list[Plan], frames: FrameBatch, layout) -> list[str]:
        """judge for W worlds stepped together (a task vectorizes it over the world axis where it can)."""
        return [self.judge(p, frames.world(w), layout) for w, p in enumerate(plans)]

    def outcome(self, scene: Scene, frames: Frames, layout) -> str:
        """Like judge, without a plan (for closed-loop policies): '' on success, else the failure reason."""
        raise NotImplementedError

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        raise NotImplementedError

    def failure_reasons(self) -> tuple[str, ...]:
        return ("ik_failure", "no_path", "unstable")

    def check_embodiment(self, emb: Embodiment) -> None:
        """Refuse an embodiment with another number of arms than the skill script drives."""
        n = len(emb.mounts)
        if n != self.arms:
            fits = [e for e in embodiment.names() if len(embodiment.load(e).mounts) == self.arms]
            raise ConfigError(
                f"task={self.name} drives {self.arms} arm(s) but embodiment={emb.name} has {n}; "
                f"use embodiment={' or embodiment='.join(fits)}"
            )


@dataclass
class PlanContext:
    """Per-worker planning tools for one embodiment, reused across attempts."""

    emb: Embodiment
    control_hz: float
    ik: object  # synth.ik.IK of the (first) arm
    iks: tuple = ()  # synth.ik.IK per arm, in the order of emb.mounts
