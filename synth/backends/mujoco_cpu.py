"""MuJoCo C on the CPU: a batch of worlds stepped by `mujoco.rollout`, the physics loop in C (`MujocoCPU`); one
world stepped by mj_step, its controls decided between steps (`MujocoWorld`, the closed loop's reference)."""

from __future__ import annotations

import mujoco
import numpy as np
from mujoco import rollout

FULL = mujoco.mjtState.mjSTATE_FULLPHYSICS


def initial_state(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """(nstate,) full physics state at rest with the given qpos."""
    d = mujoco.MjData(model)
    d.qpos[:] = qpos
    mujoco.mj_forward(model, d)
    out = np.empty(mujoco.mj_stateSize(model, FULL))
    mujoco.mj_getState(model, d, out, FULL)
    return out


def state_slices(model: mujoco.MjModel) -> dict[str, slice]:
    """Where time, qpos, qvel sit in a FULLPHYSICS state vector."""
    return {"time": slice(0, 1), "qpos": slice(1, 1 + model.nq), "qvel": slice(1 + model.nq, 1 + model.nq + model.nv)}


def signature(model: mujoco.MjModel) -> tuple[int, ...]:
    """Every size of the model: models with equal signatures can share one MjData."""
    return tuple(getattr(model, k) for k in dir(model) if k.startswith("n") and isinstance(getattr(model, k), int))


class MujocoCPU:
    """Steps W worlds, each its own MjModel. Worlds whose models share every size are stepped by one
    `mujoco.rollout` call on a shared MjData; a model with other sizes (e.g. a mesh with more
    vertices) gets its own call, since reusing an MjData across layouts corrupts memory."""

    name = "mujoco"

    def __init__(self, nthread: int = 1, cached_layouts: int = 32):
        self.nthread = nthread
        self._bufs: dict[str, np.ndarray] = {}  # reused output memory: new large arrays per batch fragment the heap
        self._datas: dict[tuple, list[mujoco.MjData]] = {}  # per layout, most recently used last
        self._cached_layouts = cached_layouts

    def _data(self, model: mujoco.MjModel, sig: tuple, k: int) -> list[mujoco.MjData]:
        """k MjData for models of layout `sig` (allocating one costs ~0.5 ms; rollout resets its state)."""
        datas = self._datas.pop(sig, [])
        datas += [mujoco.MjData(model) for _ in range(k - len(datas))]
        self._datas[sig] = datas
        while len(self._datas) > self._cached_layouts:
            del self._datas[next(iter(self._datas))]
        return datas[:k]

    def _out(self, key: str, *shape: int) -> np.ndarray:
        size = int(np.prod(shape))
        if self._bufs.get(key, np.empty(0)).size < size:
            self._bufs[key] = np.empty(int(size * 1.25))
        return self._bufs[key][:size].reshape(shape)

    def rollout(
        self, models: list[mujoco.MjModel], state0: np.ndarray, ctrl: np.ndarray, every: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """state0: (W, nstate); ctrl: (W, N, nu) per physics step, N a multiple of `every`.

        Returns state (W, N // every, nstate) after steps every-1, 2*every-1, ... and sensordata
        (W, N // every, nsensordata), where sensordata[:, j] was computed at the start of step j * every (for
        the state before it). MuJoCo's rollout records every step: these are views of its arrays, bitwise
        what every=1 returns at those steps, in this backend's reused buffers (valid until its next call).
        A world that diverges is reset by MuJoCo: its recorded time falls behind from then on (see `diverged`).
        """
        if ctrl.shape[1] % every:
            raise ValueError(f"{ctrl.shape[1]} steps are not a whole number of every={every}")
        W, N = ctrl.shape[:2]
        state = self._out("state", W, N, state0.shape[1])
        sens = self._out("sens", W, N, models[0].nsensordata)
        groups: dict[tuple, list[int]] = {}
        for w, m in enumerate(models):
            groups.setdefault(signature(m), []).append(w)
        for sig, ws in groups.items():
            datas = self._data(models[ws[0]], sig, min(self.nthread, len(ws)))
            if len(ws) == W:  # one layout: write straight into the outputs
                rollout.rollout(models, datas, state0, ctrl, state=state, sensordata=sens)
                continue
            s = self._out("group_state", len(ws), N, state0.shape[1])
            d = self._out("group_sens", len(ws), N, models[0].nsensordata)
            rollout.rollout([models[w] for w in ws], datas, state0[ws], ctrl[ws], state=s, sensordata=d)
            state[ws], sens[ws] = s, d
        return state[:, every - 1 :: every], sens[:, ::every]


class MujocoWorld:
    """One MjModel stepped by mj_step from qpos (nq,) [m, rad] at rest: synth.backends.base.World on MuJoCo C."""

    def __init__(self, model: mujoco.MjModel, qpos: np.ndarray):
        self.m, self.d = model, mujoco.MjData(model)
        self.d.qpos[:] = qpos
        mujoco.mj_forward(model, self.d)

    @property
    def qpos(self) -> np.ndarray:
        return self.d.qpos

    @property
    def qvel(self) -> np.ndarray:
        return self.d.qvel

    def step(self, ctrl: np.ndarray) -> None:
        self.d.ctrl[:] = ctrl
        mujoco.mj_step(self.m, self.d)

    def close(self) -> None:
        pass


def diverged(state: np.ndarray, state0: np.ndarray, timestep: float, every: int = 1) -> np.ndarray:
    """(W,) True where the recorded time is not the initial time plus k steps (MuJoCo reset the world) or a recorded
    value is not finite. state: (W, n, nstate) recorded after every `every`-th step (`Backend.rollout`)."""
    n = state.shape[1]
    expected = state0[:, :1] + timestep * (every * np.arange(1, n + 1))[None]
    return ~np.all(np.abs(state[..., 0] - expected) < 1e-6 + 1e-9 * n * every, axis=1) | ~np.isfinite(state).all(
        axis=(1, 2)
    )
