"""Physics mode's run of a declared skill script (synth/skill.py) for one attempt: the key configurations by IK,
straight segments checked on the scene's MuJoCo model (planners/collision.py), transits planned with OMPL where their
straight line collides (planners/transit.py). A script with a Cartesian line (push, the drawers) is planned whole by
plan_line and timed by timed."""

from __future__ import annotations

import numpy as np

from synth.embodiment import Embodiment
from synth.grasps import Grasp
from synth.planners import transit
from synth.planners.collision import Checker
from synth.planners.timing import through
from synth.pose import yaw_matrix
from synth.skill import FLIP, LINE_FLIP, START, Script, Segment, line_points, place_tcp
from synth.task import Plan


def key_configurations(ik, script: Script, g: Grasp, centre, place_centre, base, q_home) -> dict | None:
    """{key name: joints (dof,) [rad]} of the script's key poses for grasp g, the object's centre at `centre` (3,)
    [m] going to `place_centre` (3,) [m]: the first solved from q_home, each other from the one before it, with
    ik (a synth.ik.IK, or pipeline.TurnedIK) in the frame of the base at `base` (3,) [m]; None where one has no
    solution or flips the wrist on a straight segment."""
    pos = script.positions(g.pos, g.rot[:, 2], place_tcp(g.pos, centre, place_centre))
    straight = script.straight_keys()
    q, prev = {}, q_home
    for k, name in enumerate(script.names):
        sol = ik.solve(pos[k] - base, g.rot, prev)
        if sol is None:
            return None
        if name in straight and np.abs(sol - prev).max() > FLIP:
            return None  # a wrist flip on a short straight move
        q[name] = prev = sol
    return q


def pair_configurations(iks, script: Script, grasps: list[tuple], arms: list, homes: list) -> dict | None:
    """{key name: joints of every arm (dof of all arms,) [rad]} of the script's key poses, each arm's from its own
    grasp (position (3,) [m], rotation (3, 3), world), solved by its IK in its base frame (arms: each arm's base
    position `base` (3,) [m] and yaw `yaw` [rad]), the first from its home, each other from the one before it;
    None where one has no solution or flips the wrist on a straight segment."""
    straight = script.straight_keys()
    per_arm = []
    for arm, ik, home, (pos, rot) in zip(arms, iks, homes, grasps, strict=True):
        R = yaw_matrix(-arm.yaw)  # world -> this arm's base frame
        keys = script.positions(pos, rot[:, 2], pos)
        prev, qs = np.array(home), []
        for k, name in enumerate(script.names):
            sol = ik.solve(R @ (keys[k] - arm.base), R @ rot, prev)
            if sol is None or (name in straight and np.abs(sol - prev).max() > FLIP):
                return None  # unreachable, or a wrist flip on a short straight move
            qs.append(prev := sol)
        per_arm.append(qs)
    return {name: np.concatenate([qs[k] for qs in per_arm]) for k, name in enumerate(script.names)}


def clear(checker: Checker, seg: Segment, q: dict, touch: dict) -> bool:
    """Is the straight segment seg between the key configurations q clear, with its touches allowed (touch: the
    geoms of each name of synth.skill.TOUCH) and its margin kept?"""
    checker.allow([gid for name in seg.touch for gid in touch[name]])
    checker.margin(seg.margin)
    ok = all(checker.segment(q[a], q[b]) for a, b in seg.legs())
    checker.margin(0.01)
    return ok


