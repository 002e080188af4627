"""Collision-free joint-space transit: OMPL RRTConnect on the scene's MuJoCo model, then shortcutting."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ompl import base as ob
from ompl import geometric as og
from ompl import util as ou

ou.setLogLevel(ou.LogLevel.LOG_NONE)


def plan(
    q0: np.ndarray,
    q1: np.ndarray,
    valid: Callable[[np.ndarray], bool],
    lower: np.ndarray,
    upper: np.ndarray,
    seed: int,
    max_checks: int = 20000,
    resolution: float = 0.002,
) -> tuple[np.ndarray | None, dict]:
    """Waypoints (K, dof) [rad] from q0 to q1 whose straight segments are valid, or None.

    OMPL's random generators are reseeded from `seed`, the planner is made afresh and it stops after
    `max_checks` validity checks or 10x as many polls of its stop condition (not after a time), so the
    result depends on the arguments only:
    not on the machine's speed nor on what this process planned before.
    """
    n = len(q0)
    stats = {"rrt": False, "rrt_states": 0, "waypoints": 2}
    for end, q in (("start", q0), ("goal", q1)):  # OMPL would wait, asleep, for a valid goal to be sampled
        if not valid(q):
            stats["status"] = f"invalid {end}"
            return None, stats
    space = ob.RealVectorStateSpace(n)
    bounds = ob.RealVectorBounds(n)
    for i in range(n):
        bounds.setLow(i, float(lower[i]))
        bounds.setHigh(i, float(upper[i]))
    space.setBounds(bounds)
    si = ob.SpaceInformation(space)
    checks = [0]

    def check(s) -> bool:
        checks[0] += 1
        return valid(np.fromiter((s[i] for i in range(n)), float, n))

    si.setStateValidityChecker(check)
    si.setStateValidityCheckingResolution(resolution)
    si.setup()
    start, goal = si.allocState(), si.allocState()
    for i in range(n):
        start[i], goal[i] = float(q0[i]), float(q1[i])
    if si.checkMotion(start, goal):
        return np.stack([q0, q1]), stats
    ou.RNG.setSeed(int(seed) % (2**31 - 1) + 1)
    pdef = ob.ProblemDefinition(si)
    pdef.setStartAndGoalStates(start, goal)
    planner = og.RRTConnect(si)
    planner.setRange(0.5)
    planner.setProblemDefinition(pdef)
    planner.setup()
    stats["rrt"] = True
    polls = [0]

    def stop() -> bool:  # by counts, never by time; polls bound a planner that stops checking states
        polls[0] += 1
        return checks[0] > max_checks or polls[0] > 10 * max_checks

    status = planner.solve(ob.PlannerTerminationCondition(stop))
    if not pdef.hasExactSolution():
        stats["status"] = str(status)
        return None, stats
    path = pdef.getSolutionPath()
    stats["rrt_states"] = path.getStateCount()
    simplifier = og.PathSimplifier(si)
    simplifier.reduceVertices(path)
    simplifier.ropeShortcutPath(path)
    simplifier.reduceVertices(path)
    out = np.array([[path.getState(k)[i] for i in range(n)] for k in range(path.getStateCount())])
    stats["waypoints"] = len(out)
    stats["checks"] = checks[0]
    return out, stats


def fallbacks(stats: dict | list) -> tuple[int, int]:
    """(transits, those OMPL planned because their straight line collided) in an episode's planner stats (its
    meta's "planner"): every dict holding "rrt" is one transit's record from `plan`, at any depth (a task's
    further moves, a bimanual task's arms)."""
    if isinstance(stats, list):
        pairs = [fallbacks(s) for s in stats]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    if not isinstance(stats, dict):
        return 0, 0
    if "rrt" in stats:
        return 1, int(bool(stats["rrt"]))
    return fallbacks(list(stats.values()))
