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
    every: int,
    first: wp.array[int],
    phys: wp.array3d[float],
    sens: wp.array3d[float],
):
    """Checks every step, keeps every `every`-th. After local step j = idx[0] (global step idx[1] + j):
    phys[w, j // every] = (qpos, qvel, act) when (j + 1) % every == 0; sens[w, j // every] = the sensors computed
    during step j when j % every == 0; first[w] lowered to the global step when a qpos or qvel value is non-finite
    or beyond 1e10 (MuJoCo's mjMAXVAL)."""
    w = wp.tid()
    j = idx[0]
    g = idx[1] + j
    s = j // every
    keep = (j + 1) % every == 0
    nq, nv, na = qpos.shape[1], qvel.shape[1], act.shape[1]
    for i in range(nq):
        x = qpos[w, i]
        if (not wp.isfinite(x) or wp.abs(x) > 1.0e10) and g < first[w]:
            first[w] = g
        if keep:
            phys[w, s, i] = x
    for i in range(nv):
        x = qvel[w, i]
        if (not wp.isfinite(x) or wp.abs(x) > 1.0e10) and g < first[w]:
            first[w] = g
        if keep:
            phys[w, s, nq + i] = x
    if keep:
        for i in range(na):
            phys[w, s, nq + nv + i] = act[w, i]
    if j % every == 0:
        for i in range(sensordata.shape[1]):
            sens[w, s, i] = sensordata[w, i]


@wp.kernel
def advance(idx: wp.array[int]):
    idx[0] = idx[0] + 1