def walk(
    checker: Checker,
    script: Script,
    q: dict,
    entry: np.ndarray,
    touch: dict,
    carried: tuple[int, int, int],
    emb: Embodiment,
    seed: int,
    skip: list[int],
) -> tuple[dict | None, dict]:
    """The script's segments but those indexed `skip` (already checked) against the checker: straight ones
    checked, transits planned (the first to `entry`, with seeds seed, seed + 1, ...), the object attached at the
    hold that closes the gripper and detached at the one that opens it. ({transit phase: waypoints (K, dof)},
    {transit phase: planner stats}); (None, stats) at the first that fails, the object detached. q: {key name or
    synth.skill.START: joints (dof,) [rad]}; touch: the geoms of each name of synth.skill.TOUCH; carried: (object
    geom, its qpos address, the hand body)."""
    geom, qadr, hand = carried
    paths: dict = {}
    stats: dict = {}
    checked: set = set()
    transits = 0
    for k, s in enumerate(script.segments):
        if k in skip:
            checked.add((s.start, s.end, s.margin))
        elif s.motion == "hold":
            if s.grip == "closed":
                checker.attach(geom, qadr, hand, q[s.start])
            else:
                checker.detach()
        elif s.motion == "transit":
            checker.allow([gid for name in s.touch for gid in touch[name]])
            end = entry if k == 0 else q[s.end]
            path, stats[s.phase] = transit.plan(q[s.start], end, checker, emb.lower, emb.upper, seed + transits)
            transits += 1
            if path is None:
                checker.detach()
                return None, stats
            paths[s.phase] = path
        elif (s.end, s.start, s.margin) not in checked:  # a retrace of a checked segment needs no second check
            if not clear(checker, s, q, touch):
                checker.detach()
                return None, stats
            checked.add((s.start, s.end, s.margin))
    return paths, stats


def line_configurations(ik, script: Script, rot, start, end, base, q_home) -> tuple[dict, np.ndarray] | None:
    """({key name: joints (dof,) [rad]}, the line's waypoint configurations (n, dof)) of a line script for the hand
    at rotation rot (3, 3) along start (3,) -> end (3,) [m, world]: the first key solved from q_home (dof,), each
    other key from the one before it, the line's end through its waypoints, each from the one before;
    None where one has no solution or flips the wrist (a key reached by a straight segment: script.flip, a
    waypoint: LINE_FLIP)."""
    line = script.line
    pts = line_points(np.asarray(start, float), np.asarray(end, float), line.step)
    pos = script.line_positions(pts[0], pts[-1])
    straight = script.straight_keys()
    q: dict = {}
    prev, path = q_home, None
    for k, name in enumerate(script.names):
        if name == line.end:  # along the line: every waypoint from the one before
            path = [prev]
            for p in pts[1:]:
                sol = ik.solve(p - base, rot, prev)
                if sol is None or np.abs(sol - prev).max() > LINE_FLIP:
                    return None
                path.append(prev := sol)
            q[name] = prev
            continue
        sol = ik.solve(pos[k] - base, rot, prev)
        if sol is None or (name in straight and np.abs(sol - prev).max() > script.flip):
            return None
        q[name] = prev = sol
    assert path is not None, "the line's end key comes after its start"
    return q, np.stack(path)


def line_clear(checker: Checker, script: Script, q: dict, path: np.ndarray, touch: dict) -> bool:
    """Are the script's straight and line segments clear, in order (a line: each waypoint to the next), with their
    touches allowed and margins kept? q: {key name: joints (dof,)}, path (n, dof) the line's waypoints."""
    for s in script.segments:
        if s.motion == "straight" and not clear(checker, s, q, touch):
            return False
        if s.motion == "line":
            checker.allow([gid for name in s.touch for gid in touch[name]])
            checker.margin(s.margin)
            ok = all(checker.segment(a, b) for a, b in zip(path[:-1], path[1:], strict=True))
            checker.margin(0.01)
            if not ok:
                return False
    return True


