"""Build an embodiment into an MjSpec: capsule links along the DH rows, a parallel gripper,
position actuators, gravity compensation. Used for the scene and for the robot-only IK model."""

from __future__ import annotations

import mujoco
import numpy as np

from synth.embodiment import Embodiment
from synth.pose import yaw_quat

ROBOT_CONTYPE, WORLD_CONTYPE = 2, 1  # robot links never collide with each other, only with the world


def _quat_x(angle: float) -> np.ndarray:
    return np.array([np.cos(angle / 2), np.sin(angle / 2), 0.0, 0.0])


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    q = np.empty(4)
    mujoco.mju_mulQuat(q, a, b)
    return q


def dh_offset(a: float, alpha: float, d: float, theta: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Child-frame pose of a modified-DH row: Rx(alpha) Tx(a) Rz(theta) Tz(d); the joint turns about the
    child's z, and `theta` is the row's constant offset (the joint's zero differs from the DH zero)."""
    return np.array([a, -d * np.sin(alpha), d * np.cos(alpha)]), _quat_mul(_quat_x(alpha), yaw_quat(theta))


def _link_geom(
    body: mujoco.MjsBody, to: np.ndarray, radius: float, mass: float, rgba, collide: tuple[int, int]
) -> None:
    g = body.add_geom(name=f"{body.name}_geom")
    if np.linalg.norm(to) < 1e-6:
        g.type, g.size = mujoco.mjtGeom.mjGEOM_SPHERE, [radius, 0, 0]
    else:
        g.type, g.size = mujoco.mjtGeom.mjGEOM_CAPSULE, [radius, 0, 0]
        g.fromto = [0, 0, 0, *to]
    g.mass, g.rgba = mass, rgba
    g.contype, g.conaffinity = collide


def collision_bits(arm: int, arms: int) -> tuple[int, int]:
    """(contype, conaffinity) of arm `arm` of `arms`: it collides with the world and with the other arms,
    never with itself. One arm: (ROBOT_CONTYPE, WORLD_CONTYPE)."""
    own = ROBOT_CONTYPE << arm
    others = sum(ROBOT_CONTYPE << k for k in range(arms)) - own
    return own, WORLD_CONTYPE | others


def add_robot(
    spec: mujoco.MjSpec,
    emb: Embodiment,
    base_pos=(0.0, 0.0, 0.0),
    prefix: str = "",
    damping: tuple[float, ...] = (),
    gain: tuple[float, ...] = (),
    base_yaw: float = 0.0,
    collide: tuple[int, int] = (ROBOT_CONTYPE, WORLD_CONTYPE),
) -> None:
    """Add the arm, gripper, actuators (one per joint + one gripper) and the `tcp` site to `spec`; every
    name takes `prefix`. The base stands at `base_pos` [m] turned by `base_yaw` [rad] about z.

    Actuator order is the action order: joints, then gripper width/2 per finger [m]. `damping` and
    `gain` scale each arm joint's damping and position gain (empty: 1). `collide` is the (contype,
    conaffinity) of its geoms (see collision_bits).
    The spec must use radians (``spec.compiler.degree = False``).
    """
    damping = tuple(damping) + (1.0,) * max(0, emb.dof - len(damping))
    gain = tuple(gain) + (1.0,) * max(0, emb.dof - len(gain))
    assert not spec.compiler.degree, "synth builds specs in radians"
    white, grey = [0.92, 0.92, 0.95, 1], [0.25, 0.25, 0.28, 1]
    base = spec.worldbody.add_body(name=f"{prefix}base", pos=list(base_pos))
    if base_yaw:
        base.quat = yaw_quat(base_yaw)
    rows = [(j.a, j.alpha, j.d, j.theta) for j in emb.joints] + [emb.flange]
    offsets = [dh_offset(*r) for r in rows]
    _link_geom(base, offsets[0][0], emb.joints[0].radius, 4.0, grey, collide)
    parent = base
    for i, jnt in enumerate(emb.joints):
        pos, quat = offsets[i]
        body = parent.add_body(name=f"{prefix}link{i + 1}", pos=pos, quat=quat, gravcomp=1.0)
        j = body.add_joint(name=f"{prefix}{jnt.name}", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1])
        j.range, j.limited = [jnt.lower, jnt.upper], True
        j.armature, j.damping = jnt.armature, [1.0 * damping[i], 0, 0]
        _link_geom(body, offsets[i + 1][0], jnt.radius, jnt.mass, white if i % 2 == 0 else grey, collide)
        parent = body
    for i, jnt in enumerate(emb.joints):
        act = spec.add_actuator(name=f"{prefix}{jnt.name}", target=f"{prefix}{jnt.name}")
        act.trntype = mujoco.mjtTrn.mjTRN_JOINT
        act.set_to_position(kp=jnt.kp * gain[i], dampratio=1.0)
        act.ctrlrange, act.ctrllimited = [jnt.lower, jnt.upper], True
        act.forcerange, act.forcelimited = [-jnt.effort, jnt.effort], True
    _add_gripper(spec, emb, parent, offsets[-1], prefix, collide)


def _add_gripper(
    spec: mujoco.MjSpec, emb: Embodiment, flange_parent, flange_offset, prefix: str, collide: tuple[int, int]
) -> None:
    gr = emb.gripper
    pos, quat = flange_offset
    hand = flange_parent.add_body(
        name=f"{prefix}hand", pos=pos, quat=_quat_mul(quat, yaw_quat(gr.mount_yaw)), gravcomp=1.0
    )
    palm = hand.add_geom(name=f"{prefix}palm", type=mujoco.mjtGeom.mjGEOM_BOX)
    palm.size, palm.pos = list(gr.palm), [0, 0, 0.004 + gr.palm[2]]
    palm.mass, palm.rgba = gr.hand_mass, [0.92, 0.92, 0.95, 1]
    palm.contype, palm.conaffinity = collide
    hand.add_site(name=f"{prefix}tcp", pos=[0, 0, gr.tcp_offset], size=[0.005, 0, 0], rgba=[1, 0, 0, 0])
    cam_pos, fovy = emb.wrist_camera
    # wrist camera looks along +z of the hand (towards the fingers); MuJoCo cameras look along -z
    hand.add_camera(name=f"{prefix}wrist", pos=list(cam_pos), quat=[0, 1, 0, 0], fovy=fovy)
    half = gr.finger_length / 2
    for side, sign in (("left", 1.0), ("right", -1.0)):
        f = hand.add_body(name=f"{prefix}finger_{side}", pos=[0, 0, gr.finger_offset], gravcomp=1.0)
        j = f.add_joint(name=f"{prefix}finger_{side}", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, sign, 0])
        j.range, j.limited, j.armature, j.damping = [0, gr.stroke / 2], True, 0.01, [2.0, 0, 0]
        g = f.add_geom(name=f"{prefix}pad_{side}", type=mujoco.mjtGeom.mjGEOM_BOX)
        g.size, g.pos = [0.011, 0.006, half], [0, sign * 0.006, half]
        g.mass, g.rgba, g.friction, g.condim = gr.finger_mass, [0.2, 0.2, 0.22, 1], [1.2, 0.02, 0.001], 4
        g.contype, g.conaffinity = collide
        g.priority = 1  # the pads' friction wins over the object's
    t = spec.add_tendon(name=f"{prefix}split")
    t.wrap_joint(f"{prefix}finger_left", 0.5)
    t.wrap_joint(f"{prefix}finger_right", 0.5)
    eq = spec.add_equality(name=f"{prefix}fingers", type=mujoco.mjtEq.mjEQ_JOINT)
    eq.name1, eq.name2 = f"{prefix}finger_left", f"{prefix}finger_right"
    eq.data[:5] = [0, 1, 0, 0, 0]
    act = spec.add_actuator(name=f"{prefix}gripper", target=f"{prefix}split")
    act.trntype = mujoco.mjtTrn.mjTRN_TENDON
    act.set_to_position(kp=2 * gr.kp, dampratio=1.0)
    act.ctrlrange, act.ctrllimited = [0, gr.stroke / 2], True
    act.forcerange, act.forcelimited = [-2 * gr.force, 2 * gr.force], True


