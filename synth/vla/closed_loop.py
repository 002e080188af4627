"""The closed loop of `synth eval`: a policy driving W worlds in lockstep, judged as generation judges.

Every `execute` control periods (every period with the temporal ensemble) the policy sees each world's cameras
and state and returns a chunk; the chunk's actions are applied with the same first-order hold as generation.
Success is the task's physics predicate (Task.outcome), never the policy's, read as generation reads it: a
world stops acting once its state looks done (or its time runs out), holds its last target for the task's
settle time, and the final settled frame is judged. The worlds step through synth.backends.base.World, on
MuJoCo C or any backend that has one.
"""

from __future__ import annotations

from typing import Protocol

import mujoco
import numpy as np

from synth.backends.base import World, world
from synth.errors import ConfigError
from synth.execute import substeps
from synth.pipeline import Attempt, Worker
from synth.tabletop.compiler import Layout, initial_qpos
from synth.task import Frames
from synth.vla.data import NEAR
from synth.vla.policy import Policy


class Settings(Protocol):
    """The keys of `synth eval` the loop reads (synth.vla.evaluate.EvalConfig has them)."""

    @property
    def execute(self) -> int:
        """[control periods] chunk actions applied before the policy is asked again (without the ensemble)."""
        ...

    @property
    def ensemble(self) -> float:
        """The temporal ensemble's decay: ask every period, weight chunk i by exp(-ensemble*i); 0: off."""
        ...

    @property
    def sampling_steps(self) -> int:
        """Euler steps of the policy's flow."""
        ...

    @property
    def temperature(self) -> float:
        """Std of the flow's starting noise."""
        ...

    @property
    def seed(self) -> int:
        """The evaluation seed: the policy's noise at step t is seeded with seed + t."""
        ...


def rollout(
    pol: Policy, worker: Worker, atts: list[Attempt], hz: float, limit: float, cfg: Settings, backend: str = "mujoco"
) -> list[tuple[str, float, float, float, int]]:
    """Closed-loop episodes of W worlds on physics `backend`; returns per world ('' on success or the failure
    reason, the close miss [m] and the close height [m]: see close_offset, the approach offset [m]: see
    approach_offset, and how many times the gripper was told to close: more than once is a retried grasp)."""
    emb = worker.emb
    models = [a.model for a in atts]
    assert all(m is not None for m in models)
    lay = Layout(models[0], emb)  # type: ignore[arg-type]
    worlds: list[World] = []
    try:
        for m in models:
            worlds.append(world(backend, m, initial_qpos(m, emb, lay)))  # type: ignore[arg-type]
        return _loop(pol, worker, atts, worlds, lay, hz, limit, cfg)
    finally:
        for wd in worlds:
            wd.close()


