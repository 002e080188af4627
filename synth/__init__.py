"""synth: manufacture robot-learning data."""

import os as _os


def _choose_gl_backend() -> None:
    """Offscreen GL for MuJoCo: EGL, else OSMesa, unless MUJOCO_GL is set. `import mujoco` reads it,
    so this runs when synth is imported, before any of synth's modules import mujoco."""
    if "MUJOCO_GL" in _os.environ:
        return
    import ctypes.util

    if ctypes.util.find_library("EGL"):
        _os.environ["MUJOCO_GL"] = "egl"
    elif ctypes.util.find_library("OSMesa"):
        _os.environ["MUJOCO_GL"] = "osmesa"


_choose_gl_backend()
