import ctypes.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from synth.embodiment import load
from synth.errors import ConfigError
from synth.tabletop.compiler import Layout, build, initial_qpos
from synth.tabletop.objects import sample
from synth.types import Obj, Scene

render_module = pytest.importorskip("synth.render")
render = render_module.render
EMB = load("panda")
CAMS = ["front", "wrist"]


def _model(obj: Obj | None = None, rgba=(0.9, 0.1, 0.1, 1.0)):
    obj = obj or Obj("obj0", rgba=rgba, size=(0.03, 0.03, 0.03), xy=(0.45, 0.0))
    return build(Scene(objects=(obj,)), EMB, 2, (64, 64))


def _qpos(m, n=3):
    return np.tile(initial_qpos(m, EMB, Layout(m, EMB)), (n, 1))


def test_frames_have_the_asked_shape_and_differ_between_cameras():
    m = _model()
    f = render(m, _qpos(m), CAMS, 48, 80)
    assert set(f) == set(CAMS)
    for v in f.values():
        assert v.shape == (3, 48, 80, 3) and v.dtype == np.uint8 and v.flags.c_contiguous
        assert v.std() > 5  # a picture, not a blank buffer
    assert np.abs(f["front"].astype(int) - f["wrist"]).mean() > 10
    top, bottom = f["front"][0, 0].astype(int), f["front"][0, -1].astype(int)  # grey floor far, wooden table near
    assert np.median(bottom[:, 0] - bottom[:, 2]) > 40 and np.median(np.abs(top[:, 0] - top[:, 2])) < 15


def test_same_input_gives_identical_frames():
    m = _model()
    a = render(m, _qpos(m), CAMS, 64, 64)
    b = render(m, _qpos(m), CAMS, 64, 64)
    assert all(np.array_equal(a[c], b[c]) for c in CAMS)
    assert np.array_equal(a["front"][0], a["front"][2])  # same configuration, same frame


def test_alternating_models_are_drawn_with_their_own_colours():
    red, blue = _model(rgba=(0.9, 0.1, 0.1, 1)), _model(rgba=(0.1, 0.1, 0.9, 1))
    r1, b, r2 = (render(m, _qpos(m, 1), ["front"], 64, 64)["front"][0].astype(int) for m in (red, blue, red))
    assert np.array_equal(r1, r2)
    obj = np.abs(r1 - b).sum(-1) > 60  # the object's pixels
    assert obj.sum() > 10
    assert r1[obj][:, 0].mean() > r1[obj][:, 2].mean() + 50 and b[obj][:, 2].mean() > b[obj][:, 0].mean() + 50


def test_alternating_mesh_models_are_drawn_with_their_own_meshes():
    rng = np.random.default_rng(0)
    models = [_model(Obj(**{**sample(rng, "obj0", "mesh", "red", 1.5).__dict__, "xy": (0.45, 0.0)})) for _ in range(2)]
    a1, b, a2 = (render(m, _qpos(m, 1), ["front"], 64, 64)["front"] for m in (models[0], models[1], models[0]))
    assert np.array_equal(a1, a2) and not np.array_equal(a1, b)


def test_wrist_camera_moves_with_the_arm():
    m = _model()
    q = _qpos(m, 2)
    q[1, Layout(m, EMB).arm_qadr[:7]] += [0.4, 0.2, 0, -0.2, 0, 0.2, 0]
    f = render(m, q, CAMS, 64, 64)
    assert np.abs(f["wrist"][0].astype(int) - f["wrist"][1]).mean() > 5


def test_qualities_and_the_model_is_left_as_given():
    m = _model()

    def vis():
        return m.vis.global_.offwidth, m.vis.quality.offsamples, m.vis.quality.shadowsize, m.vis.quality.numslices

    before = vis()
    f = {k: render(m, _qpos(m, 1), ["front"], 96, 128, quality=k)["front"] for k in ("cheap", "low", "default")}
    assert vis() == before  # and 128-wide frames did not need a wider offscreen buffer in the model
    assert not np.array_equal(f["cheap"], f["default"])  # multisampled edges
    assert np.abs(f["cheap"].astype(int) - f["default"]).mean() < 5  # but the same picture
    assert np.abs(f["cheap"].astype(int) - f["low"]).mean() < 5


