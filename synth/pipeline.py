"""One worker's generation pipeline: attempt i -> scene -> plan -> batched physics -> judge -> episode.

Everything an attempt draws comes from streams keyed by (seed, attempt index), so attempt i is the
same whichever worker runs it and whichever attempts share its physics batch.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from synth.actions import convert, in_base, tcp_poses
from synth.backends.mujoco_cpu import MujocoCPU
from synth.batched_plans import plan_all
from synth.counterfactual import variant
from synth.embodiment import Embodiment
from synth.execute import executed, run, substeps
from synth.language import substitute
from synth.physics import Physics, default
from synth.pose import yaw_matrix
from synth.randomize import Randomizer, apply, slots, stream
from synth.tabletop.compiler import Layout, build, initial_qpos
from synth.tabletop.uniform import share_meshes
from synth.task import Attempt, FrameBatch, Frames, PlanContext, Task
from synth.types import Episode, Scene

if TYPE_CHECKING:
    from synth.ik import IK


class TurnedIK:
    """The worker's IK for a base turned by `yaw` [rad] about z. The skill scripts give targets as world-aligned
    offsets from the base position and world rotations; they are turned into the base's own frame here."""

    def __init__(self, ik: IK, yaw: float):
        self.ik, self.emb = ik, ik.emb
        self.rot = yaw_matrix(yaw)  # base frame -> world

    @property
    def iterations(self) -> int:
        return self.ik.iterations

    def solve(self, pos: np.ndarray, rot: np.ndarray, q_init: np.ndarray, max_step: float = 0.6) -> np.ndarray | None:
        return self.ik.solve(self.rot.T @ pos, self.rot.T @ rot, q_init, max_step)

    def fk(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, rot = self.ik.fk(q_arm)
        return self.rot @ pos, self.rot @ rot


class Worker:
    """Holds the per-process tools (IK, backend) and turns attempt indices into episodes."""

    def __init__(
        self,
        task: Task,
        randomizers: list[Randomizer],
        emb: Embodiment,
        seed: int,
        control_hz: float = 20.0,
        cameras: tuple[str, ...] = (),
        resolution: tuple[int, int] = (128, 128),
        held_out: bool = False,
        batch: int = 16,
        backend=None,
        action: str = "joint_pos",
        counterfactuals: int = 1,
        physics: Physics | None = None,
        focus=None,
        uniform: bool = False,
        planner: str = "per_attempt",
    ):
        self.task, self.randomizers, self.emb, self.seed, self.action = task, randomizers, emb, seed, action
        self.counterfactuals = counterfactuals  # attempts per scene (synth/counterfactual.py)
        self.physics = physics or default(control_hz, task.physics_step)  # step, integrator, solver (synth.physics)
        self.focus = focus  # synth.focus.Focus: scenes drawn by the weights of an eval report, or None
        self.uniform = uniform  # compile every draw into one layout (synth.tabletop.uniform) for batched physics
        self.cameras, self.resolution, self.held_out, self.batch = tuple(cameras), tuple(resolution), held_out, batch
        task.check_embodiment(emb)
        from synth.ik import IK  # mink and its QP solvers: only physics mode's workers need them

        iks = tuple(IK(m.body) for m in emb.mounts)  # one per arm, each in its own base frame
        self.ctx = PlanContext(emb=emb, control_hz=control_hz, ik=iks[0], iks=iks)
        self.slots = slots(task.scene(), randomizers)
        self.backend = backend or MujocoCPU()
        self.scale = emb.scale  # action -> ctrl: the gripper actuator takes width per finger
        self.start = emb.start  # the targets before the first action
        self.planner = planner  # batched (synth.batched_plans, OMPL as the fallback) or per_attempt
        if planner == "batched":
            from synth.batch_planner.planner import Planner

            self.batch_planner = Planner(task, emb, control_hz)  # type: ignore[arg-type]  # a kinematic task

    def prepare(self, i: int, plan: bool = True) -> Attempt:
        """Scene, draws, instruction, compiled model and (with `plan`) the plan of attempt i (CPU, one world)."""
        t0 = time.perf_counter()
        group, v = divmod(i, self.counterfactuals)  # (i, 0) unless counterfactual pairs are asked for
        if self.focus is not None:
            from synth.focus import draw

            scene, draws = draw(self.randomizers, self.task.scene(), self.seed, group, self.focus)
        else:
            scene, draws = apply(self.randomizers, self.task.scene(), self.seed, group)
        if self.counterfactuals > 1:
            cf = variant(scene, v)
            if cf is None:  # no other object in this scene could be the task's
                return Attempt(i, scene, draws, "", failure="no_counterfactual")
            scene, j = cf
            draws = {**draws, "counterfactual": {"scene": group, "variant": v, "object": j}}
        text = self.task.instruction(scene, stream(self.seed, i, "instruction"), self.held_out)
        text = substitute(text, scene.perturb.words)  # synonyms (none: the text as it is)
        model = build(scene, self.emb, self.slots, self.resolution, self.ctx.control_hz, self.physics, self.uniform)
        t1 = time.perf_counter()
        if not plan:
            return Attempt(i, scene, draws, text, model, seconds={"build": t1 - t0})
        plan_seed = int(stream(self.seed, i, "planner").integers(2**31 - 2))
        out = self.task.plan(self.context(scene), scene, model, plan_seed)
        t2 = time.perf_counter()
        att = Attempt(i, scene, draws, text, model, seconds={"build": t1 - t0, "plan": t2 - t1})
        if isinstance(out, str):
            att.failure = out
        else:
            att.plan = out
        return att

    def context(self, scene: Scene) -> PlanContext:
        """The planning context of a scene: the worker's own, or for a moved robot base (`robot_base`) one whose
        embodiment stands where the scene puts it and whose IK works in the turned base's frame."""
        if scene.base == (0.0, 0.0, 0.0):
            return self.ctx
        emb = self.emb.moved(scene.base)
        if self.emb.arms:  # a pair: every mount moved and turned; each arm's IK already solves in its own frame
            return dataclasses.replace(self.ctx, emb=emb)
        turned = TurnedIK(self.ctx.iks[0], scene.base[2])
        return dataclasses.replace(self.ctx, emb=emb, ik=turned, iks=(turned,))

    def executed(self, a: Attempt) -> np.ndarray:
        """(T + latency, A) the joint targets the physics runs for attempt `a`: its plan's actions, with the scene's
        drift, noise and latency (synth.execute.executed)."""
        arm, grip = self.emb.arm_columns, self.emb.gripper_columns
        return executed(a.p.actions, a.scene, self.start, arm, grip, self.ctx.control_hz, self.seed, a.index)

    def execute(self, atts: list[Attempt]) -> list[dict]:
        """Run planned attempts in batches of similar length; judge each; returns per-attempt frames."""
        settle = round(self.task.settle * self.ctx.control_hz)
        results = {}
        for group in self._batches(atts, getattr(self.backend, "spread", 1)):
            runs = [self.executed(a) for a in group]
            T = max(len(r) for r in runs) + settle
            acts = np.stack([np.concatenate([r, np.repeat(r[-1:], T - len(r), 0)]) for r in runs])
            models = self._models(group)
            lay = Layout(models[0], self.emb)
            qpos0 = np.stack([initial_qpos(m, self.emb, lay) for m in models])
            start = np.tile(self.start, (len(group), 1))
            t0 = time.perf_counter()
            out = run(self.backend, models, qpos0, acts, start, substeps(models[0], self.ctx.control_hz), self.scale)
            dt = (time.perf_counter() - t0) / len(group)
            ends = np.array([len(r) + settle + 1 for r in runs])  # each world's own frames; padding after
            # the plan's frame k happens at frame k + latency: judge it there
            late = np.array([a.scene.perturb.action_noise.latency for a in group])
            judged = FrameBatch(out["qpos"], out["qvel"], out["sensordata"], late, ends - late)
            verdicts = self.task.judge_batch([a.p for a in group], judged, lay)
            for w, a in enumerate(group):
                n = int(ends[w])
                fr = Frames(out["qpos"][w, :n], out["qvel"][w, :n], out["sensordata"][w, : n - 1])
                a.failure = "unstable" if out["diverged"][w] else verdicts[w]
                a.seconds["physics"] = dt
                results[a.index] = {"frames": fr, "state0": out["state0"][w], "layout": lay}
        return [results[a.index] for a in atts]

    def _models(self, group: list[Attempt]) -> list[mujoco.MjModel]:
        """The worlds' models as the backend steps them: their own, or with the uniform compile on a backend that
        lets worlds point at different meshes of one model, copies of one model holding every mesh of the batch."""
        models = [a.model for a in group]
        if not (self.uniform and getattr(self.backend, "mesh_pool", False)):
            return models

        def pool(scene: Scene, meshes: list[np.ndarray]) -> mujoco.MjModel:
            return build(scene, self.emb, self.slots, self.resolution, self.ctx.control_hz, self.physics, True, meshes)

        return share_meshes([a.scene for a in group], models, pool)

    def _batches(self, atts: list[Attempt], spread: int = 1) -> list[list[Attempt]]:
        """Worlds stepped together: at most `batch`, whose plans differ by at most `spread` control
        periods, so that padding the shorter ones (physics nobody uses) stays under ~1%."""
        out: list[list[Attempt]] = []
        for a in sorted(atts, key=lambda a: len(a.p.actions)):
            if not out or len(out[-1]) == self.batch or len(a.p.actions) - len(out[-1][0].p.actions) > spread:
                out.append([])
            out[-1].append(a)
        return out

    def episode(self, a: Attempt, res: dict) -> Episode:
        """The written form of a successful attempt: T frames, observation before each action."""
        lay, fr, T = res["layout"], res["frames"], len(a.p.actions)
        q = fr.qpos[:T]
        state = lay.state(q).astype(np.float32)
        grip = np.isin(np.arange(state.shape[1]), self.emb.gripper_columns)
        noisy = a.scene.perturb.state_noise
        std = np.where(grip, noisy.gripper, noisy.joints)
        if std.any():  # what a policy observes is noisy; the physics (and synth.joint_target) is not
            noise = stream(self.seed, a.index, "state_noise").normal(size=state.shape) * std
            state = (state + noise).astype(np.float32)
        s, sens = lay.sensor, fr.sensordata[:T]
        # robot_base: every robot-frame output in this episode's own (moved) base frame
        bases = [m.base_pose(a.scene.base) for m in self.emb.mounts]
        ees = [
            in_base(sens[:, s[f"{m.tcp}_pos"]], sens[:, s[f"{m.tcp}_quat"]], *b).astype(np.float32)
            for m, b in zip(lay.arms, bases, strict=True)
        ]  # per arm (T, 7), in its own base frame
        ee = np.concatenate(ees, axis=1)
        base, yaw = self.emb.base_pose(a.scene.base)  # a single arm's base; a pair's anchor between its arms
        obj = in_base(sens[:, s["obj_pos"]], sens[:, s["obj_quat"]], base, yaw).astype(np.float32)
        labels = {"synth.phase": a.p.phase, "observation.ee_pose": ee, "synth.object_pose": obj}
        action = a.p.actions.astype(np.float32)
        if self.action != "joint_pos":
            labels["synth.joint_target"] = action  # the commanded joint targets (replay reads them, adds any noise)
            cols = np.split(np.arange(state.shape[1]), self.emb.gripper_columns[:-1] + 1)  # each arm's columns
            action = np.concatenate(
                [
                    convert(
                        self.action,
                        a.p.actions[:, c],
                        state[:, c],
                        tcp_poses(a.model, m.qadr, a.p.actions[:, c[:-1]], b[0], m.tcp, b[1]),
                        ees[k],
                    )
                    for k, (m, c, b) in enumerate(zip(lay.arms, cols, bases, strict=True))
                ],
                axis=1,
            )
        meta = {
            "attempt": a.index,
            "seed": self.seed,
            "draws": a.draws,
            "planner": a.p.stats,
            "check": a.p.check,
            "initial_state": res["state0"].tolist(),
        }
        images = {}
        if self.cameras:
            from synth.dataset.stats import image_stats
            from synth.render import render

            images = render(a.model, q, list(self.cameras), self.resolution[0], self.resolution[1])
            meta["image_stats"] = {
                c: {k: np.asarray(v).tolist() for k, v in image_stats(f).items()} for c, f in images.items()
            }
        return Episode(a.index, a.instruction, state, action, labels, images, meta)

    def block(self, indices: list[int], need: int | None = None) -> tuple[list[Episode], list[dict]]:
        """Attempts `indices` -> (successful episodes in index order, one record per attempt).

        Works through them 4 physics batches at a time, so memory does not grow with the block. With
        `need`, stops (one physics batch at a time) once that many episodes succeeded: the records then
        cover a prefix of `indices`.
        """
        chunk = 4 * self.batch if need is None else self.batch
        episodes, records = [], []
        for k in range(0, len(indices), chunk):
            e, r = self._chunk(indices[k : k + chunk])
            episodes += e
            records += r
            if need is not None and len(episodes) >= need:
                break
        return episodes, records

    def attempts(self, indices: list[int]) -> list[Attempt]:
        """Attempts `indices` prepared and planned as this worker plans (batched, or one at a time)."""
        if self.planner != "batched":
            return [self.prepare(i) for i in indices]
        atts = [self.prepare(i, plan=False) for i in indices]
        plan_all(self, atts)
        return atts

    def _chunk(self, indices: list[int]) -> tuple[list[Episode], list[dict]]:
        atts = self.attempts(indices)
        planned = [a for a in atts if a.plan is not None]
        results = dict(zip([a.index for a in planned], self.execute(planned) if planned else [], strict=True))
        episodes, records = [], []
        for a in atts:
            if a.plan is not None and not a.failure:
                t0 = time.perf_counter()
                episodes.append(self.episode(a, results[a.index]))
                a.seconds["episode"] = time.perf_counter() - t0  # labels (+ rendering when cameras are on)
            records.append(
                {
                    "attempt": a.index,
                    "success": a.plan is not None and not a.failure,
                    "reason": a.failure,
                    "seconds": a.seconds,
                    "draws": a.draws,
                }
            )
        return episodes, records
