"""The uniform compile (tabletop.build(uniform=True)): one physics layout for every draw of pick_place's
default randomizers (rocks: once a batch shares its meshes), the same bodies' masses and inertias, the same
success labels as the per-scene model (MuJoCo C), and one MuJoCo Warp batch with MuJoCo C's labels."""

from __future__ import annotations

import dataclasses
import importlib.util

import mujoco
import numpy as np
import pytest

from synth.backends.mujoco_cpu import signature
from synth.embodiment import load
from synth.randomize import apply, slots
from synth.registry import RANDOMIZERS, TASKS
from synth.tabletop.compiler import build
from synth.tabletop.uniform import share_meshes

DEFAULT = ("object_shape", "object_pose", "target", "distractors", "table", "lighting", "camera_jitter")
DEFAULT += ("object_physics", "drawer")
PRIMITIVES = ["box", "cylinder", "sphere", "capsule"]
# unbatched arrays that split today's per-scene models into layouts (benchmarks/layouts.py --detail)
STRUCTURE = ("geom_type", "geom_contype", "geom_conaffinity", "geom_condim", "geom_sameframe", "body_simple")
STRUCTURE += ("body_sameframe", "dof_simplenum", "M_colind", "M_rowadr", "mapM2M", "body_contype")


def randomizers(shapes: list[str] | None = None) -> list:
    """generate.yaml's randomizers; `shapes` limits the task object's and the distractors' shapes."""
    over = {"shapes": shapes} if shapes else {}
    return [RANDOMIZERS.build(r, over if r in ("object_shape", "distractors") else {}) for r in DEFAULT]


def models(n: int, rands: list, uniform: bool) -> list[tuple]:
    """(scene, model) of pick_place's attempts 0..n-1 (seed 0)."""
    task, emb = TASKS.build("pick_place"), load("panda")
    k = slots(task.scene(), rands)
    out = []
    for i in range(n):
        scene, _ = apply(rands, task.scene(), 0, i)
        out.append((scene, build(scene, emb, k, uniform=uniform)))
    return out


def test_every_draw_one_layout():
    built = models(40, randomizers(PRIMITIVES), uniform=True)
    scenes = [s for s, _ in built]
    assert len({len(s.objects) for s in scenes}) > 1, "the draws should place different numbers of distractors"
    assert {s.target.kind for s in scenes} == {"region", "tray"}
    assert len({s.objects[0].shape for s in scenes}) == 4
    ms = [m for _, m in built]
    assert len({signature(m) for m in ms}) == 1
    for k in STRUCTURE:
        assert all(np.array_equal(getattr(m, k), getattr(ms[0], k)) for m in ms), k
    if importlib.util.find_spec("mujoco_warp") is not None:
        from synth.backends.mujoco_warp import layout_key

        assert len({layout_key(m) for m in ms}) == 1
    per_scene = models(40, randomizers(PRIMITIVES), uniform=False)
    assert len({signature(m) for _, m in per_scene}) > 1  # what the uniform compile is for


def test_rocks_differ_only_in_their_meshes():
    """A random convex mesh is each world's own mesh data (MuJoCo Warp shares mesh data): that and nothing
    else separates the uniform layouts of the default randomizers."""
    built = models(24, randomizers(), uniform=True)
    rockless = [m for s, m in built if all(o.shape != "mesh" for o in s.objects)]
    assert rockless and len(rockless) < len(built)
    assert len({signature(m) for m in rockless}) == 1
    ref = rockless[0]
    for _, m in built:
        for k in STRUCTURE:
            if k != "geom_sameframe":  # a mesh geom sits in its mesh's own frame
                assert np.array_equal(getattr(m, k), getattr(ref, k)), k


