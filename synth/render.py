"""Offscreen rendering on the CPU (Mesa llvmpipe through EGL or OSMesa), cheap by default.

One GL context per process, made on first use. Each call makes a MuJoCo render context (mjrContext)
for its model and frees it afterwards: with the scene and data, ~3 ms a call with the cheap settings
(~40 ms with MuJoCo's defaults, whose 4096² shadow map dominates), against ~60 ms for a new
``mujoco.Renderer`` (benchmarks/render.py). A render context is never reused for another model: it
keeps copies of the model's material-texture table, planes and fog, so a reused one could draw the
previous episode's textures.

Backend: MUJOCO_GL if set (egl or osmesa here; other values go to MuJoCo's own GLContext), else the
first of EGL and OSMesa whose libraries initialise; the choice is written to MUJOCO_GL for child
processes. LP_NUM_THREADS defaults to 0 (llvmpipe rasterises in the calling thread): as fast at these
sizes, and a process that rendered can fork workers that render (with llvmpipe threads they hang).
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

import mujoco
import numpy as np

from synth.errors import ConfigError, closest

APT = {"egl": "libegl1 libopengl0 libgl1-mesa-dri", "osmesa": "libosmesa6"}
_R = mujoco.mjtRndFlag
_CHEAP = {"offsamples": 0, "shadowsize": 0}
# quality -> (scene flags turned off, model.vis.quality fields used to make the render context)
QUALITY: dict[str, tuple[tuple[Any, ...], dict[str, int]]] = {
    "cheap": ((_R.mjRND_SHADOW, _R.mjRND_REFLECTION, _R.mjRND_SKYBOX), _CHEAP),
    "low": ((_R.mjRND_SHADOW, _R.mjRND_REFLECTION, _R.mjRND_SKYBOX), {**_CHEAP, "numslices": 12, "numstacks": 6}),
    "default": ((), {}),  # MuJoCo's own settings, as the model states them
}
_DISABLED = ("disable", "disabled", "off", "false", "0")
_gl: dict[str, Any] = {}  # pid, name, context of this process
_stale: list[Any] = []  # contexts inherited through fork: kept, never freed, in the child


def render(
    model: mujoco.MjModel,
    qpos: np.ndarray,
    cameras: list[str],
    height: int,
    width: int,
    quality: str = "cheap",
) -> dict[str, np.ndarray]:
    """Frames of `cameras` at each configuration: {camera: (T, height, width, 3) uint8}, row 0 at the top.

    qpos: (T, nq) [m, rad, quaternions]. quality: "cheap" (no shadows, reflections, skybox or
    multisampling; the headlight stays), "low" (cheap, with coarser spheres, cylinders and capsules),
    or "default" (MuJoCo's settings). The model is left as it was given.
    """
    qpos = np.asarray(qpos, dtype=np.float64)
    if qpos.ndim != 2 or qpos.shape[1] != model.nq:
        raise ValueError(f"qpos must be (T, {model.nq}), got {qpos.shape}")
    if quality not in QUALITY:
        raise ConfigError(f"unknown render quality '{quality}'{closest(quality, list(QUALITY))}")
    names = [model.camera(i).name for i in range(model.ncam)]
    ids = {}
    for c in cameras:
        ids[c] = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, c)
        if ids[c] < 0:
            raise ConfigError(f"no camera '{c}' in the model{closest(c, names)}")
    flags_off, vis = QUALITY[quality]
    _current()
    con = _mjr_context(model, height, width, vis)
    try:
        scene = mujoco.MjvScene(model, maxgeom=2 * model.ngeom + 100)
        for f in flags_off:
            scene.flags[f] = 0
        opt, cam = mujoco.MjvOption(), mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        data = mujoco.MjData(model)
        viewport = mujoco.MjrRect(0, 0, width, height)
        out = {c: np.empty((len(qpos), height, width, 3), np.uint8) for c in cameras}
        for t, q in enumerate(qpos):
            data.qpos[:] = q
            mujoco.mj_fwdPosition(model, data)  # poses of bodies, cameras and lights (tendons, flexes)
            for c in cameras:
                cam.fixedcamid = ids[c]
                mujoco.mjv_updateScene(model, data, opt, None, cam, mujoco.mjtCatBit.mjCAT_ALL, scene)
                if scene.ngeom >= scene.maxgeom:
                    raise RuntimeError(f"more than {scene.maxgeom} geoms to draw")
                mujoco.mjr_render(viewport, scene, con)
                mujoco.mjr_readPixels(out[c][t], None, viewport, con)
    finally:
        con.free()
    return {c: np.ascontiguousarray(v[:, ::-1]) for c, v in out.items()}  # OpenGL's rows start at the bottom


def backend() -> str:
    """The GL backend this process renders with ("egl", "osmesa", ...), opening it if needed."""
    _current()
    return _gl["name"]


def _mjr_context(model: mujoco.MjModel, height: int, width: int, vis: dict[str, int]) -> mujoco.MjrContext:
    """A render context for `model` whose offscreen buffer is height x width, made with the
    model.vis.quality fields in `vis` (the model's own values are put back)."""
    g, q = model.vis.global_, model.vis.quality
    saved = (g.offwidth, g.offheight, {k: getattr(q, k) for k in vis})
    g.offwidth, g.offheight = width, height
    try:
        for k, v in vis.items():
            setattr(q, k, v)
        con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)
    finally:
        g.offwidth, g.offheight = saved[0], saved[1]
        for k, v in saved[2].items():
            setattr(q, k, v)
    mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, con)
    return con


