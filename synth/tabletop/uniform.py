"""One model layout for every draw: object slots and place targets compiled so that worlds differ only in
fields MuJoCo Warp holds per world (`synth.backends.mujoco_warp.batchable`).

`tabletop.build(..., uniform=True)` uses these instead of its per-scene object and target geoms:
- every object slot is one free body with one geom of each shape in SHAPES, in that order; the object's own
  shape has its size, colour, friction and is named "obj<i>"; the others are PARKED: 1 mm, invisible, at the
  body's centre (inside the object, where nothing reaches) and named "obj<i>_x1".."_x4". A slot without an
  object is the old parked body (a 3 cm sphere far behind the robot, held up by gravity compensation).
- the body's mass properties are given explicitly (those of the object's own geom, computed by MuJoCo), in a
  principal frame turned 180 degrees about its x axis: the same inertia, but never MuJoCo's "simple" body,
  whose sparse mass matrix would otherwise depend on the shape.
- a place target always has the five collidable box geoms of a tray (base plate and walls) and one visual
  plate that never collides; a flat region sinks the tray's geoms, 1 mm small, into the table top (the table
  and the target both belong to the world body, which never collides with itself) and shows the plate.
Geom types, contact bits, condim and names' total length are then the same in every world; sizes, poses,
masses, inertias, colours, friction and solref (restitution) are batched per world.
A random convex mesh ("mesh" shape) is the slot's own mesh data, which MuJoCo Warp shares across worlds, so a
world holding one has its own layout. `share_meshes` gives the worlds of one batch one layout all the same: one
model holds every mesh of the batch, and each world's copy of it points its mesh geoms at its own meshes through
`geom_dataid` (batched). A concave object (cup, mesh files with parts) has no uniform form and is refused.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import mujoco
import numpy as np

from synth.robot import WORLD_CONTYPE
from synth.tabletop.bodies import object_pose, solref
from synth.types import Obj, Scene, Target

SHAPES = ("box", "cylinder", "sphere", "capsule", "mesh")  # geoms of every object slot, in this order
PARKED = 0.001  # [m] half size of a parked geom (and of the placeholder mesh)
ACTIVE_GRAVCOMP = 1e-9  # an object slot's gravity compensation: parked slots have 1, and MuJoCo counts the bodies
# with any (ngravcomp, a size): a billionth of the weight keeps that count fixed and changes nothing measurable
FLIP = np.array([0.0, 1.0, 0.0, 0.0])  # 180 degrees about x: a principal frame that is never the body frame
_TYPE = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
    "mesh": mujoco.mjtGeom.mjGEOM_MESH,
}
_CUBE = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float) * PARKED


def add_object(spec: mujoco.MjSpec, i: int, obj: Obj | None, table_height: float) -> None:
    """Object slot i: body "obj<i>" resting on the table top at `table_height` [m], holding one geom per SHAPES,
    `obj`'s own shape real and the rest parked; `obj` None (or inactive): the slot's parked body."""
    name = f"obj{i}"
    if obj is not None and obj.parts:
        raise ValueError(f"{name}: a concave object (convex parts) has no uniform layout yet")
    active = obj is not None and obj.active
    if active:
        assert obj is not None
        pose = object_pose(obj, table_height)
        body = spec.worldbody.add_body(name=name, pos=pose[:3], quat=pose[3:], gravcomp=ACTIVE_GRAVCOMP)
        own = obj.shape
    else:
        body = spec.worldbody.add_body(name=name, pos=[-2.0 - 0.2 * i, 2.0, 0.5], gravcomp=1.0)
        own = "sphere"
    body.add_freejoint(name=name)
    mesh = np.asarray(obj.mesh, float) if obj is not None and active and own == "mesh" else _CUBE
    spec.add_mesh(name=f"{name}_mesh", uservert=mesh.ravel())
    k = 0
    for shape in SHAPES:
        real = shape == own
        if not real:
            k += 1
        g = body.add_geom(name=name if real else f"{name}_x{k}", type=_TYPE[shape])
        if shape == "mesh":
            g.meshname = f"{name}_mesh"
        elif real and active:
            g.size = list(obj.size)  # type: ignore[union-attr]
        else:
            g.size = [0.03 if real else PARKED] * 3
        g.mass, g.condim = 0.0, 4
        g.contype, g.conaffinity = WORLD_CONTYPE, WORLD_CONTYPE
        g.rgba = list(obj.rgba) if real and active else [0, 0, 0, 0]  # type: ignore[union-attr]
        if real and active:
            g.friction = [obj.friction, 0.005, 0.0001]  # type: ignore[union-attr]
            if obj.restitution > 0:  # type: ignore[union-attr]
                g.solref = solref(obj.restitution)  # type: ignore[union-attr]
    _inertial(body, obj if active else None)


def _inertial(body: mujoco.MjsBody, obj: Obj | None) -> None:
    """Give `body` the mass [kg], centre [m] and principal inertia [kg m^2] of `obj`'s own geom (None: a 3 cm
    sphere of 0.1 kg), its principal frame turned by FLIP."""
    mass, ipos, iquat, inertia = mass_properties(obj) if obj is not None else _parked()
    q = np.empty(4)
    mujoco.mju_mulQuat(q, iquat, FLIP)
    body.explicitinertial = True
    body.mass, body.ipos, body.iquat, body.inertia = mass, ipos, q, inertia


@functools.cache
def _parked() -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    return mass_properties(None)


def mass_properties(obj: Obj | None) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(mass [kg], centre (3,) [m], principal frame (4,) quat, principal inertia (3,) [kg m^2]) of a body
    holding only `obj`'s geom as `tabletop.build` makes it (None: the parked 3 cm sphere of 0.1 kg)."""
    spec = mujoco.MjSpec()
    body = spec.worldbody.add_body(name="b")
    body.add_freejoint()
    if obj is None:
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.03, 0, 0], mass=0.1)
    elif obj.shape == "mesh":
        spec.add_mesh(name="m", uservert=np.asarray(obj.mesh, float).ravel())
        body.add_geom(type=mujoco.mjtGeom.mjGEOM_MESH, meshname="m", mass=obj.mass)
    else:
        body.add_geom(type=_TYPE[obj.shape], size=list(obj.size), mass=obj.mass)
    m = spec.compile()
    return float(m.body_mass[1]), m.body_ipos[1].copy(), m.body_iquat[1].copy(), m.body_inertia[1].copy()


