"""The physics backend protocol: roll out W worlds from full states under per-step controls.

MuJoCo C on the CPU (`synth.backends.mujoco_cpu.MujocoCPU`) is the reference; every other backend returns
the same arrays for the same inputs, within a tolerance its tests state. A backend module keeps its heavy
imports (warp, pybullet, ...) to itself: `make` imports it only when it is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Protocol

import mujoco
import numpy as np

from synth.errors import ConfigError, closest

# name -> (module, class, the distribution that provides its engine or "" when it is a core dependency, extra)
BACKENDS: dict[str, tuple[str, str, str, str]] = {
    "mujoco": ("synth.backends.mujoco_cpu", "MujocoCPU", "", ""),
    "mujoco_warp": ("synth.backends.mujoco_warp", "MujocoWarp", "mujoco_warp", "warp"),
    "pybullet": ("synth.backends.pybullet", "PyBullet", "pybullet", "pybullet"),
}


class Backend(Protocol):
    """Steps a batch of worlds. The worlds' models come from one scene spec and share its sizes (or are
    grouped by the backend when they do not); they differ in geometry, physics parameters and colours."""

    name: str  # the `backend=` value that selects it

    def rollout(
        self, models: list[mujoco.MjModel], state0: np.ndarray, ctrl: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """models: W compiled MjModels, one per world; state0: (W, nstate) in mjSTATE_FULLPHYSICS layout;
        ctrl: (W, N, nu) the controls of each physics step.

        Returns state (W, N, nstate) after each step (FULLPHYSICS layout: time [s], qpos, qvel, act, ...)
        and sensordata (W, N, nsensordata), where sensordata[:, k] was computed at the start of step k
        (for the state before it). The arrays may be the backend's reused buffers, valid until its next
        call. A world whose physics diverges shows it in its recorded time (it does not advance by one
        timestep per step) or as non-finite values (see `synth.backends.mujoco_cpu.diverged`).
        """
        ...


def available(name: str) -> bool:
    """Whether backend `name` can be made here (its engine is importable)."""
    _, _, dist, _ = BACKENDS[name]
    return not dist or importlib.util.find_spec(dist) is not None


def require(name: str) -> None:
    """A one-line ConfigError for an unknown backend name or one whose engine is not installed."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'{closest(name, list(BACKENDS))}")
    if not available(name):
        raise ConfigError(f'backend={name} needs its optional packages: pip install -e ".[{BACKENDS[name][3]}]"')


def make(name: str) -> Backend:
    """The backend called `name`, its module imported only now; `require`'s errors otherwise."""
    require(name)
    module, cls, _, _ = BACKENDS[name]
    return getattr(importlib.import_module(module), cls)()
