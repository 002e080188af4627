"""Execution noise: Gaussian noise on the joint targets the physics executes, and a control latency."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.randomize import PHYSICS, Randomizer, uniform
from synth.registry import randomizer
from synth.types import ExecutionNoise, Scene


@randomizer("action_noise", acts_on="execution", kinematic=False, evaluation=True)
@dataclass(frozen=True)
class ActionNoise(Randomizer):
    """Noise std `joints` [rad] on the executed joint targets and a `latency` [control periods], per episode.
    Independent Gaussian noise is added to every arm joint target at every control period, and the physics runs
    the targets `latency` periods late (the arm holds its start targets meanwhile). The written `action` stays the
    commanded one; the noise is drawn from the stream of (seed, attempt, "action_noise"), so it is the same
    whatever the batch (synth.execute.perturb). Success is still judged on the physics."""

    description = "noise and latency on the executed joint targets"
    stage = PHYSICS
    joints: tuple[float, float] = key(
        (0.0, 0.005), "[rad] range of the per-episode std of Gaussian noise on each executed arm joint target; low >= 0"
    )
    latency: tuple[int, int] = key(
        (0, 2), "[control periods] range of the delay of the executed targets, whole numbers; low >= 0"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.joints[0] < 0 or self.latency[0] < 0:
            raise ConfigError(
                f"randomizers.action_noise: joints={list(self.joints)}, latency={list(self.latency)}; "
                "give non-negative ranges"
            )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        std, k = uniform(rng, self.joints), int(rng.integers(self.latency[0], self.latency[1] + 1))
        return scene.perturbed(action_noise=ExecutionNoise(std, k)), {"joints": std, "latency": k}
