"""A compiled MjModel rebuilt in one PyBullet world (for synth.backends.pybullet), as synth.usd.export does for USD.

Walks the model's bodies, geoms, joints, actuators, masses, inertias and frictions, so the PyBullet scene cannot
drift from what MuJoCo simulates:

- a tree fixed to the world that holds hinge/slide joints (the robot, a drawer's cabinet) becomes one multibody
  with a fixed base, one link per MuJoCo body (revolute, prismatic or fixed joint, MuJoCo's limits);
- a body with a free joint becomes a free rigid body; a tree without joints (and the world's own geoms) becomes
  fixed bodies, one per geom;
- geoms: box, sphere, capsule, cylinder, plane, mesh (its convex hull, as MuJoCo collides it); masses, inertias
  and inertial frames are MuJoCo's compiled ones, not recomputed from the shapes;
- MuJoCo's collision rule (contype_a & conaffinity_b or contype_b & conaffinity_a) becomes collision group bits.

Units: metres, kilograms, seconds, radians. PyBullet quaternions are (x, y, z, w), MuJoCo's (w, x, y, z); the
conversions stay in this module. `pybullet` is imported by the caller (the module is passed in).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

G = mujoco.mjtGeom
FREE, SLIDE, HINGE = (
    int(t) for t in (mujoco.mjtJoint.mjJNT_FREE, mujoco.mjtJoint.mjJNT_SLIDE, mujoco.mjtJoint.mjJNT_HINGE)
)


def xyzw(q) -> list[float]:
    """MuJoCo (w, x, y, z) -> PyBullet (x, y, z, w)."""
    return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """v (3,) rotated by the unit quaternion q (w, x, y, z)."""
    out = np.empty(3)
    mujoco.mju_rotVecQuat(out, np.asarray(v, float), np.asarray(q, float))
    return out


def qmul(a, b) -> np.ndarray:
    out = np.empty(4)
    mujoco.mju_mulQuat(out, np.asarray(a, float), np.asarray(b, float))
    return out


def qconj(q) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]], float)


@dataclass
class Body:
    """Where MuJoCo body b lives in PyBullet: multibody `uid`, `link` (-1: its base), and how its frame relates.

    kind: "link" (a multibody link; PyBullet's link frame sits at MuJoCo's body frame shifted by `offset`, the
    joint position), "free" (a free body; PyBullet reports its inertial frame: ipos/iquat) or "fixed" (never
    moves: `pos`/`quat` are its world pose)."""

    kind: str
    uid: int = -1
    link: int = -1
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3))
    ipos: np.ndarray = field(default_factory=lambda: np.zeros(3))
    iquat: np.ndarray = field(default_factory=lambda: np.array([1.0, 0, 0, 0]))
    pos: np.ndarray = field(default_factory=lambda: np.zeros(3))
    quat: np.ndarray = field(default_factory=lambda: np.array([1.0, 0, 0, 0]))


@dataclass
class Joint:
    """MuJoCo joint k (hinge or slide) as link `link` of multibody `uid`; qadr/dadr: its qpos/qvel address."""

    uid: int
    link: int
    qadr: int
    dadr: int


@dataclass
class SceneMap:
    """The PyBullet world of one MjModel: MuJoCo ids -> PyBullet handles."""

    bodies: dict[int, Body] = field(default_factory=dict)  # MuJoCo body -> Body
    joints: dict[int, Joint] = field(default_factory=dict)  # MuJoCo hinge/slide joint -> Joint
    free: dict[int, int] = field(default_factory=dict)  # MuJoCo free joint -> its body
    weights: list[tuple[int, float]] = field(default_factory=list)  # (MuJoCo body, weight [N]) gravity acts on
    shapes: dict[int, int] = field(default_factory=dict)  # MuJoCo geom -> PyBullet collision shape


def _groups(m: mujoco.MjModel) -> dict[tuple[int, int], tuple[int, int]]:
    """(contype, conaffinity) -> PyBullet (group, mask): one bit per class; PyBullet's test (group_a & mask_b and
    group_b & mask_a) then equals MuJoCo's symmetric rule."""
    classes = sorted({(int(t), int(a)) for t, a in zip(m.geom_contype, m.geom_conaffinity, strict=True) if t or a})
    if len(classes) > 31:
        raise ValueError(f"{len(classes)} (contype, conaffinity) classes: PyBullet's collision groups hold 31")
    out = {}
    for i, (ta, aa) in enumerate(classes):
        mask = sum(1 << j for j, (tb, ab) in enumerate(classes) if ta & ab or tb & aa)
        out[(ta, aa)] = (1 << i, mask)
    return out


