"""The physics backend protocols: roll out W worlds from full states under per-step controls (`Backend`), and
step one world at a time under controls decided as it goes (`World`, the closed loop of `synth eval`).

MuJoCo C on the CPU (`synth.backends.mujoco_cpu.MujocoCPU`) is the reference; every other backend returns
the same arrays for the same inputs, within a tolerance its tests state. A backend module keeps its heavy
imports (warp, pybullet, ...) to itself: `make` and `world` import it only when it is asked for.
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
# name -> the class in BACKENDS[name]'s module that steps one world (`World`); a backend without one has no closed loop
WORLDS: dict[str, str] = {"mujoco": "MujocoWorld", "pybullet": "World"}


class Backend(Protocol):
    """Steps a batch of worlds. The worlds' models come from one scene spec and share its sizes (or are
    grouped by the backend when they do not); they differ in geometry, physics parameters and colours."""

    name: str  # the `backend=` value that selects it

    def rollout(
        self, models: list[mujoco.MjModel], state0: np.ndarray, ctrl: np.ndarray, every: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """models: W compiled MjModels, one per world; state0: (W, nstate) in mjSTATE_FULLPHYSICS layout;
        ctrl: (W, N, nu) the controls of each physics step, N a multiple of `every`.

        Records every `every`-th step: returns state (W, N // every, nstate) after steps every-1, 2*every-1, ...
        (FULLPHYSICS layout: time [s], qpos, qvel, act, ...) and sensordata (W, N // every, nsensordata), where
        sensordata[:, j] was computed at the start of step j * every (for the state before it); every=1 records
        each step. A backend whose physics runs elsewhere (a GPU) copies only these back. The arrays may be the
        backend's reused buffers, valid until its next call. A world whose physics diverges at any step shows it
        at every recorded step after, so at least at the last one: in its recorded time (it is not state0's time
        plus one timestep per step) or as non-finite values (see `synth.backends.mujoco_cpu.diverged`).
        """
        ...


class World(Protocol):
    """One world stepped a physics step at a time, its controls decided between steps: the closed loop's engine.
    Made by `world(name, model, qpos)` from a compiled MjModel, at rest at qpos (nq,) [m, rad]; read back in
    MuJoCo's layout whatever the engine."""

    @property
    def qpos(self) -> np.ndarray:
        """(nq,) [m, rad] the current positions (MuJoCo's qpos layout)."""
        ...

    @property
    def qvel(self) -> np.ndarray:
        """(nv,) [m/s, rad/s] the current velocities (MuJoCo's qvel layout)."""
        ...

    def step(self, ctrl: np.ndarray) -> None:
        """One physics step of model.opt.timestep [s] with actuator controls ctrl (nu,) held over it."""
        ...

    def close(self) -> None:
        """Free the engine's resources; the world is not stepped again."""
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


def world(name: str, model: mujoco.MjModel, qpos: np.ndarray) -> World:
    """One world of backend `name` (its module imported only now) built from `model` at rest at qpos (nq,) [m, rad];
    `require`'s errors, or a ConfigError for a backend that cannot step one world."""
    require(name)
    if name not in WORLDS:
        raise ConfigError(f"backend={name} cannot step one world at a time (closed loop): use one of {list(WORLDS)}")
    return getattr(importlib.import_module(BACKENDS[name][0]), WORLDS[name])(model, qpos)
