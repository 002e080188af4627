"""Compile a `Scene` into MuJoCo: floor, table, robot, objects, place target, light, cameras.

The model has a fixed layout for a given (embodiment, number of object slots): unused slots
are parked, invisible and inert, so the models of a batch share MjData's layout and can be
stepped together by ``mujoco.rollout``.
"""

from __future__ import annotations

import itertools

import mujoco
import numpy as np

from synth.embodiment import Embodiment, Mount
from synth.physics import Physics, largest_step
from synth.robot import WORLD_CONTYPE, add_arms
from synth.tabletop.bodies import object_pose, solref
from synth.tabletop.cabinet import add_drawer
from synth.tabletop.surfaces import add_surfaces
from synth.types import Camera, Obj, Scene, Target

TIMESTEP = 0.002  # [s]
_LIGHT = {
    "directional": mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
    "spot": mujoco.mjtLightType.mjLIGHT_SPOT,
    "point": mujoco.mjtLightType.mjLIGHT_POINT,
}
_GEOM = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
    "mesh": mujoco.mjtGeom.mjGEOM_MESH,
}


def camera_xyaxes(cam: Camera) -> list[float]:
    """MuJoCo camera x/y axes for a camera at `pos` looking at `lookat` with world z up."""
    fwd = np.asarray(cam.lookat, float) - np.asarray(cam.pos, float)
    fwd /= np.linalg.norm(fwd)
    x = np.cross(fwd, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(x, fwd)
    return [*x, *y]


def timestep_for(control_hz: float) -> float:
    """The physics step [s]: the largest at most TIMESTEP that divides one control period evenly."""
    return largest_step(control_hz, TIMESTEP)


def build(
    scene: Scene,
    emb: Embodiment,
    slots: int,
    resolution: tuple[int, ...] = (128, 128),
    control_hz: float = 20.0,
    physics: Physics | None = None,
    uniform: bool = False,
    meshes: list[np.ndarray] | tuple = (),
) -> mujoco.MjModel:
    """Compile `scene` with `slots` object bodies (objects beyond those given are parked); the physics
    step divides the control period `control_hz` evenly (by default 2 ms at 10, 20, 25 or 50 Hz; `physics`
    sets the step, integrator and solver, synth.physics). `uniform`: every object slot and target in the
    one layout of synth.tabletop.uniform (what any draw can put there, the rest parked), so that the models
    of all draws differ only in fields MuJoCo Warp batches per world; `meshes` ((V, 3) vertices [m] each) are
    added as "pool<k>", for worlds that point their geoms at them (synth.tabletop.uniform.share_meshes)."""
    if len(scene.objects) > slots:
        raise ValueError(f"scene has {len(scene.objects)} objects but only {slots} slots")
    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    spec.modelname = "synth_tabletop"
    opt = spec.option
    (physics or Physics(timestep_for(control_hz))).apply(opt)  # timestep, integrator, solver
    opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    opt.impratio = 10.0
    spec.visual.global_.offwidth, spec.visual.global_.offheight = max(resolution[1], 64), max(resolution[0], 64)
    spec.visual.headlight.ambient = list(scene.lights[0].ambient)
    spec.visual.headlight.diffuse = [0.2, 0.2, 0.2]
    wb = spec.worldbody
    floor = wb.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.05], rgba=[0.5, 0.5, 0.52, 1])
    floor.contype, floor.conaffinity = WORLD_CONTYPE, WORLD_CONTYPE
    _add_table(spec, scene, emb)
    bases = [m.base_pose(scene.base) for m in emb.mounts]  # robot_base: every arm moved with the scene's offset
    add_arms(spec, emb, bases, damping=scene.arm.damping, gain=scene.arm.gain)
    add_object, add_target = _add_object, _add_target
    if uniform:  # imported here: it builds on this module's helpers
        from synth.tabletop.uniform import add_object, add_target
    for i in range(slots):
        add_object(spec, i, scene.objects[i] if i < len(scene.objects) else None, scene.table.height)
    for k, tg in enumerate(scene.all_targets):  # target_*, then target1_*, target2_* for the extra targets
        add_target(spec, tg, scene.table.height, "target" if k == 0 else f"target{k}")
    if scene.drawer is not None:
        add_drawer(spec, scene.drawer, scene.table.height)
    add_surfaces(spec, scene)
    for k, verts in enumerate(meshes):
        spec.add_mesh(name=f"pool{k}", uservert=np.asarray(verts, float).ravel())
    for k, lt in enumerate(scene.lights):  # the key light keeps its old name
        light = wb.add_light(
            name="sun" if k == 0 else f"light{k}", pos=list(lt.pos), dir=list(lt.direction), diffuse=list(lt.diffuse)
        )
        light.castshadow = False
        light.type = _LIGHT[lt.kind]
        light.active = lt.active
        if lt.kind == "spot":
            light.cutoff = lt.cutoff
    for cam in scene.cameras:
        c = wb.add_camera(name=cam.name, pos=list(cam.pos), fovy=cam.fovy)
        c.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
        c.alt.xyaxes = camera_xyaxes(cam)
    # "obj" sensors follow the task's object: objects[0], or the drawer of a drawer task
    obj = ("drawer", mujoco.mjtObj.mjOBJ_BODY) if scene.drawer is not None else ("obj0", mujoco.mjtObj.mjOBJ_BODY)
    tcps = [(f"{m.prefix}tcp", f"{m.prefix}tcp", mujoco.mjtObj.mjOBJ_SITE) for m in emb.mounts]
    for kind, name, typ in (*tcps, ("obj", *obj)):
        for sens, dim in (("pos", mujoco.mjtSensor.mjSENS_FRAMEPOS), ("quat", mujoco.mjtSensor.mjSENS_FRAMEQUAT)):
            s = spec.add_sensor(name=f"{kind}_{sens}", type=dim, objname=name)
            s.objtype = typ
    return spec.compile()


