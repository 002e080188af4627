"""`synth export-usd`: one attempt's scene as a USD stage that Isaac Sim / Isaac Lab loads (usd-core's `pxr`).

The stage is read from the COMPILED MjModel (bodies, geoms, joints, actuators, masses, inertias) posed at the
attempt's initial qpos, so it cannot drift from what MuJoCo simulates. Units: metres, kilograms, seconds, z up;
USD's conventions where they differ: revolute limits and angular drive targets in degrees, angular drive gains
per degree (UsdPhysics.DriveAPI).

    /World                      default prim
      PhysicsScene              UsdPhysics.Scene: gravity; physics rate (physxScene:timeStepsPerSecond)
      Looks/                    one UsdPreviewSurface per colour, one physics material per friction
      Collision/                one CollisionGroup per MuJoCo (contype, conaffinity), pairs MuJoCo keeps apart filtered
      Static/<geom>             world geoms (floor, table, pedestal, target, walls); colliders where MuJoCo collides
      Objects/<body>/<geom>     free bodies: RigidBodyAPI + MassAPI on the body, CollisionAPI on the geom
      Robot/                    ArticulationRootAPI; one rigid link per MuJoCo body, side by side
        <body>/<geom|camera>
        joints/<joint>          FixedJoint (base to world, welded bodies), Revolute/PrismaticJoint + DriveAPI
      Lights/, Cameras/         UsdLux lights, UsdGeom cameras (the wrist camera is under its link)

What core UsdPhysics cannot say is written by PhysxSchema's names (synth.usd.stage.physx): joint armature,
gravity compensation (disableGravity) and MuJoCo's friction rule (combine mode max). The fingers' coupling
(a tendon actuator and a joint equality in MuJoCo) becomes one drive per finger, both given the same target.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from synth.drives import drives
from synth.errors import ConfigError
from synth.usd.stage import X_TO_Z, Shapes, cameras_and_lights, physx, pose, prim_name, quat_mul, z_to

FREE, SLIDE, HINGE = (
    int(t) for t in (mujoco.mjtJoint.mjJNT_FREE, mujoco.mjtJoint.mjJNT_SLIDE, mujoco.mjtJoint.mjJNT_HINGE)
)
BODY, JOINT = mujoco.mjtObj.mjOBJ_BODY, mujoco.mjtObj.mjOBJ_JOINT


@dataclass
class Drive:
    """How a USD joint's drive follows MuJoCo's controls: target = ctrl[actuator] / divisor [rad | m]."""

    joint: str  # MuJoCo joint name
    actuator: int
    divisor: float
    unit: str  # "rad" or "m"


@dataclass
class StageInfo:
    """What was written: prim paths by MuJoCo name, and the drives an Isaac runner commands."""

    articulation: str = ""
    bodies: dict[str, str] = field(default_factory=dict)  # MuJoCo body name -> rigid-body prim path
    joints: dict[str, str] = field(default_factory=dict)  # MuJoCo joint name -> joint prim path
    drives: list[Drive] = field(default_factory=list)


def require_pxr():
    """The `pxr` package, or a one-line ConfigError naming the install."""
    try:
        import pxr
    except ImportError:
        raise ConfigError('USD export needs usd-core: pip install usd-core (or pip install -e ".[usd]")') from None
    return pxr


def _body(shapes: Shapes, parent: str, b: int, d: mujoco.MjData) -> str:
    """Body b as a rigid body at its world pose in `d`, with MuJoCo's mass, inertia and geoms."""
    from pxr import Gf, UsdGeom, UsdPhysics

    m = shapes.m
    path = f"{parent}/{prim_name(m, BODY, b, 'body')}"
    prim = UsdGeom.Xform.Define(shapes.stage, path).GetPrim()
    pose(prim, d.xpos[b], d.xquat[b])
    UsdPhysics.RigidBodyAPI.Apply(prim)
    mass = UsdPhysics.MassAPI.Apply(prim)
    mass.CreateMassAttr(float(m.body_mass[b]))
    mass.CreateCenterOfMassAttr(Gf.Vec3f(*map(float, m.body_ipos[b])))
    mass.CreateDiagonalInertiaAttr(Gf.Vec3f(*map(float, m.body_inertia[b])))
    mass.CreatePrincipalAxesAttr(Gf.Quatf(*map(float, m.body_iquat[b])))
    if m.body_gravcomp[b] not in (0.0, 1.0):
        raise ValueError(f"body {path}: partial gravity compensation {m.body_gravcomp[b]} has no USD export")
    if m.body_gravcomp[b]:
        physx(prim, "PhysxRigidBodyAPI", physxRigidBody__disableGravity=True)
    for g in range(m.body_geomadr[b], m.body_geomadr[b] + m.body_geomnum[b]):
        shapes.geom(path, g)
    return path