def add_arms(
    spec: mujoco.MjSpec,
    emb: Embodiment,
    bases: list[tuple[np.ndarray, float]] | None = None,
    damping: tuple[float, ...] = (),
    gain=(),
) -> None:
    """Every arm of `emb` (one, or each of a pair), arm k's base at bases[k] = (position (3,) [m], yaw [rad])
    (Mount.base_pose); without `bases`, each at its own base_pos turned by its base_yaw."""
    n, first = len(emb.mounts), 0
    bases = bases or [(np.asarray(m.base_pos, float), m.base_yaw) for m in emb.mounts]
    for k, (m, (pos, yaw)) in enumerate(zip(emb.mounts, bases, strict=True)):
        cut = slice(first, first + m.body.dof)  # each arm its own slice of the per-joint scales (arm_dynamics)
        add_robot(spec, m.body, pos, m.prefix, damping[cut], gain[cut], yaw, collision_bits(k, n))
        first += m.body.dof


def robot_only(emb: Embodiment) -> mujoco.MjModel:
    """The arm alone (no world, no objects) with its base at the origin: the model mink solves IK on, in
    the robot base frame. For a pair, every arm at its mount (relative to the origin)."""
    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    if emb.arms:
        add_arms(spec, emb)
    else:
        add_robot(spec, emb)
    return spec.compile()
