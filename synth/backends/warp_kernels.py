# mypy: ignore-errors
"""Warp kernels of the MuJoCo Warp backend (Warp's kernel language: typed by Warp, not by mypy)."""

import warp as wp


@wp.kernel
def set_ctrl(ctrl: wp.array3d[float], idx: wp.array[int], out: wp.array2d[float]):
    w, u = wp.tid()
    out[w, u] = ctrl[w, idx[0], u]


@wp.kernel
def record(
    qpos: wp.array2d[float],
    qvel: wp.array2d[float],
    act: wp.array2d[float],
    sensordata: wp.array2d[float],
    idx: wp.array[int],
    bad: wp.array[int],
    phys: wp.array3d[float],
    sens: wp.array3d[float],
):
    """phys[w, j] = (qpos, qvel, act) after local step j; sens[w, j] = the sensors computed during it."""
    w = wp.tid()
    j = idx[0]
    nq, nv, na = qpos.shape[1], qvel.shape[1], act.shape[1]
    for i in range(nq):
        x = qpos[w, i]
        if not wp.isfinite(x) or wp.abs(x) > 1.0e10:
            bad[w] = 1
        phys[w, j, i] = x
    for i in range(nv):
        x = qvel[w, i]
        if not wp.isfinite(x) or wp.abs(x) > 1.0e10:
            bad[w] = 1
        phys[w, j, nq + i] = x
    for i in range(na):
        phys[w, j, nq + nv + i] = act[w, i]
    for i in range(sensordata.shape[1]):
        sens[w, j, i] = sensordata[w, i]


@wp.kernel
def advance(idx: wp.array[int]):
    idx[0] = idx[0] + 1