def _colliders(m: mujoco.MjModel, b: int) -> list[int]:
    return [
        g
        for g in range(m.body_geomadr[b], m.body_geomadr[b] + m.body_geomnum[b])
        if m.geom_contype[g] or m.geom_conaffinity[g]
    ]


def _shape(pb, cid: int, m: mujoco.MjModel, geoms: list[int], offset: np.ndarray) -> int:
    """One collision shape for `geoms` of one body (a compound for several), frames relative to the body frame
    shifted by `offset`; -1 for none."""
    if not geoms:
        return -1
    kw: dict[str, list] = {k: [] for k in ("shapeTypes", "radii", "halfExtents", "lengths", "planeNormals")}
    kw |= {"collisionFramePositions": [], "collisionFrameOrientations": []}
    for g in geoms:
        t, size = int(m.geom_type[g]), m.geom_size[g]
        name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}"
        pos, quat = (m.geom_pos[g] - offset).tolist(), xyzw(m.geom_quat[g])
        if t == G.mjGEOM_MESH:
            if len(geoms) > 1:
                raise ValueError(f"geom {name}: a mesh in a body with several colliders has no PyBullet compound")
            k = m.geom_dataid[g]
            v = m.mesh_vert[m.mesh_vertadr[k] : m.mesh_vertadr[k] + m.mesh_vertnum[k]]
            return pb.createCollisionShape(
                pb.GEOM_MESH,
                vertices=v.tolist(),
                collisionFramePosition=pos,
                collisionFrameOrientation=quat,
                physicsClientId=cid,
            )
        typ = {
            G.mjGEOM_BOX: pb.GEOM_BOX,
            G.mjGEOM_SPHERE: pb.GEOM_SPHERE,
            G.mjGEOM_CAPSULE: pb.GEOM_CAPSULE,
            G.mjGEOM_CYLINDER: pb.GEOM_CYLINDER,
            G.mjGEOM_PLANE: pb.GEOM_PLANE,
        }.get(t)
        if typ is None:
            raise ValueError(f"geom {name}: MuJoCo geom type {t} has no PyBullet shape")
        kw["shapeTypes"].append(typ)
        kw["radii"].append(float(size[0]))
        kw["halfExtents"].append(size.tolist() if t == G.mjGEOM_BOX else [0.0, 0.0, 0.0])
        kw["lengths"].append(2 * float(size[1]))  # capsule/cylinder: MuJoCo's size[1] is half the length, along z
        kw["planeNormals"].append([0.0, 0.0, 1.0])
        kw["collisionFramePositions"].append(pos)
        kw["collisionFrameOrientations"].append(quat)
    if len(geoms) == 1:
        return pb.createCollisionShape(
            kw["shapeTypes"][0],
            radius=kw["radii"][0],
            halfExtents=kw["halfExtents"][0],
            height=kw["lengths"][0],
            planeNormal=kw["planeNormals"][0],
            collisionFramePosition=kw["collisionFramePositions"][0],
            collisionFrameOrientation=kw["collisionFrameOrientations"][0],
            physicsClientId=cid,
        )
    return pb.createCollisionShapeArray(physicsClientId=cid, **kw)


def _material(pb, cid: int, m: mujoco.MjModel, uid: int, link: int, geoms: list[int], groups: dict) -> None:
    """Friction and collision group of a body's colliders (PyBullet has one friction per link: the first
    collider's; MuJoCo's torsional friction is PyBullet's spinning friction)."""
    if not geoms:
        return
    g = geoms[0]
    group, mask = groups[(int(m.geom_contype[g]), int(m.geom_conaffinity[g]))]
    for h in geoms[1:]:
        gh, mh = groups[(int(m.geom_contype[h]), int(m.geom_conaffinity[h]))]
        group, mask = group | gh, mask | mh
    pb.setCollisionFilterGroupMask(uid, link, group, mask, physicsClientId=cid)
    pb.changeDynamics(
        uid,
        link,
        lateralFriction=float(m.geom_friction[g, 0]),
        spinningFriction=float(m.geom_friction[g, 1]) if m.geom_condim[g] >= 4 else 0.0,
        rollingFriction=float(m.geom_friction[g, 2]) if m.geom_condim[g] >= 6 else 0.0,
        restitution=0.0,
        frictionAnchor=0,
        physicsClientId=cid,
    )