def _loop(
    pol: Policy,
    worker: Worker,
    atts: list[Attempt],
    worlds: list[World],
    lay: Layout,
    hz: float,
    limit: float,
    cfg: Settings,
) -> list[tuple[str, float, float, float, int]]:
    """The policy's closed loop over `worlds`, each at rest with every arm at home and its gripper open."""
    emb, task = worker.emb, worker.task
    models = [a.model for a in atts]
    start = emb.start
    lo, hi = np.zeros(len(start)), np.array(start, float)  # per column: a gripper 0 .. its stroke, joints' limits
    lo[emb.arm_columns], hi[emb.arm_columns] = emb.lower, emb.upper
    W, T, n_sub = len(atts), round(limit * hz), substeps(models[0], hz)  # type: ignore[arg-type]
    settle = round(task.settle * hz)  # generation's settle time: the last target held this long, then judged
    qpos = np.zeros((W, T + settle + 1, models[0].nq))  # type: ignore[union-attr]
    qvel = np.zeros((W, T + settle + 1, models[0].nv))  # type: ignore[union-attr]
    qpos[:, 0] = [wd.qpos for wd in worlds]
    qvel[:, 0] = [wd.qvel for wd in worlds]
    prev = np.tile(start, (W, 1))
    card, convention = _card(pol, emb.name)
    frac = (np.arange(1, n_sub + 1) / n_sub)[:, None]
    done = np.zeros(W, bool)
    result = ["timeout"] * W
    chunk = np.zeros((W, pol.horizon, len(start)))
    every = 1 if cfg.ensemble > 0 else cfg.execute  # the policy is asked every `every` steps
    issued: list[tuple[int, np.ndarray]] = []  # (step asked, chunk) for the ensemble
    grip = emb.gripper_columns[0]
    closed = np.full(W, -1)  # the step at which the first arm's gripper was first told to close, -1: never
    closes, shut = np.zeros(W, int), np.zeros(W, bool)  # how often it was told to close; told to close now
    ended = np.full(W, -1)  # the step at which a world stopped acting (it looked done, or time ran out)
    for t in range(T + settle + 1):
        acting = ended < 0
        if t % every == 0 and t < T:  # a world that looks done stops acting: its last target is held
            for w in np.flatnonzero(acting & (t > 0)):
                if task.outcome(atts[w].scene, _frames(qpos[w], qvel[w], t), lay) == "":
                    ended[w] = t
        ended[acting & (t >= T)] = T
        for w in np.flatnonzero(~done & (ended >= 0) & (t >= ended + settle)):  # judged as generation judges
            done[w], result[w] = True, task.outcome(atts[w].scene, _frames(qpos[w], qvel[w], t), lay)
        acting = ended < 0
        if done.all() or t == T + settle:
            break
        if acting.any() and t % every == 0:
            chunk = _ask(pol, card, worker, atts, qpos[:, t], lay, hz, cfg, t)
            issued = [(t0, c) for t0, c in issued if t - t0 < pol.horizon] + [(t, chunk)]
        if cfg.ensemble > 0 and acting.any():  # oldest first: weight exp(-m * i)
            w_i = np.exp(-cfg.ensemble * np.arange(len(issued)))
            a = sum(w * c[:, t - t0] for w, (t0, c) in zip(w_i, issued, strict=True)) / w_i.sum()
        else:
            a = chunk[:, t % cfg.execute].copy()
        if convention == "joint_delta":  # a delta on the joints measured now
            a[:, emb.arm_columns] += qpos[:, t][:, lay.arm_qadr]
        a = np.where(acting[:, None], np.clip(a, lo, hi), prev)  # a stopped world holds its last target
        now = a[:, grip] < 0.5 * start[grip]
        closed[(closed < 0) & now & acting] = t
        closes += now & ~shut & acting
        shut = now
        ctrl = (prev[:, None] + frac[None] * (a - prev)[:, None]) * worker.scale  # (W, n_sub, A)
        for w in np.flatnonzero(~done):
            for k in range(n_sub):
                worlds[w].step(ctrl[w, k])
            qpos[w, t + 1], qvel[w, t + 1] = worlds[w].qpos, worlds[w].qvel
        prev = a
    nan = (float("nan"), float("nan"))
    at = [close_offset(models[w], qpos[w, c], lay) if c >= 0 else nan for w, c in enumerate(closed)]  # type: ignore[arg-type]
    upto = np.where(closed >= 0, closed, ended)  # the approach: the steps before the first close
    off = [approach_offset(models[w], qpos[w, : upto[w] + 1], lay) for w in range(W)]  # type: ignore[arg-type]
    return [(r, m, h, o, n) for r, (m, h), o, n in zip(result, at, off, closes.tolist(), strict=True)]