def plan_line(ik, checker: Checker, script: Script, emb: Embodiment, touch: dict, line, rots, seed: int) -> dict | str:
    """A line script for the line (start, end) (3,) [m, world], the hand at the first rotation of rots (each
    (3, 3)) whose keys solve, whose segments are clear and whose transits plan (seeds seed, seed + 1, ...):
    {"q": {key or START: joints}, "path": the line's waypoints (n, dof), "paths": {transit phase: (K, dof)},
    "stats": {transit phase: planner stats}, "option": the index into rots}; else "ik_failure" or "no_path".
    ik: a synth.ik.IK (or pipeline.TurnedIK); touch: the geoms of each name of synth.skill.TOUCH."""
    base, _ = emb.base_pose()  # (a turned base's yaw is its IK's: pipeline.TurnedIK)
    q_home = np.array(emb.home)
    reason = "ik_failure"
    for option, rot in enumerate(rots):
        found = line_configurations(ik, script, rot, *line, base, q_home)
        if found is None:
            continue
        q, path = found
        if not line_clear(checker, script, q, path, touch):
            reason = "no_path"
            continue
        q[START] = q_home
        paths, stats = {}, {}
        for s in (s for s in script.segments if s.motion == "transit"):
            checker.allow([gid for name in s.touch for gid in touch[name]])
            paths[s.phase], stats[s.phase] = transit.plan(q[s.start], q[s.end], checker, emb.lower, emb.upper, seed)
            seed += 1
            if paths[s.phase] is None:
                break
        else:
            return {"q": q, "path": path, "paths": paths, "stats": stats, "option": option}
        reason = "no_path"
    return reason


def timed(
    script: Script, plan: dict, emb: Embodiment, hz: float, phases: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(actions (T, dof + 1): joints [rad] and gripper width [m], phase (T,) index into phases) of a line script's
    plan (plan_line's): each motion timed at its segment's speeds (toppra through a line's waypoints and a
    transit's path, ruckig point to point), each hold ramping the gripper over its share of its duration."""
    width = {"open": emb.gripper.stroke if script.open_width is None else script.open_width, "closed": 0.0}
    q, segs, grip = plan["q"], [], width["open"]
    for s in script.segments:
        g1 = width[s.grip]
        if s.motion == "hold":
            n = max(2, round(s.duration * hz))
            k = max(1, round(s.ramp * n))
            g = np.r_[np.linspace(grip, g1, k + 1)[1:], np.full(n - k, g1)]
            arm = np.tile(q[s.start], (n, 1))
        else:
            way = {"transit": plan["paths"].get(s.phase), "line": plan["path"]}.get(s.motion)
            way = np.stack([q[s.start], q[s.end]]) if way is None else way
            arm = through(way, emb.vmax * s.speed[0], emb.amax * s.speed[1], hz)
            g = np.full(len(arm), g1)
        segs.append((s.phase, arm, g))
        grip = g1
    actions = np.concatenate([np.c_[arm, g] for _, arm, g in segs])
    phase = np.concatenate([np.full(len(arm), phases.index(p)) for p, arm, _ in segs])
    return actions, phase.astype(np.int64)


def line_plan(task, ctx, checker: Checker, touch: dict, scene, seed: int, phases: tuple[str, ...]) -> Plan | str:
    """Physics mode's plan of a line task (push, the drawers: `script()`, `hand_line`, `line_check`) on the scene's
    checker (its state set) with touch {name of TOUCH: geom ids}: the keys and the line by plan_line, timed."""
    ik, emb = ctx.ik, ctx.emb
    check, facts = task.line_check(scene)
    stats: dict = {**facts}
    iterations = ik.iterations
    script = task.script()
    start, end, rots = task.hand_line(scene)
    got = plan_line(ik, checker, script, emb, touch, (start, end), rots, seed)
    if isinstance(got, str):
        return got
    stats.update(got["stats"], hand_sign=(1.0, -1.0)[got["option"]])
    stats["ik_iterations"] = ik.iterations - iterations
    stats["collision_checks"] = checker.checks
    actions, phase = timed(script, got, emb, ctx.control_hz, phases)
    stats["duration_s"] = len(actions) / ctx.control_hz
    return Plan(actions=actions, phase=phase, check=check, stats=stats)
