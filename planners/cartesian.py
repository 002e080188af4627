"""A straight Cartesian line for the hand, solved as IK waypoints (push, drawers)."""

from __future__ import annotations

import numpy as np


def line_ik(ik, line: np.ndarray, rot: np.ndarray, q_home: np.ndarray, hover: float, base: np.ndarray):
    """Joint configurations for a hand held at rotation `rot` (3, 3) along `line` (n, 3) [m, world]: the pose
    `hover` [m] above its start (from q_home), each point from the previous one, and `hover` above its end.
    Returns (q_hover, path (n+1 configurations from q_hover), q_up), or None on an IK failure or a wrist flip."""
    q_hover = ik.solve(line[0] + [0, 0, hover] - base, rot, q_home)
    if q_hover is None:
        return None
    path, prev = [q_hover], q_hover
    for p in line:
        sol = ik.solve(p - base, rot, prev)
        if sol is None or np.abs(sol - prev).max() > (1.0 if len(path) == 1 else 0.35):  # no wrist flips
            return None
        path.append(prev := sol)
    q_up = ik.solve(line[-1] + [0, 0, hover] - base, rot, prev)
    if q_up is None or np.abs(q_up - prev).max() > 1.0:
        return None
    return q_hover, path, q_up