def build(pb, cid: int, m: mujoco.MjModel, qpos: np.ndarray) -> SceneMap:
    """Model `m` posed at `qpos` (nq,) in the (empty) PyBullet world `cid`. Raises ValueError for a MuJoCo
    feature without a PyBullet counterpart here (ball joints, bodies with several joints, free trees...)."""
    d = mujoco.MjData(m)
    d.qpos[:] = qpos
    mujoco.mj_kinematics(m, d)
    groups, out = _groups(m), SceneMap()
    pb.setGravity(0, 0, 0, physicsClientId=cid)  # gravity is applied per body (MuJoCo's gravcomp), see `weights`
    pb.setTimeStep(float(m.opt.timestep), physicsClientId=cid)
    g_norm = float(np.linalg.norm(m.opt.gravity))

    def fixed(b: int, geoms: list[int]) -> None:
        """Colliders of a body that never moves: one fixed PyBullet body per geom."""
        out.bodies[b] = Body("fixed", pos=d.xpos[b].copy(), quat=d.xquat[b].copy())
        for g in geoms:
            shape = _shape(pb, cid, m, [g], np.zeros(3))
            uid = pb.createMultiBody(0, shape, -1, d.xpos[b].tolist(), xyzw(d.xquat[b]), physicsClientId=cid)
            _material(pb, cid, m, uid, -1, [g], groups)

    fixed(0, _colliders(m, 0))
    for r in sorted(set(m.body_rootid[1:].tolist())):
        tree = [b for b in range(1, m.nbody) if m.body_rootid[b] == r]
        name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, r)
        jtypes = [
            int(m.jnt_type[k]) for b in tree for k in range(m.body_jntadr[b], m.body_jntadr[b] + m.body_jntnum[b])
        ]
        if not jtypes:
            for b in tree:
                fixed(b, _colliders(m, b))
        elif tree == [r] and jtypes == [FREE]:
            _free(pb, cid, m, d, r, groups, out)
            out.free[int(m.body_jntadr[r])] = r
        elif FREE in jtypes or m.body_jntnum[r]:
            raise ValueError(f"body {name}: only free bodies and fixed-base mechanisms map to PyBullet")
        else:
            _mechanism(pb, cid, m, d, tree, groups, out)
    out.weights = [
        (b, float(m.body_mass[b] * (1 - m.body_gravcomp[b]) * g_norm))
        for b, body in out.bodies.items()
        if body.kind != "fixed" and m.body_mass[b] * (1 - m.body_gravcomp[b]) > 0
    ]
    _equalities(pb, cid, m, out)
    return out


def _free(pb, cid: int, m: mujoco.MjModel, d: mujoco.MjData, b: int, groups: dict, out: SceneMap) -> None:
    geoms = _colliders(m, b)
    uid = pb.createMultiBody(
        float(m.body_mass[b]),
        _shape(pb, cid, m, geoms, np.zeros(3)),
        -1,
        d.xpos[b].tolist(),
        xyzw(d.xquat[b]),
        baseInertialFramePosition=m.body_ipos[b].tolist(),
        baseInertialFrameOrientation=xyzw(m.body_iquat[b]),
        physicsClientId=cid,
    )
    pb.changeDynamics(
        uid, -1, localInertiaDiagonal=m.body_inertia[b].tolist(), linearDamping=0, angularDamping=0, physicsClientId=cid
    )
    _material(pb, cid, m, uid, -1, geoms, groups)
    out.bodies[b] = Body("free", uid, -1, ipos=m.body_ipos[b].copy(), iquat=m.body_iquat[b].copy())