def add_target(spec: mujoco.MjSpec, tg: Target, z: float, prefix: str) -> None:
    """A tray's base plate and four walls (collidable) on the table top at height z [m], named `prefix`_base,
    _wall0.._wall3, and a visual plate `prefix`_plate; a flat region (or none) sinks the tray's geoms into
    the table and shows the plate (none: nothing shown)."""
    tray = tg.walled
    base_h, w = 0.006, 0.006  # [m] a tray's base plate and wall thickness
    hx, hy = tg.size
    Vec = tuple[float, float, float]
    parts: list[tuple[str, Vec, Vec]] = [("base", (0.0, 0.0, base_h / 2), (hx + w, hy + w, base_h / 2))]
    for k, (dx, dy, sx, sy) in enumerate(
        (
            (hx + w / 2, 0, w / 2, hy + w),
            (-hx - w / 2, 0, w / 2, hy + w),
            (0, hy + w / 2, hx, w / 2),
            (0, -hy - w / 2, hx, w / 2),
        )
    ):
        parts.append((f"wall{k}", (dx, dy, tg.wall / 2 + base_h), (sx, sy, tg.wall / 2)))
    for name, (px, py, pz), size in parts:
        g = spec.worldbody.add_geom(name=f"{prefix}_{name}", type=mujoco.mjtGeom.mjGEOM_BOX)
        if tray:
            g.size, g.pos, g.rgba = list(size), [tg.pos[0] + px, tg.pos[1] + py, z + pz], list(tg.rgba)
        else:  # inside the table's 4 cm top, 2 cm under its surface
            g.size, g.pos, g.rgba = [PARKED] * 3, [tg.pos[0], tg.pos[1], z - 0.02], [0, 0, 0, 0]
        g.contype = g.conaffinity = WORLD_CONTYPE
    plate = spec.worldbody.add_geom(name=f"{prefix}_plate", type=mujoco.mjtGeom.mjGEOM_BOX)
    plate.size, plate.pos = [hx, hy, 0.0004], [tg.pos[0], tg.pos[1], z + 0.0004]
    plate.rgba = list(tg.rgba) if not tray and tg.kind != "none" else [0, 0, 0, 0]
    plate.contype = plate.conaffinity = 0