def _current() -> None:
    """Make this process's GL context current, opening it on first use (again after a fork)."""
    if _gl.get("pid") != os.getpid():
        if "context" in _gl:  # forked from a process that rendered
            if _gl["threads"] != "0":
                raise RuntimeError(
                    "this process was forked after its parent rendered with llvmpipe threads "
                    f"(LP_NUM_THREADS={_gl['threads']}) and would hang: leave LP_NUM_THREADS unset or 0, "
                    "or start workers with 'spawn'"
                )
            _stale.append(_gl["context"])  # the parent's: freeing it here could disturb the driver
        name, ctx = _open(os.environ)
        _gl.update(pid=os.getpid(), name=name, context=ctx, threads=os.environ.get("LP_NUM_THREADS"))
    _gl["context"].make_current()


def _candidates(env: Mapping[str, str]) -> tuple[list[str], bool]:
    """Backends to try in order, and whether the user named one (MUJOCO_GL, else PYOPENGL_PLATFORM)."""
    if env.get("MUJOCO_GL"):
        return [env["MUJOCO_GL"].strip().lower()], True
    if env.get("PYOPENGL_PLATFORM", "").lower() in ("egl", "osmesa"):
        return [env["PYOPENGL_PLATFORM"].lower()], True
    return ["egl", "osmesa"], False


def _open(env: MutableMapping[str, str]) -> tuple[str, Any]:
    """(backend name, current GL context), trying the candidates in order; records the choice in `env`."""
    names, chosen = _candidates(env)
    env.setdefault("LP_NUM_THREADS", "0")
    why = {}
    for name in names:
        problem = None if chosen else _probe(name)
        if problem is None:
            try:
                ctx = _context_class(name)(64, 64)  # the size is unused: frames go to an offscreen buffer
                ctx.make_current()
                env.setdefault("MUJOCO_GL", name)
                if name == "osmesa":
                    atexit.register(_free_at_exit, ctx)
                return name, ctx
            except Exception as e:  # a missing library shows up as many kinds of error
                problem = f"{type(e).__name__}: {e}"
        why[name] = " ".join(problem.split())
    tried = "; ".join(f"{k}: {v}" for k, v in why.items())
    if chosen:
        fix = f"apt-get install {APT.get(names[0], APT['egl'])}, or unset MUJOCO_GL to let synth choose"
        raise ConfigError(f"offscreen rendering with MUJOCO_GL={names[0]} failed ({tried}); {fix}")
    raise ConfigError(
        f"no offscreen OpenGL here ({tried}); apt-get install {APT['egl']} (EGL) or {APT['osmesa']} "
        "(OSMesa), or generate state-only data (cameras=[])"
    )


def _context_class(name: str):
    if name in _DISABLED:
        raise RuntimeError("rendering is disabled by MUJOCO_GL")
    if name == "egl":
        from mujoco.egl import GLContext
    elif name == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        from mujoco.gl_context import GLContext
    return GLContext


def _probe(name: str) -> str | None:
    """Why `name` cannot work here, or None; checked with ctypes, so PyOpenGL stays free to pick it."""
    if name == "osmesa":
        return None if ctypes.util.find_library("OSMesa") else "libOSMesa not found"
    c_p = ctypes.c_void_p
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError as e:
        return str(e)
    if not any(_loads(lib) for lib in ("libOpenGL.so.0", "libGL.so.1")):
        return "neither libOpenGL.so.0 nor libGL.so.1 found"
    egl.eglGetProcAddress.restype, egl.eglGetProcAddress.argtypes = c_p, [ctypes.c_char_p]
    egl.eglInitialize.argtypes, egl.eglTerminate.argtypes = [c_p, c_p, c_p], [c_p]
    query, display = egl.eglGetProcAddress(b"eglQueryDevicesEXT"), egl.eglGetProcAddress(b"eglGetPlatformDisplayEXT")
    if not (query and display):
        return "EGL has no device platform (EGL_EXT_device_enumeration)"
    query = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_int, ctypes.POINTER(c_p), ctypes.POINTER(ctypes.c_int))(query)
    display = ctypes.CFUNCTYPE(c_p, ctypes.c_uint, c_p, c_p)(display)
    devices, n = (c_p * 16)(), ctypes.c_int()
    if not query(16, devices, ctypes.byref(n)) or n.value == 0:
        return "no EGL devices (is libgl1-mesa-dri installed?)"
    for i in range(n.value):
        d = display(0x313F, devices[i], None)  # EGL_PLATFORM_DEVICE_EXT
        if d and egl.eglInitialize(d, None, None):
            egl.eglTerminate(d)
            return None
    return "eglInitialize failed on every EGL device (is libgl1-mesa-dri installed?)"


def _loads(lib: str) -> bool:
    try:
        ctypes.CDLL(lib)
        return True
    except OSError:
        return False


def _free_at_exit(ctx: Any) -> None:
    """OSMesa contexts freed at interpreter shutdown print a traceback; free them before it."""
    if _gl.get("pid") == os.getpid() and id(_gl.get("context")) == id(ctx):
        _gl.clear()
        ctx.free()