def _mechanism(pb, cid: int, m: mujoco.MjModel, d: mujoco.MjData, tree: list[int], groups: dict, out: SceneMap):
    """A tree welded to the world: its root is the fixed base, every other body a link (ids are topological)."""
    r, links = tree[0], tree[1:]
    offset = {r: np.zeros(3)}
    for b in links:
        if m.body_jntnum[b] > 1:
            raise ValueError(f"body {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, b)}: several joints in one body")
        k = m.body_jntadr[b]
        if m.body_jntnum[b] and m.jnt_type[k] not in (HINGE, SLIDE):
            raise ValueError(f"joint {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_JOINT, k)}: only hinge and slide map")
        offset[b] = m.jnt_pos[k].copy() if m.body_jntnum[b] else np.zeros(3)
    index = {b: i for i, b in enumerate(links)}
    kw: dict[str, list] = {
        k: []
        for k in (
            "linkMasses",
            "linkCollisionShapeIndices",
            "linkVisualShapeIndices",
            "linkPositions",
            "linkOrientations",
            "linkInertialFramePositions",
            "linkInertialFrameOrientations",
            "linkParentIndices",
            "linkJointTypes",
            "linkJointAxis",
        )
    }
    for b in links:
        p, k = int(m.body_parentid[b]), int(m.body_jntadr[b])
        kw["linkMasses"].append(float(m.body_mass[b]))
        kw["linkCollisionShapeIndices"].append(_shape(pb, cid, m, _colliders(m, b), offset[b]))
        kw["linkVisualShapeIndices"].append(-1)
        kw["linkPositions"].append((m.body_pos[b] + rotate(m.body_quat[b], offset[b]) - offset[p]).tolist())
        kw["linkOrientations"].append(xyzw(m.body_quat[b]))
        kw["linkInertialFramePositions"].append((m.body_ipos[b] - offset[b]).tolist())
        kw["linkInertialFrameOrientations"].append(xyzw(m.body_iquat[b]))
        kw["linkParentIndices"].append(index[p] + 1 if p in index else 0)  # PyBullet: 0 is the base
        typ = (
            pb.JOINT_FIXED
            if not m.body_jntnum[b]
            else pb.JOINT_REVOLUTE
            if m.jnt_type[k] == HINGE
            else pb.JOINT_PRISMATIC
        )
        kw["linkJointTypes"].append(typ)
        kw["linkJointAxis"].append(m.jnt_axis[k].tolist() if m.body_jntnum[b] else [0.0, 0.0, 1.0])
    base_geoms = _colliders(m, r)
    uid = pb.createMultiBody(
        0, _shape(pb, cid, m, base_geoms, np.zeros(3)), -1, d.xpos[r].tolist(), xyzw(d.xquat[r]),
        useMaximalCoordinates=False, physicsClientId=cid, **kw,
    )  # fmt: skip
    _material(pb, cid, m, uid, -1, base_geoms, groups)
    out.bodies[r] = Body("fixed", uid, -1, pos=d.xpos[r].copy(), quat=d.xquat[r].copy())
    for b in links:
        i, k = index[b], int(m.body_jntadr[b])
        pb.changeDynamics(
            uid, i, localInertiaDiagonal=m.body_inertia[b].tolist(), linearDamping=0, angularDamping=0,
            physicsClientId=cid,
        )  # fmt: skip
        _material(pb, cid, m, uid, i, _colliders(m, b), groups)
        out.bodies[b] = Body("link", uid, i, offset=offset[b])
        if not m.body_jntnum[b]:
            continue
        if m.jnt_limited[k]:
            lo, hi = (float(x) for x in m.jnt_range[k])
            pb.changeDynamics(uid, i, jointLowerLimit=lo, jointUpperLimit=hi, physicsClientId=cid)
        pb.setJointMotorControl2(uid, i, pb.VELOCITY_CONTROL, force=0, physicsClientId=cid)  # no default motor
        out.joints[k] = Joint(uid, i, int(m.jnt_qposadr[k]), int(m.jnt_dofadr[k]))


def _equalities(pb, cid: int, m: mujoco.MjModel, out: SceneMap) -> None:
    """MuJoCo's joint equalities q1 = q2 (the coupled fingers) as PyBullet gear constraints."""
    for e in range(m.neq):
        name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_EQUALITY, e) or f"equality{e}"
        if not m.eq_active0[e]:
            continue
        if m.eq_type[e] != mujoco.mjtEq.mjEQ_JOINT or not np.allclose(m.eq_data[e, :5], [0, 1, 0, 0, 0]):
            raise ValueError(f"equality {name}: only joint equalities q1 = q2 map to PyBullet")
        a, b = out.joints[int(m.eq_obj1id[e])], out.joints[int(m.eq_obj2id[e])]
        c = pb.createConstraint(a.uid, a.link, b.uid, b.link, pb.JOINT_GEAR, [0, 0, 1], [0, 0, 0], [0, 0, 0],
                                physicsClientId=cid)  # fmt: skip
        pb.changeConstraint(c, gearRatio=-1, maxForce=1000.0, erp=0.2, physicsClientId=cid)  # equal positions