def test_a_batch_sharing_its_meshes_is_one_layout():
    """share_meshes: the default randomizers' worlds (rocks included) in one layout, each world's mesh geoms
    pointing at meshes equal to its own model's, every other array its own."""
    rands = randomizers()
    k = slots(TASKS.build("pick_place").scene(), rands)
    built = models(24, rands, uniform=True)
    scenes, own = [s for s, _ in built], [m for _, m in built]
    shared = share_meshes(scenes, own, lambda sc, meshes: build(sc, load("panda"), k, uniform=True, meshes=meshes))
    assert len({signature(m) for m in own}) > 1 and len({signature(m) for m in shared}) == 1
    for k_ in (*STRUCTURE, "mesh_vert", "mesh_graph"):
        assert all(np.array_equal(getattr(m, k_), getattr(shared[0], k_)) for m in shared), k_
    if importlib.util.find_spec("mujoco_warp") is not None:
        from synth.backends.mujoco_warp import layout_key

        assert len({layout_key(m) for m in shared}) == 1
    rocks = 0
    for o, m in zip(own, shared, strict=True):
        for g in np.flatnonzero(o.geom_type == mujoco.mjtGeom.mjGEOM_MESH):
            a, b = o.geom_dataid[g], m.geom_dataid[g]
            va = o.mesh_vert[o.mesh_vertadr[a] : o.mesh_vertadr[a] + o.mesh_vertnum[a]]
            vb = m.mesh_vert[m.mesh_vertadr[b] : m.mesh_vertadr[b] + m.mesh_vertnum[b]]
            np.testing.assert_array_equal(va, vb)
            rocks += int(o.mesh_vertnum[a] > 8)
        for k_ in ("geom_size", "geom_pos", "geom_quat", "geom_rgba", "body_mass", "body_pos", "qpos0"):
            np.testing.assert_array_equal(getattr(m, k_), getattr(o, k_))
    assert rocks >= 3


def test_uniform_bodies_weigh_the_same():
    """Each object's mass, centre of mass and inertia tensor (in the world) are those of the per-scene model."""
    rands = randomizers()
    for (s, a), (_, b) in zip(models(6, rands, False), models(6, rands, True), strict=True):
        da, db = mujoco.MjData(a), mujoco.MjData(b)
        mujoco.mj_forward(a, da)
        mujoco.mj_forward(b, db)
        for i, o in enumerate(s.objects):
            ba, bb = (mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, o.name) for m in (a, b))
            assert a.body_mass[ba] == pytest.approx(b.body_mass[bb], rel=1e-12)
            np.testing.assert_allclose(da.xipos[ba], db.xipos[bb], atol=1e-12)
            ia, ib = (
                d.ximat[k].reshape(3, 3) @ np.diag(m.body_inertia[k]) @ d.ximat[k].reshape(3, 3).T
                for d, m, k in ((da, a, ba), (db, b, bb))
            )
            np.testing.assert_allclose(ia, ib, rtol=1e-9, atol=1e-15)
            assert b.body_simple[bb] == 0 and b.geom(o.name).type == a.geom(o.name).type
            assert np.array_equal(b.geom(o.name).rgba, a.geom(o.name).rgba), i


def test_uniform_same_labels():
    """The same plans stepped (MuJoCo C) on both compiles of each scene succeed and fail alike."""
    from synth.pipeline import Worker

    w = Worker(TASKS.build("pick_place"), randomizers(), load("panda"), seed=0)
    old = [a for a in (w.prepare(i) for i in range(24)) if a.plan is not None]
    new = [
        dataclasses.replace(a, model=build(a.scene, w.emb, w.slots, w.resolution, w.ctx.control_hz, w.physics, True))
        for a in old
    ]
    w.execute(old)
    w.execute(new)
    assert len(old) >= 20
    assert [a.failure for a in new] == [a.failure for a in old]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mujoco_warp") is None, reason="mujoco_warp is not installed")
def test_uniform_worlds_are_one_warp_batch():
    """Four default-randomized pick_place worlds (no rocks) of different shapes, distractors and target kinds run
    as one MuJoCo Warp batch (its CPU device) and get MuJoCo C's labels."""
    from synth.backends.mujoco_warp import MujocoWarp
    from synth.pipeline import Worker

    w = Worker(TASKS.build("pick_place"), randomizers(PRIMITIVES), load("panda"), seed=0, uniform=True)
    atts = [a for a in (w.prepare(i) for i in range(4)) if a.plan is not None]
    assert len({(a.scene.objects[0].shape, len(a.scene.objects), a.scene.target.kind) for a in atts}) > 1
    cpu = [dataclasses.replace(a) for a in atts]
    w.execute(cpu)
    w.backend = MujocoWarp(device="cpu")
    w.execute(atts)
    assert w.backend.groups == [len(atts)]
    assert [a.failure for a in atts] == [a.failure for a in cpu]