def test_bad_names_are_one_line_errors():
    m = _model()
    with pytest.raises(ConfigError, match="did you mean 'wrist'"):
        render(m, _qpos(m, 1), ["wirst"], 64, 64)
    with pytest.raises(ConfigError, match="did you mean 'cheap'"):
        render(m, _qpos(m, 1), ["front"], 64, 64, quality="chep")
    with pytest.raises(ValueError, match=r"qpos must be \(T, "):
        render(m, _qpos(m, 1)[:, :5], ["front"], 64, 64)


def test_backend_choice_respects_the_user_and_names_the_packages(monkeypatch):
    cand = render_module._candidates
    assert cand({}) == (["egl", "osmesa"], False)
    assert cand({"MUJOCO_GL": "OSMesa"}) == (["osmesa"], True)
    assert cand({"PYOPENGL_PLATFORM": "egl"}) == (["egl"], True)
    monkeypatch.setattr(render_module, "_probe", lambda name: f"no {name}\nhere")
    env: dict[str, str] = {}
    with pytest.raises(ConfigError) as e:
        render_module._open(env)
    msg = str(e.value)
    assert "\n" not in msg and "egl: no egl here" in msg
    assert all(p in msg for p in ("libegl1", "libopengl0", "libgl1-mesa-dri", "libosmesa6"))
    assert "MUJOCO_GL" not in env  # nothing chosen, nothing recorded


_FORK = """
import multiprocessing as mp
import numpy as np
from synth.embodiment import load
from synth.render import render
from synth.tabletop.compiler import build
from synth.types import Obj, Scene
m = build(Scene(objects=(Obj("obj0"),)), load("panda"), 2)
def front():
    return render(m, m.qpos0[None], ["front"], 64, 64)["front"]
here = front()
with mp.get_context("fork").Pool(1) as pool:
    try:
        print(np.array_equal(here, pool.apply_async(front).get(timeout=60)))
    except RuntimeError as e:
        print(e)
"""


@pytest.mark.parametrize("threads", [None, "2"])
def test_a_worker_forked_after_its_parent_rendered(threads):
    """Renders like its parent with the default LP_NUM_THREADS; with llvmpipe threads it would hang, and says so."""
    env = {k: v for k, v in os.environ.items() if k != "LP_NUM_THREADS"}
    if threads:
        env["LP_NUM_THREADS"] = threads
    out = subprocess.run([sys.executable, "-c", _FORK], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    last = out.stdout.strip().splitlines()[-1]
    assert last == "True" if threads is None else "LP_NUM_THREADS=2" in last


_CHILD = """
import json, os, sys
import synth
if sys.argv[1] == "auto":
    os.environ.pop("MUJOCO_GL", None)
import numpy as np
from synth.embodiment import load
from synth.render import backend, render
from synth.tabletop.compiler import Layout, build, initial_qpos
from synth.types import Obj, Scene
emb = load("panda")
m = build(Scene(objects=(Obj("obj0", rgba=(0.9, 0.1, 0.1, 1), size=(0.03, 0.03, 0.03), xy=(0.45, 0.0)),)), emb, 2)
f = render(m, initial_qpos(m, emb, Layout(m, emb))[None], ["front"], 64, 64)["front"]
print(json.dumps({"backend": backend(), "env": os.environ.get("MUJOCO_GL"), "sum": int(f.astype(np.int64).sum())}))
"""


@pytest.mark.parametrize("choice", ["auto", "osmesa"])
def test_backend_in_a_fresh_process(choice):
    """Unset: synth picks a backend and records it; osmesa when named (its frames equal EGL's here)."""
    if choice == "osmesa" and not ctypes.util.find_library("OSMesa"):
        pytest.skip("libosmesa6 is not installed")
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    if choice != "auto":
        env["MUJOCO_GL"] = choice
    out = subprocess.run([sys.executable, "-c", _CHILD, choice], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["backend"] in ("egl", "osmesa") and got["env"] == got["backend"]
    if choice != "auto":
        assert got["backend"] == choice
    m = _model()
    assert got["sum"] == int(render(m, _qpos(m, 1), ["front"], 64, 64)["front"].astype(np.int64).sum())