def _add_table(spec: mujoco.MjSpec, scene: Scene, emb: Embodiment) -> None:
    """The table top (a collider) and each arm's pedestal from the floor up to its base (visual only)."""
    t = scene.table
    thick = 0.04
    top = spec.worldbody.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX)
    top.size, top.pos = [t.size[0], t.size[1], thick / 2], [t.centre[0], t.centre[1], t.height - thick / 2]
    top.rgba, top.friction = list(t.rgba), [t.friction, 0.005, 0.0001]
    top.contype, top.conaffinity = WORLD_CONTYPE, WORLD_CONTYPE
    if t.restitution > 0:
        top.solref = solref(t.restitution)
    for m in emb.mounts:
        base, _ = m.base_pose(scene.base)
        ped = spec.worldbody.add_geom(
            name=f"{m.prefix}pedestal", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.09, base[2] / 2, 0]
        )
        ped.pos, ped.rgba, ped.contype, ped.conaffinity = [base[0], base[1], base[2] / 2], [0.2, 0.2, 0.22, 1], 0, 0


def _add_object(spec: mujoco.MjSpec, i: int, obj: Obj | None, table_height: float) -> None:
    name = f"obj{i}"
    if obj is None or not obj.active:  # parked: far behind the robot, floating, no contacts, invisible
        body = spec.worldbody.add_body(name=name, pos=[-2.0 - 0.2 * i, 2.0, 0.5], gravcomp=1.0)
        body.add_freejoint(name=name)
        g = body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.03, 0, 0], rgba=[0, 0, 0, 0])
        g.contype, g.conaffinity, g.mass = 0, 0, 0.1
        return
    qpos = object_pose(obj, table_height)
    body = spec.worldbody.add_body(name=name, pos=qpos[:3], quat=qpos[3:])
    body.add_freejoint(name=name)
    if obj.parts:  # a concave object: one convex mesh geom per part, its mass shared by volume
        _add_parts(spec, body, name, obj)
        return
    g = body.add_geom(name=name, type=_GEOM[obj.shape])
    if obj.shape == "mesh":
        spec.add_mesh(name=f"{name}_mesh", uservert=np.asarray(obj.mesh, float).ravel())
        g.meshname = f"{name}_mesh"
    else:
        g.size = list(obj.size)
    _surface(g, obj, obj.mass)