def _joint(shapes: Shapes, path: str, b: int, body0: str | None, body1: str, drive, q: float) -> None:
    """The joint holding body b to its parent (body0; None: the world) at joint position q [rad | m]: fixed, or
    its one hinge/slide. The joint frame's x is MuJoCo's axis, so USD's joint position equals MuJoCo's qpos."""
    from pxr import Gf, UsdPhysics

    m, st = shapes.m, shapes.stage
    if m.body_jntnum[b] == 0:
        j = UsdPhysics.FixedJoint.Define(st, path)
        p1, r1 = np.zeros(3), np.array([1.0, 0, 0, 0])
    else:
        k = m.body_jntadr[b]
        if m.body_jntnum[b] > 1 or m.jnt_type[k] not in (HINGE, SLIDE):
            raise ValueError(f"body {body1}: only one hinge or slide joint per articulated body is exported")
        if m.qpos0[m.jnt_qposadr[k]]:
            raise ValueError(f"joint {path}: a nonzero reference position (ref) has no USD export")
        hinge = m.jnt_type[k] == HINGE
        j = (UsdPhysics.RevoluteJoint if hinge else UsdPhysics.PrismaticJoint).Define(st, path)
        j.CreateAxisAttr("X")
        p1, r1 = m.jnt_pos[k], quat_mul(z_to(m.jnt_axis[k]), X_TO_Z)
        unit = math.degrees(1) if hinge else 1.0  # USD: degrees for revolute joints
        if m.jnt_limited[k]:
            j.CreateLowerLimitAttr(float(m.jnt_range[k, 0] * unit))
            j.CreateUpperLimitAttr(float(m.jnt_range[k, 1] * unit))
        dof = m.jnt_dofadr[k]
        physx(j.GetPrim(), "PhysxJointAPI", physxJoint__armature=float(m.dof_armature[dof]))
        kp, kv, fmax = drive[2:] if drive else (0.0, 0.0, np.inf)
        kv += m.dof_damping[dof]  # MuJoCo's passive damping: the same force as drive damping (target velocity 0)
        if kp or kv:
            dr = UsdPhysics.DriveAPI.Apply(j.GetPrim(), "angular" if hinge else "linear")
            dr.CreateTypeAttr("force")
            dr.CreateStiffnessAttr(float(kp / unit))  # per degree for angular drives
            dr.CreateDampingAttr(float(kv / unit))
            dr.CreateTargetPositionAttr(float(q * unit))
            if np.isfinite(fmax):
                dr.CreateMaxForceAttr(float(fmax))
    at = np.empty(3)
    mujoco.mju_rotVecQuat(at, np.asarray(p1, float), m.body_quat[b])
    p0, r0 = m.body_pos[b] + at, quat_mul(m.body_quat[b], r1)  # the same frame in the parent, at q = 0
    if body0:
        j.CreateBody0Rel().SetTargets([body0])
    j.CreateBody1Rel().SetTargets([body1])
    for attr, v in ((j.CreateLocalPos0Attr, p0), (j.CreateLocalPos1Attr, p1)):
        attr(Gf.Vec3f(*map(float, v)))
    for attr, v in ((j.CreateLocalRot0Attr, r0), (j.CreateLocalRot1Attr, r1)):
        attr(Gf.Quatf(*map(float, v)))


