"""Execution drift: a slow offset on the joint targets the physics executes, DART-style corrective demonstrations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import PHYSICS, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Drift, Scene


@randomizer("action_drift", acts_on="execution", kinematic=False, evaluation=True)
@dataclass(frozen=True)
class ActionDrift(Randomizer):
    """Per episode, a standard deviation `joints` [rad] of a slow random offset on every arm joint target the
    physics executes (an Ornstein-Uhlenbeck process with correlation time `period` [s]), faded out within `quiet`
    [s] of every gripper change and of the plan's end (synth.execute.drift). The written `action` stays the plan,
    so an episode shows the arm pushed off its plan and the actions that bring it back: the corrections a policy
    needs when its own errors move it off the demonstrations (DART, Laskey et al. 2017). The offset is drawn from
    the stream of (seed, attempt, "action_drift"), whatever the batch. Success is still judged on the physics."""

    description = "a slow offset on the executed joint targets (DART)"
    stage = PHYSICS
    joints: tuple[float, float] = key(
        (0.0, 0.03), "[rad] range of the per-episode std of the offset on each arm joint target; low >= 0"
    )
    period: float = key(0.5, "[s] correlation time of the offset (an Ornstein-Uhlenbeck process); > 0")
    quiet: float = key(0.25, "[s] the offset fades to 0 within this of every gripper change and of the plan's end; > 0")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.joints[0] < 0 or self.period <= 0 or self.quiet <= 0:
            raise ConfigError(
                f"randomizers.action_drift: joints={list(self.joints)}, period={self.period}, quiet={self.quiet}; "
                "give a non-negative range and positive times [s]"
            )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        std = uniform(rng, self.joints)
        return scene.perturbed(action_drift=Drift(std, self.period, self.quiet)), {
            "joints": std,
            "period": self.period,
            "quiet": self.quiet,
        }