def _surface(g: mujoco.MjsGeom, obj: Obj, mass: float) -> None:
    """An object geom's colour, mass [kg], friction, collision bits and restitution."""
    g.rgba, g.mass = list(obj.rgba), mass
    g.friction, g.condim = [obj.friction, 0.005, 0.0001], 4
    g.contype, g.conaffinity = WORLD_CONTYPE, WORLD_CONTYPE
    if obj.restitution > 0:  # the fingers' pads have priority: their contacts keep the default
        g.solref = solref(obj.restitution)


def _add_parts(spec: mujoco.MjSpec, body: mujoco.MjsBody, name: str, obj: Obj) -> None:
    """Geoms `name` (part 0), `name`_p1, ... of a concave object's convex parts."""
    import trimesh

    vols = [trimesh.convex.convex_hull(np.asarray(p, float)).volume for p in obj.parts]
    for k, (part, vol) in enumerate(zip(obj.parts, vols, strict=True)):
        gname = name if k == 0 else f"{name}_p{k}"
        spec.add_mesh(name=f"{gname}_mesh", uservert=np.asarray(part, float).ravel())
        g = body.add_geom(name=gname, type=mujoco.mjtGeom.mjGEOM_MESH, meshname=f"{gname}_mesh")
        _surface(g, obj, obj.mass * vol / sum(vols))


def _add_target(spec: mujoco.MjSpec, tg: Target, z: float, prefix: str) -> None:
    """Base plate + four walls on the table top at height z [m], always five geoms named `prefix`_*; a flat
    region has no walls and no collisions."""
    tray = tg.walled
    base_h = 0.006 if tray else 0.0008
    w = 0.006  # wall thickness [m]
    hx, hy = tg.size
    parts: list[tuple[str, tuple[float, float, float], tuple[float, float, float]]] = [
        ("base", (0, 0, base_h / 2), (hx + (w if tray else 0), hy + (w if tray else 0), base_h / 2))
    ]
    wall_h = tg.wall if tray else 0.001
    for k, (dx, dy, sx, sy) in enumerate(
        (
            (hx + w / 2, 0, w / 2, hy + w),
            (-hx - w / 2, 0, w / 2, hy + w),
            (0, hy + w / 2, hx, w / 2),
            (0, -hy - w / 2, hx, w / 2),
        )
    ):
        parts.append((f"wall{k}", (dx, dy, wall_h / 2 + base_h), (sx, sy, wall_h / 2)))
    for name, (px, py, pz), size in parts:
        g = spec.worldbody.add_geom(name=f"{prefix}_{name}", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(size))
        g.pos = [tg.pos[0] + px, tg.pos[1] + py, z + pz]
        visible = (tray or name == "base") and tg.kind != "none"
        g.rgba = list(tg.rgba) if visible else [0, 0, 0, 0]
        g.contype = g.conaffinity = WORLD_CONTYPE if tray else 0