def write_stage(
    m: mujoco.MjModel, qpos: np.ndarray, path: str | Path, resolution: tuple[int, int], meta: dict | None = None
) -> StageInfo:
    """Write model `m` posed at `qpos` (nq,) to `path` (.usda text, .usd/.usdc binary).

    resolution: (height, width) [px] of the cameras; meta: strings and numbers kept in the root layer's
    customLayerData under "synth". Raises ValueError for a MuJoCo feature the export does not cover.
    """
    require_pxr()
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics

    d = mujoco.MjData(m)
    d.qpos[:] = qpos
    mujoco.mj_kinematics(m, d)
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    stage.SetDefaultPrim(UsdGeom.Xform.Define(stage, "/World").GetPrim())
    for part in ("Looks", "Collision", "Static", "Objects", "Lights", "Cameras"):
        UsdGeom.Scope.Define(stage, f"/World/{part}")
    if meta:
        stage.GetRootLayer().customLayerData = {"synth": meta}
    scene = UsdPhysics.Scene.Define(stage, "/World/PhysicsScene")
    g = float(np.linalg.norm(m.opt.gravity))
    scene.CreateGravityDirectionAttr(Gf.Vec3f(*map(float, m.opt.gravity / g if g else (0, 0, -1))))
    scene.CreateGravityMagnitudeAttr(g)
    scene.GetPrim().AddAppliedSchema("PhysxSceneAPI")
    rate = scene.GetPrim().CreateAttribute("physxScene:timeStepsPerSecond", Sdf.ValueTypeNames.UInt)
    rate.Set(round(1 / m.opt.timestep))

    shapes, info, parents = Shapes(m, stage), StageInfo(), {}
    for gi in np.flatnonzero(m.geom_bodyid == 0):
        shapes.geom("/World/Static", int(gi))
    joint_drives = drives(m)
    free = {b for b in range(1, m.nbody) if m.body_jntnum[b] and m.jnt_type[m.body_jntadr[b]] == FREE}
    for r in sorted(set(m.body_rootid[1:].tolist())):
        tree = [b for b in range(1, m.nbody) if m.body_rootid[b] == r]
        name = mujoco.mj_id2name(m, BODY, r)
        if tree == [r] and r in free:
            info.bodies[name] = parents[r] = _body(shapes, "/World/Objects", r, d)
            continue
        if free & set(tree) or m.body_jntnum[r]:
            raise ValueError(f"body {name}: only free bodies and fixed-base articulations are exported")
        # each arm (rooted at "<prefix>base") and any other fixed-base mechanism (a drawer's cabinet) as its own
        # articulation: /World/Robot, /World/Robot_left, /World/Robot_right, /World/Cabinet
        if name.endswith("base"):
            arm = name[: -len("base")].strip("_")
            art = "/World/Robot" + (f"_{arm}" if arm else "")
            info.articulation = info.articulation or art  # the first arm's
        else:
            art = f"/World/{prim_name(m, BODY, r, 'body').capitalize()}"
        UsdPhysics.ArticulationRootAPI.Apply(UsdGeom.Xform.Define(stage, art).GetPrim())
        UsdGeom.Scope.Define(stage, f"{art}/joints")
        for b in tree:
            info.bodies[mujoco.mj_id2name(m, BODY, b)] = parents[b] = _body(shapes, art, b, d)
        for b in tree:
            k = int(m.body_jntadr[b]) if m.body_jntnum[b] else -1
            jpath = f"{art}/joints/" + (
                prim_name(m, JOINT, k, "joint") if k >= 0 else prim_name(m, BODY, b, "body") + "_fixed"
            )
            q = float(d.qpos[m.jnt_qposadr[k]]) if k >= 0 else 0.0
            _joint(shapes, jpath, b, parents.get(int(m.body_parentid[b])), parents[b], joint_drives.get(k), q)
            if k >= 0:
                info.joints[mujoco.mj_id2name(m, JOINT, k)] = jpath
                if k in joint_drives:
                    unit = "rad" if m.jnt_type[k] == HINGE else "m"
                    actuator, divisor = joint_drives[k][:2]
                    info.drives.append(Drive(mujoco.mj_id2name(m, JOINT, k), actuator, divisor, unit))
    shapes.filter_groups()
    cameras_and_lights(m, stage, parents, resolution)
    stage.GetRootLayer().Export(str(path))  # written at once: a stage open elsewhere in this process is no obstacle
    return info