# model arrays that belong to the meshes (or index into them, or into names) and stay the shared model's own
_MESH_OWNED = ("mesh_", "bvh_", "body_bvh", "oct_", "body_oct", "name", "paths", "geom_dataid")


def pool_meshes(scenes: list[Scene]) -> list[tuple]:
    """The distinct random convex meshes (vertex tuples) of the active objects of `scenes`, in first-seen order."""
    seen: dict[tuple, None] = {}
    for sc in scenes:
        for o in sc.objects:
            if o.active and o.shape == "mesh":
                seen.setdefault(o.mesh, None)
    return list(seen)


def share_meshes(
    scenes: list[Scene],
    models: list[mujoco.MjModel],
    compile_pool: Callable[[Scene, list[np.ndarray]], mujoco.MjModel],
) -> list[mujoco.MjModel]:
    """One model per world (`models`: the worlds' uniform models), all of one layout: copies of
    `compile_pool(scene, meshes)` (the uniform model of scenes[0] without objects, every slot's mesh the
    placeholder, with every mesh of the batch added as "pool<k>") holding each world's own values of every array
    but the meshes', and each slot's mesh geom pointed at its world's mesh (and posed by the general transform,
    not a same-frame shortcut, since its mesh's frame differs per world). For MuJoCo Warp only: MuJoCo C's
    midphase reads the bounding-volume trees, which stay the shared model's."""
    pool = pool_meshes(scenes)
    shared = compile_pool(scenes[0].replace(objects=()), [np.asarray(v, float) for v in pool])
    index = {v: mujoco.mj_name2id(shared, mujoco.mjtObj.mjOBJ_MESH, f"pool{k}") for k, v in enumerate(pool)}
    keys = [
        k for k in dir(shared) if not k.startswith(("_", *_MESH_OWNED)) and isinstance(getattr(shared, k), np.ndarray)
    ]
    slots: list[tuple[int, int]] = []  # (placeholder mesh, mesh geom) of each object slot
    while (mesh := mujoco.mj_name2id(shared, mujoco.mjtObj.mjOBJ_MESH, f"obj{len(slots)}_mesh")) >= 0:
        slots.append((mesh, int(np.flatnonzero(shared.geom_dataid == mesh)[0])))
    out = []
    for sc, own in zip(scenes, models, strict=True):
        m = copy.copy(shared)
        for k in keys:
            mine = getattr(own, k)
            if mine.shape != getattr(m, k).shape:
                raise ValueError(f"share_meshes: {k} differs in shape: the models are not of one uniform layout")
            getattr(m, k)[...] = mine
        for i, (slot, geom) in enumerate(slots):
            o = sc.objects[i] if i < len(sc.objects) else None
            m.geom_dataid[geom] = index[o.mesh] if o is not None and o.active and o.shape == "mesh" else slot
            m.geom_sameframe[geom] = 0  # its pose is its mesh's frame: always the general transform
        out.append(m)
    return out
