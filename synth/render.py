"""Offscreen rendering on the CPU (Mesa llvmpipe via EGL or OSMesa) with cheap settings by default.

The GL backend is chosen when synth is imported (see synth/__init__.py). One GL context per process
and frame size; only the model-dependent MuJoCo contexts are rebuilt for each episode's model,
which costs a few milliseconds instead of a new renderer's ~60 ms.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from synth.errors import ConfigError

APT = "libegl1 libgl1 libgl1-mesa-dri (EGL) or libosmesa6 (OSMesa)"
_contexts: dict[tuple[int, int], Any] = {}


def _context_class():
    """EGL or OSMesa (or what MUJOCO_GL names), chosen here rather than by mujoco's import, so that
    rendering works even when mujoco was imported before synth."""
    import os

    want = os.environ.get("MUJOCO_GL", "egl")
    if want in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", want)
        if want == "egl":
            from mujoco.egl import GLContext
        else:
            from mujoco.osmesa import GLContext
        return GLContext
    from mujoco.gl_context import GLContext

    return GLContext


def _gl(height: int, width: int):
    key = (height, width)
    if key not in _contexts:
        try:
            ctx = _context_class()(width, height)
            ctx.make_current()
        except Exception as e:  # missing libraries surface as many kinds of errors
            raise ConfigError(
                f"offscreen rendering is unavailable ({type(e).__name__}: {e}); install {APT}, "
                "or generate state-only data (cameras=[])"
            ) from None
        _contexts[key] = ctx
    ctx = _contexts[key]
    ctx.make_current()
    return ctx


_mjr: dict[tuple, Any] = {}


def _mjr_context(model: mujoco.MjModel, quality: str):
    """A MuJoCo render context for `model`. Contexts are reused across models with the same numbers of
    meshes, textures and skins; the new model's meshes and textures are uploaded into it (geom colours
    and sizes are drawn from the model each frame), so a context costs ~1 ms instead of ~40 ms."""
    key = (model.nmesh, model.ntex, model.nskin, model.nhfield, model.nflex, quality)
    con = _mjr.get(key)
    if con is None:
        con = _mjr[key] = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)
    else:
        for i in range(model.nmesh):
            mujoco.mjr_uploadMesh(model, con, i)
        for i in range(model.ntex):
            mujoco.mjr_uploadTexture(model, con, i)
        for i in range(model.nhfield):
            mujoco.mjr_uploadHField(model, con, i)
    mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
    return con


def render(
    model: mujoco.MjModel, qpos: np.ndarray, cameras: list[str], height: int, width: int, quality: str = "cheap"
) -> dict[str, np.ndarray]:
    """Frames of `cameras` at each configuration: {camera: (T, H, W, 3) uint8}.

    qpos: (T, nq). quality "cheap" turns off shadows, reflections, skybox and multisampling;
    "default" keeps MuJoCo's own settings.
    """
    if model.vis.global_.offwidth < width or model.vis.global_.offheight < height:
        raise ValueError(f"model's offscreen buffer is smaller than {width}x{height}")
    _gl(height, width)
    if quality == "cheap":
        model.vis.quality.offsamples = 0
    con = _mjr_context(model, quality)
    scene = mujoco.MjvScene(model, maxgeom=500)
    if quality == "cheap":
        for flag in (
            mujoco.mjtRndFlag.mjRND_SHADOW,
            mujoco.mjtRndFlag.mjRND_REFLECTION,
            mujoco.mjtRndFlag.mjRND_SKYBOX,
        ):
            scene.flags[flag] = 0
    opt, pert, cam = mujoco.MjvOption(), mujoco.MjvPerturb(), mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
    data = mujoco.MjData(model)
    viewport = mujoco.MjrRect(0, 0, width, height)
    out = {c: np.empty((len(qpos), height, width, 3), np.uint8) for c in cameras}
    ids = {}
    for c in cameras:
        ids[c] = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, c)
        if ids[c] < 0:
            raise ValueError(f"no camera '{c}' in the model")
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_camlight(model, data)
        for c in cameras:
            cam.fixedcamid = ids[c]
            mujoco.mjv_updateScene(model, data, opt, pert, cam, mujoco.mjtCatBit.mjCAT_ALL, scene)
            mujoco.mjr_render(viewport, scene, con)
            mujoco.mjr_readPixels(out[c][t], None, viewport, con)
    for c in cameras:
        out[c] = out[c][:, ::-1]  # OpenGL rows start at the bottom
    return {c: np.ascontiguousarray(v) for c, v in out.items()}