def export_attempt(s, attempt: int, out: str | Path, plan: bool = True) -> dict:
    """Write attempt `attempt` of `synth generate` with settings `s` (synth.config.Settings) as a USD stage
    at `out`, built by the same Worker calls as generation; with `plan`, also `<out>.plan.json`: the planned
    joint targets (what an Isaac runner replays) and MuJoCo's outcome of them. Returns a summary."""
    require_pxr()
    from synth.batched_plans import resolve
    from synth.generate import make_worker
    from synth.pipeline import Worker
    from synth.tabletop.compiler import Layout, initial_qpos

    out = Path(out)
    if s.mode != "physics":  # the stage is the physics scene, whatever mode; planned as physics mode would
        s = dataclasses.replace(s, mode="physics", planner=resolve("auto", "physics", s.task, s.randomizers))
    w = make_worker(s)
    assert isinstance(w, Worker)
    a = w.attempts([attempt])[0]  # planned as generation plans it (batched, or alone)
    m = a.model
    assert m is not None
    q0 = initial_qpos(m, w.emb, Layout(m, w.emb))
    meta = {"task": s.task.name, "embodiment": s.embodiment, "seed": s.seed, "attempt": attempt}
    info = write_stage(m, q0, out, s.resolution, {**meta, "instruction": a.instruction})
    summary = {"stage": str(out), "instruction": a.instruction, "plan": "", "mujoco": a.failure}
    if not plan or a.plan is None:
        return summary
    res = w.execute([a])[0]  # MuJoCo's outcome of the plan: the reference a replay elsewhere is compared with
    path = out.with_suffix(".plan.json")
    path.write_text(json.dumps(plan_record(s, w, a, info, q0, res["frames"].qpos[-1], out.name)))
    return {**summary, "plan": str(path), "mujoco": a.failure or "success"}


def plan_record(s, w, a, info: StageInfo, q0: np.ndarray, q_end: np.ndarray, stage_name: str) -> dict:
    """The plan in the stage's terms: per driven joint (prim path), targets (T, J) [rad | m] at the control
    rate, held first-order as synth.execute does (over period t the target ramps from row t-1, or `start`, to
    row t); free bodies' poses (x, y, z [m], qw, qx, qy, qz) at the start and after MuJoCo ran the plan."""
    from synth.execute import substeps

    m = a.model
    ctrl = w.executed(a) * w.scale  # (T, nu): what MuJoCo's actuators are given (any action noise included)
    start = w.emb.start * w.scale
    jid = [mujoco.mj_name2id(m, JOINT, dr.joint) for dr in info.drives]
    objects = {p: mujoco.mj_name2id(m, BODY, n) for n, p in info.bodies.items() if p.startswith("/World/Objects/")}
    free = {p: int(m.jnt_qposadr[m.body_jntadr[b]]) for p, b in objects.items()}  # qpos address of its free joint
    return {
        "format": "synth.usd_plan/1",
        "stage": stage_name,
        "task": s.task.name,
        "seed": s.seed,
        "attempt": a.index,
        "instruction": a.instruction,
        "articulation": info.articulation,
        "joints": [info.joints[dr.joint] for dr in info.drives],
        "units": [dr.unit for dr in info.drives],
        "physics_dt": m.opt.timestep,
        "control_hz": s.control_hz,
        "substeps": substeps(m, s.control_hz),
        "settle_periods": round(s.task.settle * s.control_hz),
        "initial_q": [float(q0[m.jnt_qposadr[j]]) for j in jid],
        "start": [float(start[dr.actuator] / dr.divisor) for dr in info.drives],
        "targets": np.stack([ctrl[:, dr.actuator] / dr.divisor for dr in info.drives], 1).tolist(),
        "phases": [s.task.phases[i] for i in a.p.phase],
        "objects_start": {p: q0[adr : adr + 7].tolist() for p, adr in free.items()},
        "mujoco": {
            "outcome": a.failure or "success",
            "objects_end": {p: q_end[adr : adr + 7].tolist() for p, adr in free.items()},
        },
    }
