"""Execute planned actions for a batch of worlds and read the physics back at the control rate."""

from __future__ import annotations

import mujoco
import numpy as np

from synth.backends.mujoco_cpu import diverged, initial_state, state_slices
from synth.randomize import stream


def substeps(model: mujoco.MjModel, control_hz: float) -> int:
    """Physics steps per control period."""
    s = 1.0 / (control_hz * model.opt.timestep)
    if abs(s - round(s)) > 1e-6:
        raise ValueError(f"control_hz={control_hz} is not a whole number of {model.opt.timestep}s physics steps")
    return round(s)


def controls(actions: np.ndarray, start: np.ndarray, steps: int, scale: np.ndarray) -> np.ndarray:
    """First-order hold: over control period t the target ramps linearly from action t-1 to action t.

    actions: (W, T, A); start: (W, A) the targets before the first action; scale: (A,) action -> ctrl.
    Returns (W, T * steps, A) physics-rate controls.
    """
    prev = np.concatenate([start[:, None], actions[:, :-1]], axis=1)
    frac = (np.arange(1, steps + 1) / steps)[None, None, :, None]
    ctrl = prev[:, :, None] + frac * (actions - prev)[:, :, None]
    return (ctrl * scale).reshape(actions.shape[0], -1, actions.shape[2])


def perturb(actions: np.ndarray, start: np.ndarray, arm: np.ndarray, std: float, latency: int, rng) -> np.ndarray:
    """The joint targets the physics executes for one world's commanded `actions` (T, A): independent Gaussian
    noise of standard deviation `std` [rad] on the columns `arm` (the arm joints, Embodiment.arm_columns; the
    grippers stay as commanded), then `latency` control periods late: the first `latency` periods hold `start`
    (A,), the targets before the first action. Returns (T + latency, A); `rng` is the attempt's own stream,
    so the result does not depend on the batch it runs in."""
    out = np.array(actions, dtype=float)
    out[:, arm] += std * rng.normal(size=(len(out), len(arm)))
    return np.concatenate([np.repeat(np.asarray(start, float)[None], latency, 0), out])


def drift(
    actions: np.ndarray, arm: np.ndarray, grip: np.ndarray, std: float, tau: float, quiet: float, hz: float, rng
) -> np.ndarray:
    """A slow offset (T, A) [rad] for one world's commanded `actions` (T, A), DART's disturbance (Laskey et al. 2017):
    on each arm column (`arm`) an Ornstein-Uhlenbeck process of stationary standard deviation `std` [rad] and
    correlation time `tau` [s], starting at zero, faded out near every change of a gripper column (`grip`) and near
    the plan's end: zero within `quiet` [s] of one, back to full over the next `quiet`. The arm is pushed off its plan
    while it travels and is on it when it grasps or lets go; the written actions stay the plan, so the frames show
    the state off the plan and the action that returns to it. Grippers get no offset. `hz`: control rate [Hz]."""
    T = len(actions)
    a = np.exp(-1.0 / (hz * tau))
    kicks = rng.normal(size=(T, len(arm))) * (std * np.sqrt(1.0 - a * a))
    x = np.zeros((T, len(arm)))
    for t in range(1, T):
        x[t] = a * x[t - 1] + kicks[t]
    g = np.asarray(actions)[:, grip]
    marks = np.r_[np.flatnonzero(np.any(np.abs(np.diff(g, axis=0)) > 1e-9, axis=1)) + 1, T - 1]
    near = np.abs(np.arange(T)[:, None] - marks[None]).min(axis=1) / hz  # [s] to the nearest change or the end
    out = np.zeros(np.shape(actions))
    out[:, arm] = x * np.clip(near / quiet - 1.0, 0.0, 1.0)[:, None]
    return out


def executed(
    actions: np.ndarray, scene, start: np.ndarray, arm: np.ndarray, grip: np.ndarray, hz: float, seed: int, attempt: int
) -> np.ndarray:
    """(T + latency, A) the joint targets the physics runs for one attempt's commanded `actions` (T, A) in `scene`:
    plus its drift (`action_drift`), then its noise and latency (`action_noise`), each from the attempt's own
    stream, so they do not depend on the batch (the generator and synth.replay both call this)."""
    out = np.asarray(actions, dtype=float)
    d, n = scene.perturb.action_drift, scene.perturb.action_noise
    if d.joints:
        out = out + drift(out, arm, grip, d.joints, d.period, d.quiet, hz, stream(seed, attempt, "action_drift"))
    if n.joints or n.latency:
        out = perturb(out, start, arm, n.joints, n.latency, stream(seed, attempt, "action_noise"))
    return out


def run(
    backend,
    models: list[mujoco.MjModel],
    qpos0: np.ndarray,
    actions: np.ndarray,
    start: np.ndarray,
    steps: int,
    scale: np.ndarray,
) -> dict[str, np.ndarray]:
    """Roll out W worlds; returns frames at the control rate, frame t = state after t periods.

    qpos0: (W, nq); actions: (W, T, A) (pad short plans by repeating their last action).
    Returns qpos (W, T+1, nq), qvel (W, T+1, nv), sensordata (W, T, ns) (frame t's sensors, t < T),
    the full initial states (W, nstate), and `diverged` (W,) worlds whose physics blew up.
    """
    W, T, _ = actions.shape
    state0 = np.stack([initial_state(m, q) for m, q in zip(models, qpos0, strict=True)])
    # the backend records only the control-rate frames: the state after each period, the sensors at its start
    state, sens = backend.rollout(models, state0, controls(actions, start, steps, scale), every=steps)
    sl = state_slices(models[0])
    frames = np.concatenate([state0[:, None], state], axis=1)
    return {
        "qpos": frames[..., sl["qpos"]],
        "qvel": frames[..., sl["qvel"]],
        "sensordata": np.ascontiguousarray(sens[:, :T]),  # a copy: let the backend's buffers go
        "state0": state0,
        "diverged": diverged(state, state0, models[0].opt.timestep, steps),
    }