class ArmAddresses:
    """One arm's addresses in a compiled tabletop model."""

    def __init__(self, model: mujoco.MjModel, mount: Mount):
        name2id = mujoco.mj_name2id
        J, B = mujoco.mjtObj.mjOBJ_JOINT, mujoco.mjtObj.mjOBJ_BODY
        p = mount.prefix
        jid = [name2id(model, J, f"{p}{j.name}") for j in mount.body.joints]
        self.qadr = model.jnt_qposadr[jid]  # (dof,)
        self.dadr = model.jnt_dofadr[jid]
        self.finger_qadr = model.jnt_qposadr[[name2id(model, J, f"{p}finger_{s}") for s in ("left", "right")]]
        base = name2id(model, B, f"{p}base")
        self.bodies = np.flatnonzero(model.body_rootid == model.body_rootid[base])
        self.hand_body = name2id(model, B, f"{p}hand")
        self.tcp = f"{p}tcp"  # site name; sensors f"{tcp}_pos", f"{tcp}_quat"
        self.base, self.yaw = mount.base_pose()  # (3,) [m] in the world; [rad] of the base frame about z


class Layout:
    """Addresses in a compiled tabletop model (the same for every model of one layout).

    `arms` holds each arm's addresses in action order; `arm_qadr` all arm joints in that order; `finger_qadr`
    and `hand_body` are the first arm's (the only one of a single-arm embodiment)."""

    def __init__(self, model: mujoco.MjModel, emb: Embodiment):
        name2id = mujoco.mj_name2id
        J, G = mujoco.mjtObj.mjOBJ_JOINT, mujoco.mjtObj.mjOBJ_GEOM
        self.arms = [ArmAddresses(model, m) for m in emb.mounts]
        self.arm_qadr = np.concatenate([a.qadr for a in self.arms])
        self.arm_dadr = np.concatenate([a.dadr for a in self.arms])
        self.finger_qadr = self.arms[0].finger_qadr
        slots = [name2id(model, J, f"obj{i}") for i in range(model.njnt)]
        slots = [j for j in slots if j >= 0]
        self.obj_qadr = model.jnt_qposadr[slots]
        self.obj_dadr = model.jnt_dofadr[slots]
        self.obj_geom = np.array([name2id(model, G, f"obj{i}") for i in range(len(slots))])
        self.robot_bodies = np.concatenate([a.bodies for a in self.arms])
        self.hand_body = self.arms[0].hand_body
        self.table_geom = name2id(model, G, "table")
        drawer = name2id(model, J, "drawer")
        self.drawer_qadr = int(model.jnt_qposadr[drawer]) if drawer >= 0 else -1  # -1: no drawer
        names = [model.geom(g).name or "" for g in range(model.ngeom)]
        self.target_geoms = np.array([g for g, n in enumerate(names) if n.startswith("target_")])
        # per target of Scene.all_targets: [0] is target_geoms, [k] the geoms of targets[k-1] (target<k>_*)
        self.targets_geoms = [self.target_geoms]
        for k in itertools.count(1):
            geoms = np.array([g for g, n in enumerate(names) if n.startswith(f"target{k}_")], int)
            if not len(geoms):
                break
            self.targets_geoms.append(geoms)
        self.sensor = {
            model.sensor(s).name: slice(model.sensor_adr[s], model.sensor_adr[s] + model.sensor_dim[s])
            for s in range(model.nsensor)
        }

    def state(self, qpos: np.ndarray) -> np.ndarray:
        """(F, A) joint positions [rad] and gripper width [m] per arm, in action order, from qpos (F, nq)."""
        return np.concatenate([np.c_[qpos[:, a.qadr], qpos[:, a.finger_qadr].sum(1)] for a in self.arms], axis=1)


def initial_qpos(model: mujoco.MjModel, emb: Embodiment, layout: Layout) -> np.ndarray:
    """(nq,) the arm at home with the gripper open; objects as built; a drawer at its start opening."""
    q = model.qpos0.copy()
    if layout.drawer_qadr >= 0:  # a drawer starts as far out as its scene says
        q[layout.drawer_qadr] = model.numeric("drawer_opening").data[0]
    for a, m in zip(layout.arms, emb.mounts, strict=True):
        q[a.qadr] = m.body.home
        q[a.finger_qadr] = m.body.gripper.stroke / 2
    return q
