"""Physics mode's run of a declared skill script (synth/skill.py) for one attempt: the key configurations by IK,
straight segments checked on the scene's MuJoCo model (planners/collision.py), transits planned with OMPL where their
straight line collides (planners/transit.py)."""

from __future__ import annotations

import numpy as np

from synth.embodiment import Embodiment
from synth.grasps import Grasp
from synth.planners import transit
from synth.planners.collision import Checker
from synth.pose import yaw_matrix
from synth.skill import FLIP, Script, Segment, place_tcp


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
