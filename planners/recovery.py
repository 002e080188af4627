"""The expert's recovery moves (randomizers regrasp and near_miss): the key configurations of a first grasp
aimed beside the object, or of a descent stopped beside and above it, checked for collisions. Positions are
world-frame metres; `g` is the grasp (pos (3,), rot (3, 3)); `q` the move's key configurations by name; `hover`
and `pre` the task's approach distances [m] back along the grasp axis."""

from __future__ import annotations

import numpy as np


def miss_chain(
    ik, checker, g, q: dict, miss, base: np.ndarray, touch: list[int], hover: float, pre: float
) -> dict | None:
    """Key configurations of a grasp aimed (dx, dy) [m] beside g and then lifted `up` [m] ({"hover", "pre",
    "grasp", "up"}), each solved from the previous one, or None if one has no IK solution, flips the wrist or
    collides on the way (the fingers may touch the geoms `touch`: the object and the table)."""
    dx, dy, up = miss.dx, miss.dy, miss.up
    pos = g.pos + np.array([dx, dy, 0.0])
    z = g.rot[:, 2]
    poses = [("hover", pos - hover * z), ("pre", pos - pre * z), ("grasp", pos)]
    poses.append(("up", pos + [0.0, 0.0, up]))
    m = solved(ik, poses, g.rot, base, q["hover"])
    if m is None:
        return None
    checker.allow(touch)
    checker.margin(0.003)
    path = [m["hover"], m["pre"], m["grasp"], m["up"], q["pre"]]
    clear = all(checker.segment(a, b) for a, b in zip(path[:-1], path[1:], strict=True))
    checker.margin(0.01)
    return m if clear else None


def near_chain(ik, checker, g, q: dict, near, base: np.ndarray, table: int, hover: float, pre: float) -> dict | None:
    """Key configurations of a descent aimed (dx, dy) [m] beside g and stopped dz [m] above it ({"hover",
    "pre", "stop"}), each solved from the previous one, or None if one has no IK solution, flips the wrist, or
    the way down or on to the grasp q["grasp"] comes within 3 mm of anything: the object included, as the stop
    must not disturb it, and the table excepted on the last stretch, where the fingers reach it as in any grasp."""
    dx, dy, dz = near.dx, near.dy, near.dz
    pos = g.pos + np.array([dx, dy, 0.0])
    z = g.rot[:, 2]
    poses = [("hover", pos - hover * z), ("pre", pos - pre * z), ("stop", pos + [0.0, 0.0, dz])]
    n = solved(ik, poses, g.rot, base, q["hover"])
    if n is None:
        return None
    checker.allow([])
    checker.margin(0.003)
    path = [n["hover"], n["pre"], n["stop"], q["grasp"]]
    clear = all(checker.segment(a, b) for a, b in zip(path[:-2], path[1:-1], strict=True))
    checker.allow([table])
    clear = clear and checker.segment(n["stop"], q["grasp"])
    checker.margin(0.01)
    return n if clear else None


def solved(ik, poses: list[tuple[str, np.ndarray]], rot: np.ndarray, base: np.ndarray, prev: np.ndarray) -> dict | None:
    """{name: joints} for the TCP poses (name, position [m, world]) with orientation rot (3, 3), each solved from
    the previous one (the first from prev), or None if one has no IK solution or flips the wrist (a joint moves
    more than 1.2 rad) on the way."""
    out = {}
    for name, p in poses:
        sol = ik.solve(p - base, rot, prev)
        if sol is None or np.abs(sol - prev).max() > 1.2:
            return None
        out[name] = prev = sol
    return out
