"""pick_place: pick one object up and put it in a coloured region or a low tray.

Skill script: approach -> pre_grasp -> grasp -> close -> lift -> transit -> place -> open -> retreat.
With the `regrasp` randomizer's miss drawn: miss (approach, come down and close beside the object) -> regrasp
(lift the hand, open, move over the object) -> grasp -> close -> lift -> ... as above. With the `near_miss`
randomizer's stop drawn: miss (approach, come down beside and above the grasp, rest) -> grasp (straight to it) ->
close -> ... as above.
Success is judged on the physics only: lifted, carried, resting inside the target, gripper open.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from synth import grasps, judging
from synth.keys import key
from synth.language import refer, relation
from synth.planners.collision import Checker
from synth.planners.recovery import miss_chain, near_chain
from synth.planners.script import clear, key_configurations, walk
from synth.planners.timing import through
from synth.randomize import pick
from synth.registry import task
from synth.skill import START, Key, Placement, Script, Segment
from synth.tabletop.compiler import Layout, initial_qpos
from synth.task import FrameBatch, Frames, Plan, PlanContext, Task
from synth.types import Obj, Scene, Target

PHASES = ("approach", "pre_grasp", "grasp", "close", "lift", "transit", "place", "open", "retreat", "miss", "regrasp")
# (velocity, acceleration) as fractions of the arm's limits, per motion phase
SPEEDS = {
    "approach": (0.9, 0.7),
    "pre_grasp": (0.7, 0.7),
    "grasp": (0.45, 0.55),
    "lift": (0.65, 0.65),
    "transit": (0.9, 0.7),
    "place": (0.45, 0.55),
    "retreat": (0.7, 0.7),
}
MISS_HELD = 0.02  # [m] a deliberate miss (randomizers/regrasp.py) that raises its object this much held it

TRAIN = (
    "pick up the {obj} and place it in the {target}",
    "put the {obj} in the {target}",
    "move the {obj} to the {target}",
    "place the {obj} into the {target}",
    "grab the {obj} and put it in the {target}",
    "pick the {obj} up and drop it in the {target}",
    "take the {obj} and move it to the {target}",
    "transfer the {obj} to the {target}",
    "set the {obj} down in the {target}",
    "lift the {obj} and place it in the {target}",
    "the {obj} goes in the {target}",
    "put the {obj} {rel} in the {target}",
    "could you move the {obj} into the {target}",
    "relocate the {obj} to the {target}",
    "pick up the {obj} {rel} and put it in the {target}",
    "carry the {obj} over to the {target}",
    "get the {obj} into the {target}",
    "place the {obj} in the {target}, please",
)
HELD_OUT = (
    "I need the {obj} in the {target}",
    "bring the {obj} over to the {target}",
    "deposit the {obj} in the {target}",
    "the {target} should end up holding the {obj}",
    "find the {obj} and leave it in the {target}",
    "shift the {obj} into the {target}",
)


def target_phrase(tg: Target) -> str:
    return f"{tg.colour} {'square' if tg.kind == 'region' else tg.kind}"


def surface_z(scene: Scene) -> float:
    """Height of the surface inside the target [m]."""
    return scene.table.height + (0.006 if scene.target.walled else 0.0008)


@task("pick_place")
@dataclass(frozen=True)
class PickPlace(Task):
    """Pick the object up and place it in the target region or tray."""

    description = "pick one object up and place it in a coloured square or a low tray"
    phases = PHASES
    templates = TRAIN
    held_out_templates = HELD_OUT
    # [s] 5 ms under 20 Hz control labels as 1 ms does on 99.9% of 2,009 attempts (benchmarks/physics_step.py)
    physics_step = 0.005
    kinematic = True
    hover: float = key(0.10, "[m] back along the approach axis from the grasp: where the approach ends")
    pre_grasp: float = key(0.05, "[m] back along the approach axis: where the slow insertion starts; < hover")
    lift: float = key(0.12, "[m] straight up after closing")
    grasp_below: float = key(0.0, "[m] the TCP closes this far below the object's centre where palm and table allow")
    above_place: float = key(0.08, "[m] the transit ends this high above the place pose")
    release_clearance: float = key(0.008, "[m] object bottom above the surface when the gripper opens")
    close_time: float = key(0.35, "[s] the fingers close over this long")
    stop_time: float = key(0.2, "[s] a near miss (randomizers.near_miss) rests this long where it stopped")
    open_time: float = key(0.25, "[s] the fingers open over this long")
    speed: float = key(1.0, "scale on every phase's velocity and acceleration (capped at the arm's limits); > 0")
    settle: float = 0.4  # [s]

    def scene(self) -> Scene:
        return Scene(objects=(Obj(name="obj0", shape="box", size=(0.025, 0.02, 0.025), xy=(0.5, 0.12)),))

    def failure_reasons(self) -> tuple[str, ...]:
        return (
            "ik_failure",
            "no_path",
            "miss_held",
            "grasp_slip",
            "dropped",
            "placed_outside",
            "not_released",
            "unstable",
        )

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str:
        template = str(pick(rng, self.held_out_templates if held_out else self.templates))
        rel = relation(scene, 0)
        if "{rel}" in template and not rel:
            template = template.replace(" {rel}", "")
        return template.format(obj=refer(scene, 0), target=target_phrase(scene.target), rel=rel)

    def rest_band(self, scene: Scene, i: int = 0) -> tuple[float, float]:
        """Heights of objects[i]'s centre [m] that count as resting on the target's surface."""
        z = surface_z(scene) + scene.objects[i].half_height
        return z - 0.015, z + 0.015

    def place_xy(self, scene: Scene) -> tuple[float, float]:
        """Where the object's centre goes, x, y [m]."""
        return scene.target.pos

    def place_check(self, scene: Scene) -> dict:
        """What judge needs to know of the place target (JSON-able)."""
        tg = scene.target
        return {"target_xy": list(tg.pos), "target_half": list(tg.size), "rest_band": list(self.rest_band(scene))}

    def release_z(self, scene: Scene) -> float:
        """Height of the object's centre when the gripper opens [m]."""
        return surface_z(scene) + scene.objects[0].half_height + self.release_clearance

    def rest_z(self, scene: Scene) -> float:
        """Height of the object's centre resting on the target's surface [m]."""
        return surface_z(scene) + scene.objects[0].half_height

    def placed(self, scenes: list[Scene], centre: np.ndarray) -> np.ndarray:
        """(E,) whether objects[0] at rest with its centre at centre (E, 1, 3) [m] (the one pick-and-place) counts as
        placed in each scene: inside the target's outline, within its rest band (the kinematic mode's verdict)."""
        centre = centre[:, 0]
        f = np.array([(*sc.target.pos, *sc.target.size, *self.rest_band(sc)) for sc in scenes]).reshape(-1, 6)
        inside = np.all(np.abs(centre[:, :2] - f[:, :2]) <= f[:, 2:4], axis=1) & (f[:, 4] < centre[:, 2])
        return inside & (centre[:, 2] < f[:, 5])

    # ---------------------------------------------------------------- the skill script
    def script(self) -> Script:
        """approach -> pre_grasp -> grasp -> close -> lift -> transit -> place -> open -> retreat, one pick-and-place
        as both modes run it (synth/skill.py)."""
        v = {p: (min(1.0, f * self.speed), min(1.0, a * self.speed)) for p, (f, a) in SPEEDS.items()}
        keys = (
            Key("hover", "grasp", approach=-self.hover),
            Key("pre", "grasp", approach=-self.pre_grasp),
            Key("grasp", "grasp"),
            Key("lift", "grasp", up=self.lift),
            Key("above", "place", up=self.above_place),
            Key("place", "place"),
        )
        into = ("object", "table")  # the fingers close in on the object, just above the table
        return Script(
            keys,
            (
                Segment("approach", START, "hover", "transit", v["approach"]),
                Segment("pre_grasp", "hover", "pre", "straight", v["pre_grasp"], touch=into, margin=0.003),
                Segment("grasp", "pre", "grasp", "straight", v["grasp"], touch=into, margin=0.003),
                Segment("close", "grasp", "grasp", "hold", grip="closed", duration=self.close_time, ramp=0.6),
                Segment("lift", "grasp", "lift", "straight", v["lift"], "closed", touch=("table",)),
                Segment("transit", "lift", "above", "transit", v["transit"], "closed"),
                Segment("place", "above", "place", "straight", v["place"], "closed", touch=("place",), margin=0.003),
                Segment("open", "place", "place", "hold", grip="open", duration=self.open_time, ramp=0.5),
                Segment("retreat", "place", "above", "straight", v["retreat"], touch=("object", "place"), margin=0.003),
            ),
        )

    # ---------------------------------------------------------------- planning
    def placements(self, scene: Scene) -> list[Placement]:
        """The pick-and-places of the skill script, in order. One for pick_place: objects[0] into the target."""
        return [Placement(0, self.place_xy(scene), self.release_z(scene), self.rest_z(scene))]

    def moves(self, scene: Scene, layout: Layout) -> list[tuple[int, tuple[float, float], float, list[int]]]:
        """The placements with their geoms: (object index, where its centre goes x, y [m], its centre's height
        when released [m], geoms it may touch while set down: the table, its target's, the objects it goes on)."""
        out = []
        for p in self.placements(scene):
            target = [] if p.target is None else list(layout.targets_geoms[p.target])
            out.append((p.object, p.xy, p.release, [layout.table_geom, *target, *(layout.obj_geom[j] for j in p.on)]))
        return out

    def plan(self, ctx: PlanContext, scene: Scene, model: mujoco.MjModel, seed: int) -> Plan | str:
        emb = ctx.emb
        lay = Layout(model, emb)
        checker = Checker(model, lay.arm_qadr, lay.robot_bodies)
        checker.set_state(initial_qpos(model, emb, lay))
        ik_start = ctx.ik.iterations
        done: list[dict] = []
        q_start = np.array(emb.home)
        for k, (i, xy, z, geoms) in enumerate(self.moves(scene, lay)):
            miss = scene.perturb.regrasp if k == 0 and scene.perturb.regrasp.up > 0 else None  # the first pick only
            near = scene.perturb.near_miss if k == 0 and scene.perturb.near_miss.dz > 0 and miss is None else None
            move = self._move(ctx, lay, checker, scene, i, xy, z, geoms, q_start, seed + 2 * k, miss, near)
            if isinstance(move, str):
                return move
            done.append(move)
            q_start = move["q"][self.script().segments[-1].end]  # the next move starts where this one ends
        stats = dict(done[0]["stats"])
        if len(done) > 1:
            stats["moves"] = [m["stats"] for m in done[1:]]
        stats["ik_iterations"] = ctx.ik.iterations - ik_start
        stats["collision_checks"] = checker.checks
        return self._timed(ctx, done, scene, stats)

    def _move(
        self, ctx, lay, checker, scene, i, place_xy, release_z, place_geoms, q_start, seed, miss=None, near=None
    ) -> dict | str:
        """One pick-and-place of objects[i] from where the checker holds it, starting at joints q_start: the
        script's key configurations and transit paths, {"q", "paths", "grasp", "miss", "near", "stats"}, or the
        failure reason. The straight segments into the grasp are checked first, then the approach is planned
        (to a recovery's first pose where there is one), then the rest in order: the object is carried from the
        hold that closes the gripper to the one that opens it. A straight segment retracing one already checked
        is not checked again (the checker's fingers stay open). miss: MissedGrasp [m] of a first grasp aimed
        beside the object (see randomizers/regrasp.py), or None; "miss" holds its key configurations, or None where
        that grasp has no clear path (then the move is planned without it; stats["regrasp"] says which).
        near: StoppedDescent [m] of a first descent stopped beside and above the grasp (see
        randomizers/near_miss.py), or None; its key configurations go to "near" as "miss" does
        (stats["near_miss"]). On success the checker holds the object where it is released."""
        emb, ik, script = ctx.emb, ctx.ik, self.script()
        base, _ = emb.base_pose()  # (a turned base's yaw is its IK's: pipeline.TurnedIK)
        q_home = np.array(emb.home)
        obj, geom, qadr = scene.objects[i], int(lay.obj_geom[i]), int(lay.obj_qadr[i])
        touch = {"object": [geom], "table": [lay.table_geom], "place": list(place_geoms)}
        resting = checker.data.qpos[qadr : qadr + 7].copy()
        centre = resting[:3]
        max_depth, max_width = grasps.reach(emb.gripper)
        segs = script.segments
        close = next(k for k, s in enumerate(segs) if s.motion == "hold")
        into = [k for k in range(close) if segs[k].motion == "straight"]  # checked before the approach is planned
        reason = "ik_failure"
        place = np.array([*place_xy, release_z])
        for g in grasps.candidates(obj, scene.table.height, base[:2], max_depth, max_width, below=self.grasp_below):
            q = key_configurations(ik, script, g, centre, place, base, q_home)
            if q is None:
                continue
            at = {**q, START: q_start}
            if not all(clear(checker, segs[k], at, touch) for k in into):
                reason = "no_path"
                continue
            m = (
                None
                if miss is None
                else miss_chain(ik, checker, g, q, miss, base, [geom, lay.table_geom], self.hover, self.pre_grasp)
            )
            n = (
                None
                if near is None
                else near_chain(ik, checker, g, q, near, base, lay.table_geom, self.hover, self.pre_grasp)
            )
            checker.allow([])
            entry = (m or n or q)[segs[0].end]
            paths, st = walk(checker, script, at, entry, touch, (geom, qadr, lay.hand_body), emb, seed, into)
            if paths is None:
                checker.data.qpos[qadr : qadr + 7] = resting
                reason = "no_path"
                continue
            checker.allow([])
            stats = {"grasp": g.kind, "grasp_width": g.width, **st}
            if miss is not None:
                stats["regrasp"] = m is not None
            if near is not None:
                stats["near_miss"] = n is not None
            return {
                "q": q,
                "miss": m,
                "near": n,
                "paths": paths,
                "grasp": g,
                "stats": stats,
                "object": i,
                "z0": float(centre[2]),
            }
        return reason

    def _timed(self, ctx, moves: list[dict], scene: Scene, stats: dict) -> Plan:
        emb, hz, script = ctx.emb, ctx.control_hz, self.script()
        vmax, amax = emb.vmax, emb.amax
        open_w = emb.gripper.stroke
        speed = {s.phase: s.speed for s in script.segments}
        segs: list[tuple[str, np.ndarray, np.ndarray]] = []

        def move(phase, path, grip, v_a):
            arm = through(path, vmax * v_a[0], amax * v_a[1], hz)
            segs.append((phase, arm, np.full(len(arm), grip)))

        def hold(phase, qh, g0, g1, duration, ramp):
            n = max(2, round(duration * hz))
            k = max(1, round(ramp * n))
            grip = np.r_[np.linspace(g0, g1, k + 1)[1:], np.full(n - k, g1)]
            segs.append((phase, np.tile(qh, (n, 1)), grip))

        lift_ends, transit_ends, regrasp_end = [], [], None
        for m in moves:
            q, mq, nq = m["q"], m.get("miss"), m.get("near")
            done: tuple[str, ...] = ()  # the script's segments a recovery has replaced
            if nq is not None:  # come down beside and above the grasp, stop: then straight to it
                move("miss", m["paths"]["approach"], open_w, speed["approach"])
                move("miss", np.stack([nq["hover"], nq["pre"]]), open_w, speed["pre_grasp"])
                move("miss", np.stack([nq["pre"], nq["stop"]]), open_w, speed["grasp"])
                hold("miss", nq["stop"], open_w, open_w, self.stop_time, 0.5)
                move("grasp", np.stack([nq["stop"], q["grasp"]]), open_w, speed["grasp"])
                done = ("approach", "pre_grasp", "grasp")
            elif mq is not None:  # close beside the object, lift the hand, open, move over the object: then as always
                move("miss", m["paths"]["approach"], open_w, speed["approach"])
                move("miss", np.stack([mq["hover"], mq["pre"]]), open_w, speed["pre_grasp"])
                move("miss", np.stack([mq["pre"], mq["grasp"]]), open_w, speed["grasp"])
                hold("miss", mq["grasp"], open_w, 0.0, self.close_time, 0.6)
                move("regrasp", np.stack([mq["grasp"], mq["up"]]), 0.0, speed["grasp"])
                hold("regrasp", mq["up"], 0.0, open_w, self.open_time, 0.5)
                move("regrasp", np.stack([mq["up"], q["pre"]]), open_w, speed["pre_grasp"])
                regrasp_end = sum(len(s[1]) for s in segs)
                done = ("approach", "pre_grasp")
            grip = open_w
            for s in script.segments:
                g1 = open_w if s.grip == "open" else 0.0
                if s.phase in done:
                    pass
                elif s.motion == "hold":
                    hold(s.phase, q[s.start], grip, g1, s.duration, s.ramp)
                elif s.motion == "transit":
                    move(s.phase, m["paths"][s.phase], g1, s.speed)
                else:
                    move(s.phase, np.stack([q[s.start], q[s.end]]), g1, s.speed)
                grip = g1
                if s.phase == "lift":
                    lift_ends.append(sum(len(x[1]) for x in segs))
                if s.phase == "transit":
                    transit_ends.append(sum(len(x[1]) for x in segs))
        actions = np.concatenate([np.c_[arm, grip] for _, arm, grip in segs])
        phase = np.concatenate([np.full(len(arm), PHASES.index(p)) for p, arm, _ in segs])
        check = {
            "z0": moves[-1]["z0"],
            "lift_end": lift_ends[-1],
            "transit_end": transit_ends[-1],
            **self.place_check(scene),
            "grasp_width": float(moves[-1]["grasp"].width),
        }
        if regrasp_end is not None:  # the first move's miss: its object must not have been lifted by then
            check["regrasp"] = {"end": regrasp_end, "object": moves[0]["object"], "z0": moves[0]["z0"]}
        if len(moves) > 1:  # per pick-and-place, in order
            check["moves"] = [
                {"object": m["object"], "z0": m["z0"], "lift_end": le, "transit_end": te}
                for m, le, te in zip(moves, lift_ends, transit_ends, strict=True)
            ]
        stats["duration_s"] = len(actions) / hz
        return Plan(actions=actions, phase=phase.astype(np.int64), check=check, stats=stats)

    # ---------------------------------------------------------------- judging
    def carried(self, check: dict, frames: Frames, layout: Layout) -> str:
        """'' if every pick-and-place of the plan lifted its object and still held it at the end of its
        transit, else "unstable", "miss_held" (a recovery demonstration's deliberate miss lifted the object: it
        was no miss), "grasp_slip" or "dropped"; then "not_released" if the gripper ended closed on the last
        object."""
        if not np.isfinite(frames.qpos).all():
            return "unstable"
        c = check
        if "regrasp" in c:
            r = c["regrasp"]
            if frames.qpos[: r["end"], int(layout.obj_qadr[r["object"]]) + 2].max() > r["z0"] + MISS_HELD:
                return "miss_held"
        for m in c.get("moves") or [{"object": 0, **{k: c[k] for k in ("z0", "lift_end", "transit_end")}}]:
            z = frames.qpos[:, int(layout.obj_qadr[m["object"]]) + 2]
            if z[m["lift_end"]] < m["z0"] + 0.5 * self.lift:
                return "grasp_slip"
            if z[m["transit_end"]] < m["z0"] + 0.5 * self.lift:
                return "dropped"
        if frames.qpos[-1, layout.finger_qadr].sum() < c["grasp_width"] + 0.004:
            return "not_released"
        return ""

    def judge(self, plan: Plan, frames: Frames, layout: Layout) -> str:
        c = plan.check
        why = self.carried(c, frames, layout)
        if why:
            return why
        a = int(layout.obj_qadr[0])
        pos = frames.qpos[:, a : a + 3]
        d = int(layout.obj_dadr[0])
        speed = float(np.linalg.norm(frames.qvel[-1, d : d + 3]))
        inside = np.all(np.abs(pos[-1, :2] - np.asarray(c["target_xy"])) <= np.asarray(c["target_half"]))
        resting = c["rest_band"][0] < pos[-1, 2] < c["rest_band"][1] and speed < 0.05
        return "" if inside and resting else "placed_outside"

    def judge_batch(self, plans: list[Plan], frames: FrameBatch, layout: Layout) -> list[str]:
        """judge over the world axis (synth/judging.py); a recovery or multi-move plan, or a task whose judge is
        its own, world by world."""
        if type(self).judge is not PickPlace.judge:
            return super().judge_batch(plans, frames, layout)
        out = judging.pick_place(plans, frames, layout, self.lift)
        for w in np.flatnonzero(~judging.one_move(plans)):
            out[w] = self.judge(plans[w], frames.world(w), layout)
        return [str(x) for x in out]

    def outcome(self, scene: Scene, frames: Frames, layout: Layout) -> str:
        """The plan-free predicate (for policies): '' if at the last frame (the settled one, as judge reads it)
        the object rests inside the target, having been lifted, with the gripper opened wider than it held the
        object, else the failure reason."""
        a, d = int(layout.obj_qadr[0]), int(layout.obj_dadr[0])
        pos = frames.qpos[:, a : a + 3]
        speed = np.linalg.norm(frames.qvel[:, d : d + 3], axis=1)
        tg = scene.target
        inside = np.all(np.abs(pos[:, :2] - np.asarray(tg.pos[:2])) <= np.asarray(tg.size[:2]), axis=1)
        lo, hi = self.rest_band(scene)
        resting = (lo < pos[:, 2]) & (pos[:, 2] < hi) & (speed < 0.05)
        return self.released(frames, layout, inside & resting)

    def released(
        self, frames: Frames, layout: Layout, placed: np.ndarray, count: int = 1, otherwise: str = "placed_outside"
    ) -> str:
        """The end of a plan-free outcome, given `placed` (F,): the frames where every object rests where it
        should. '' if it holds at the last frame (the settled one, which judge reads too), after each of
        objects[:count] was lifted (half of `lift` above where it lay at the first frame), with the gripper
        opened wider than at the last of those lifts; else "unstable", "not_lifted", "not_released" (placed at
        the last frame, the gripper not opened), or `otherwise`."""
        if not np.isfinite(frames.qpos).all():
            return "unstable"
        t0 = 0
        for i in range(count):
            z = frames.qpos[:, int(layout.obj_qadr[i]) + 2]
            lifted = np.flatnonzero(z >= z[0] + 0.5 * self.lift)
            if not len(lifted):
                return "not_lifted"
            t0 = max(t0, int(lifted[0]))
        fingers = frames.qpos[:, layout.finger_qadr].sum(1)
        if not (len(fingers) - 1 > t0 and placed[-1]):
            return otherwise
        return "" if fingers[-1] > fingers[t0] + 0.004 else "not_released"
