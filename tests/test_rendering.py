import numpy as np
import pytest

from synth.embodiment import load
from synth.scenes.tabletop import Layout, build, initial_qpos
from synth.types import Obj, Scene

render = pytest.importorskip("synth.render").render
EMB = load("panda")


def _model(rgba=(0.9, 0.1, 0.1, 1.0)):
    return build(Scene(objects=(Obj("obj0", rgba=rgba, size=(0.03, 0.03, 0.03)),)), EMB, 2, (64, 64))


def _qpos(m, n=3):
    return np.tile(initial_qpos(m, EMB, Layout(m, EMB)), (n, 1))


def test_frames_shape_cameras_and_determinism():
    m = _model()
    f = render(m, _qpos(m), ["front", "wrist"], 64, 64)
    assert f["front"].shape == (3, 64, 64, 3) and f["front"].dtype == np.uint8
    assert not np.array_equal(f["front"], f["wrist"])
    g = render(m, _qpos(m), ["front", "wrist"], 64, 64)
    assert all(np.array_equal(f[c], g[c]) for c in f)


def test_each_model_is_drawn_with_its_own_colours():
    red, blue = _model((0.9, 0.1, 0.1, 1)), _model((0.1, 0.1, 0.9, 1))
    a = render(red, _qpos(red, 1), ["front"], 64, 64)["front"][0].astype(float)
    b = render(blue, _qpos(blue, 1), ["front"], 64, 64)["front"][0].astype(float)
    diff = np.abs(a - b).sum(-1) > 30
    assert diff.any()
    assert a[diff][:, 0].mean() > a[diff][:, 2].mean() and b[diff][:, 2].mean() > b[diff][:, 0].mean()


def test_wrist_camera_moves_with_the_arm():
    m = _model()
    q = _qpos(m, 2)
    q[1, :7] += [0.4, 0.2, 0, -0.2, 0, 0.2, 0]
    f = render(m, q, ["wrist", "front"], 64, 64)
    assert np.abs(f["wrist"][0].astype(int) - f["wrist"][1]).mean() > 5


def test_reused_context_draws_the_new_models_meshes():
    """Models with different mesh objects share a cached context; frames equal a fresh context's."""
    import synth.render as r
    from synth.scenes.objects import sample

    rng = np.random.default_rng(0)
    models = []
    for _ in range(2):
        o = sample(rng, "obj0", "mesh", "red", 1.3)
        o = Obj(**{**o.__dict__, "xy": (0.45, 0.0)})
        models.append(build(Scene(objects=(o,)), EMB, 2, (64, 64)))
    frames = []
    for m in models:
        frames.append(render(m, _qpos(m, 1), ["front"], 64, 64)["front"])  # second one reuses the context
    r._mjr.clear()
    fresh = render(models[1], _qpos(models[1], 1), ["front"], 64, 64)["front"]
    np.testing.assert_array_equal(frames[1], fresh)
    assert not np.array_equal(frames[0], frames[1])