def _card(pol: Policy, body: str) -> tuple[dict, str]:
    """The policy's dataset card for embodiment `body` (else its first) and its action convention; a convention
    closed-loop eval cannot run is a ConfigError."""
    card = pol.cards.get(body) or next(iter(pol.cards.values()))
    convention = card.get("action", {}).get("convention", "joint_pos")
    if convention not in ("joint_pos", "joint_delta"):
        raise ConfigError(
            f"the policy predicts {convention} actions; closed-loop eval runs joint_pos and joint_delta policies "
            "(train on data generated with action=joint_pos or action=joint_delta)"
        )
    return card, convention


def _ask(
    pol: Policy,
    card: dict,
    worker: Worker,
    atts: list[Attempt],
    qpos: np.ndarray,
    lay: Layout,
    hz: float,
    cfg: Settings,
    t: int,
) -> np.ndarray:
    """(W, horizon, A) the policy's next action chunk at step t, from every world's state and, if the policy has
    cameras, their images rendered at `qpos` (W, nq)."""
    from synth.render import render

    state = lay.state(qpos)  # every arm's joints and gripper width
    images = None
    if pol.cameras:
        r, c = worker.resolution
        per = [render(a.model, qpos[w][None], list(pol.cameras), r, c) for w, a in enumerate(atts)]  # type: ignore[arg-type]
        images = {cam: np.concatenate([p[cam] for p in per]) for cam in pol.cameras}
    return pol.act(
        card,
        [a.instruction for a in atts],
        state,
        images,
        hz,
        cfg.sampling_steps,
        seed=cfg.seed + t,
        temperature=cfg.temperature,
    )


def _frames(qpos: np.ndarray, qvel: np.ndarray, t: int) -> Frames:
    """One world's frames 0..t (qpos (F, nq), qvel (F, nv) with F > t): what the task's predicate reads."""
    return Frames(qpos[: t + 1], qvel[: t + 1], np.zeros((t + 1, 0)))


APPROACH = (0.03, 0.15)  # [m] TCP heights above the object's centre that approach_offset reads (and, sideways,
#                            within data.NEAR: where the hand is coming down on it)


def hand_from_object(model: mujoco.MjModel, qpos: np.ndarray, lay: Layout) -> np.ndarray:
    """(T, 3) [m] the first arm's TCP (between the fingertips) minus the task object's centre in states qpos (T, nq)."""
    d = mujoco.MjData(model)
    a, site = int(lay.obj_qadr[0]), lay.arms[0].tcp
    out = np.empty((len(qpos), 3))
    for i, q in enumerate(qpos):
        d.qpos[:] = q
        mujoco.mj_kinematics(model, d)
        out[i] = d.site(site).xpos - q[a : a + 3]
    return out


def approach_offset(model: mujoco.MjModel, qpos: np.ndarray, lay: Layout) -> float:
    """[m] the median horizontal distance from the first arm's TCP to the task object's centre over the states
    qpos (T, nq) in which the TCP is APPROACH above the object and within NEAR of it horizontally (NaN when there
    are none). Over the steps before the first close, it says how far off the object the hand comes down: the
    expert comes down right above it, and a policy whose closed loop strays from the expert's states further than
    its training data did comes down centimetres off."""
    rel = hand_from_object(model, qpos, lay)
    h = np.linalg.norm(rel[:, :2], axis=1)
    got = h[(rel[:, 2] >= APPROACH[0]) & (rel[:, 2] <= APPROACH[1]) & (h < NEAR)]
    return float(np.median(got)) if len(got) else float("nan")


def close_offset(model: mujoco.MjModel, qpos: np.ndarray, lay: Layout) -> tuple[float, float]:
    """[m] the horizontal distance from the first arm's TCP (between the fingertips) to the task object's centre
    in state `qpos` (nq,) (the close miss), and the TCP's height above that centre (the close height): taken
    when the policy first tells the gripper to close, they say by how much a failed grasp missed, sideways and
    in height (the expert's are ~0: its TCP closes at the object's centre)."""
    rel = hand_from_object(model, qpos[None], lay)[0]
    return float(np.linalg.norm(rel[:2])), float(rel[2])
