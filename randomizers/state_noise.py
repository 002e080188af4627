"""Observation noise on the written state: Gaussian, with a standard deviation drawn per episode."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synth.keys import key
from synth.randomize import VISUAL, Randomizer, uniform
from synth.registry import randomizer
from synth.types import Scene, StateStd


@randomizer("state_noise", acts_on="observation", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class StateNoise(Randomizer):
    """Per episode, standard deviations of independent Gaussian noise added to every frame of the written
    `observation.state`: `joints` [rad] on each arm joint, `gripper` [m] on the gripper width. The physics,
    the actions and `synth.joint_target` stay noise-free; the noise itself is drawn from the stream of
    (seed, attempt, "state_noise"), so an episode's noise is reproducible."""

    description = "Gaussian noise on the written observation.state only"
    stage = VISUAL
    joints: tuple[float, float] = key(
        (0.0, 0.004), "[rad] range of the per-episode std of noise on each written arm joint position; low >= 0"
    )
    gripper: tuple[float, float] = key(
        (0.0, 0.001), "[m] range of the per-episode std of noise on the written gripper width; low >= 0"
    )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        j, g = uniform(rng, self.joints), uniform(rng, self.gripper)
        return scene.perturbed(state_noise=StateStd(j, g)), {"joints": j, "gripper": g}
