"""Time parametrization at the control rate: ruckig (jerk-limited) point to point, toppra through waypoints."""

from __future__ import annotations

import functools

import numpy as np
from ruckig import InputParameter, Result, Ruckig, Synchronization, Trajectory


@functools.cache
def _toppra():
    """toppra, imported on first use: it imports matplotlib.pyplot (0.4 s), which the kinematic mode never needs."""
    import toppra
    import toppra.algorithm
    import toppra.constraint

    toppra.setup_logging("WARNING")
    return toppra


def point_to_point(q0: np.ndarray, q1: np.ndarray, vmax: np.ndarray, amax: np.ndarray, hz: float) -> np.ndarray:
    """Rest-to-rest straight-line motion sampled every 1/hz after the start: (K, dof) [rad], ending at q1.

    vmax, amax: (dof,) limits [rad/s], [rad/s^2]; jerk is limited to 50 x amax [rad/s^3]
    (the Panda's published jerk limits are 500 x its acceleration limits).
    """
    dof = len(q0)
    inp = InputParameter(dof)
    inp.current_position, inp.target_position = q0, q1
    inp.max_velocity, inp.max_acceleration, inp.max_jerk = vmax, amax, 50.0 * amax
    inp.synchronization = Synchronization.Phase  # a straight line in joint space
    traj = Trajectory(dof)
    if Ruckig(dof).calculate(inp, traj) not in (Result.Working, Result.Finished):
        raise RuntimeError("ruckig could not time the motion")
    n = max(1, int(np.ceil(traj.duration * hz - 1e-9)))
    out = np.array([traj.at_time(min(k / hz, traj.duration))[0] for k in range(1, n + 1)])
    out[-1] = q1
    return out


def through(waypoints: np.ndarray, vmax: np.ndarray, amax: np.ndarray, hz: float) -> np.ndarray:
    """Time-optimal motion along a cubic spline through waypoints (K, dof) with toppra, rest to rest.

    Returns samples every 1/hz after the start, (T, dof) [rad], ending exactly at the last waypoint.
    """
    if len(waypoints) == 2:
        return point_to_point(waypoints[0], waypoints[1], vmax, amax, hz)
    toppra = _toppra()
    chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(waypoints, axis=0), axis=1))]
    path = toppra.SplineInterpolator(chord / chord[-1], waypoints, bc_type="clamped")
    cons = [
        toppra.constraint.JointVelocityConstraint(np.stack([-vmax, vmax], 1)),
        toppra.constraint.JointAccelerationConstraint(np.stack([-amax, amax], 1)),
    ]
    algo = toppra.algorithm.TOPPRA(cons, path, parametrizer="ParametrizeConstAccel", gridpoints=np.linspace(0, 1, 60))
    traj = algo.compute_trajectory(0.0, 0.0)
    if traj is None:
        raise RuntimeError("toppra could not time the path")
    n = max(1, int(np.ceil(traj.duration * hz - 1e-9)))
    out = np.asarray(traj(np.minimum(np.arange(1, n + 1) / hz, traj.duration)))
    out[-1] = waypoints[-1]
    return out
