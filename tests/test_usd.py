"""`synth export-usd`: the stage, reopened with pxr, against the MuJoCo model it was written from."""

import json
import math
import sys

import mujoco
import numpy as np
import pytest

from synth.cli import main
from synth.config import compose_config, settings
from synth.execute import controls
from synth.generate import make_worker
from synth.tabletop.compiler import Layout, initial_qpos

CASES = {  # name: export-usd arguments
    "pick_place": ["task=pick_place", "seed=3", "attempt=0"],
    "container_ur5e": ["task=place_in_container", "embodiment=ur5e", "seed=1", "attempt=2"],
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    """(stage, plan dict or None, MuJoCo model, MjData at the exported qpos, worker) of one CLI export."""
    pytest.importorskip("pxr", reason="usd-core is not installed (pip install -e '.[usd]')")
    from pxr import Usd

    args = CASES[request.param]
    out = tmp_path_factory.mktemp(request.param) / "scene.usda"
    assert main(["export-usd", *args, f"out={out}"]) == 0
    w = make_worker(settings(compose_config([a for a in args if not a.startswith("attempt=")])))
    m = w.prepare(int(args[-1].split("=")[1])).model  # rebuilt here, as `synth generate` builds it
    d = mujoco.MjData(m)
    d.qpos[:] = initial_qpos(m, w.emb, Layout(m, w.emb))
    mujoco.mj_kinematics(m, d)
    plan = out.with_suffix(".plan.json")
    return Usd.Stage.Open(str(out)), json.loads(plan.read_text()) if plan.exists() else None, m, d, w


def _world(prim):
    """World position (3,) and quaternion (w, x, y, z) of a prim without scale."""
    from pxr import UsdGeom

    mat = UsdGeom.XformCache().GetLocalToWorldTransform(prim)
    q = mat.ExtractRotationQuat()
    return np.array(mat.ExtractTranslation()), np.array([q.GetReal(), *q.GetImaginary()])


def _prims(stage, api):
    return {p.GetName(): p for p in stage.Traverse() if p.HasAPI(api)}


def _quat_diff(a, b):
    """Rotation angle [rad] between quaternions a and b."""
    v = np.empty(3)
    mujoco.mju_subQuat(v, np.asarray(a, float) / np.linalg.norm(a), np.asarray(b, float) / np.linalg.norm(b))
    return float(np.linalg.norm(v))


def test_rigid_bodies_and_masses(case):
    from pxr import UsdPhysics

    stage, _, m, d, _ = case
    bodies = _prims(stage, UsdPhysics.RigidBodyAPI)
    assert set(bodies) == {m.body(b).name for b in range(1, m.nbody)}
    for b in range(1, m.nbody):
        prim, mass = bodies[m.body(b).name], UsdPhysics.MassAPI(bodies[m.body(b).name])
        np.testing.assert_allclose(mass.GetMassAttr().Get(), m.body_mass[b], rtol=1e-6)
        np.testing.assert_allclose(mass.GetDiagonalInertiaAttr().Get(), m.body_inertia[b], rtol=1e-6)
        np.testing.assert_allclose(mass.GetCenterOfMassAttr().Get(), m.body_ipos[b], atol=1e-7)
        pos, quat = _world(prim)  # every body where MuJoCo has it at the start of the attempt
        np.testing.assert_allclose(pos, d.xpos[b], atol=1e-9)
        assert _quat_diff(quat, d.xquat[b]) < 1e-6
        gravity_off = prim.GetAttribute("physxRigidBody:disableGravity").Get() or False
        assert gravity_off == bool(m.body_gravcomp[b])


def test_geoms_colliders_and_colours(case):
    from pxr import UsdGeom, UsdPhysics, UsdShade

    stage, _, m, d, _ = case
    geoms = {p.GetName(): p for p in stage.Traverse() if p.IsA(UsdGeom.Gprim)}
    assert set(geoms) == {m.geom(g).name for g in range(m.ngeom)}
    colliders = {n for n, p in geoms.items() if p.HasAPI(UsdPhysics.CollisionAPI)}
    assert colliders == {m.geom(g).name for g in range(m.ngeom) if m.geom_contype[g] or m.geom_conaffinity[g]}
    assert {"table", "floor"} <= colliders and any(n.startswith("obj") for n in colliders)
    for g in range(m.ngeom):
        prim = geoms[m.geom(g).name]
        pos, _ = _world(prim)
        np.testing.assert_allclose(pos, d.geom_xpos[g], atol=1e-9)  # a mesh is where MuJoCo re-centred it
        if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH and prim.HasAPI(UsdPhysics.CollisionAPI):
            assert UsdPhysics.MeshCollisionAPI(prim).GetApproximationAttr().Get() == "convexHull"
        if m.geom_matid[g] < 0:  # untextured: the preview surface has MuJoCo's rgba
            shader = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()[0].GetSurfaceOutput()
            src = shader.GetConnectedSources()[0][0].source
            rgb = src.GetPrim().GetAttribute("inputs:diffuseColor").Get()
            np.testing.assert_allclose(rgb, m.geom_rgba[g, :3], atol=1e-4)
        if prim.HasAPI(UsdPhysics.CollisionAPI):
            mat = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial("physics")[0]
            mu = UsdPhysics.MaterialAPI(mat.GetPrim()).GetDynamicFrictionAttr().Get()
            np.testing.assert_allclose(mu, m.geom_friction[g, 0], rtol=1e-6)


def test_collision_groups_follow_contype(case):
    """The robot's links never touch each other (contype 2, conaffinity 1) but touch the world."""
    from pxr import UsdPhysics

    stage = case[0]
    robot = UsdPhysics.CollisionGroup.Get(stage, "/World/Collision/type2_affinity1")
    world = UsdPhysics.CollisionGroup.Get(stage, "/World/Collision/type1_affinity1")
    assert robot.GetFilteredGroupsRel().GetTargets() == [robot.GetPath()]
    assert not world.GetFilteredGroupsRel().GetTargets()


def test_articulation_and_joints(case):
    from pxr import UsdPhysics

    stage, _, m, d, _ = case
    roots = [p.GetPath().pathString for p in stage.Traverse() if p.HasAPI(UsdPhysics.ArticulationRootAPI)]
    assert roots == ["/World/Robot"]
    robot = {b for b in range(1, m.nbody) if m.body_rootid[b] == mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "base")}
    joints = {p.GetName(): UsdPhysics.Joint(p) for p in stage.Traverse() if p.IsA(UsdPhysics.Joint)}
    mj = {m.joint(j).name: j for j in range(m.njnt) if m.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE}
    fixed = {n for n, j in joints.items() if j.GetPrim().IsA(UsdPhysics.FixedJoint)}
    assert set(joints) - fixed == set(mj)
    assert len(fixed) == sum(m.body_jntnum[b] == 0 for b in robot)  # the base to the world, welded bodies
    for name, j in mj.items():
        joint = joints[name]
        hinge = m.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE
        assert joint.GetPrim().IsA(UsdPhysics.RevoluteJoint if hinge else UsdPhysics.PrismaticJoint)
        typed = (UsdPhysics.RevoluteJoint if hinge else UsdPhysics.PrismaticJoint)(joint.GetPrim())
        unit = 180 / math.pi if hinge else 1.0
        np.testing.assert_allclose(
            [typed.GetLowerLimitAttr().Get(), typed.GetUpperLimitAttr().Get()], m.jnt_range[j] * unit, rtol=1e-6
        )
        # both joint frames in the world: same origin, x along MuJoCo's axis, and turned (or slid) by qpos
        frames = []
        for k in (0, 1):
            body = stage.GetPrimAtPath(
                joint.GetBody0Rel().GetTargets()[0] if k == 0 else joint.GetBody1Rel().GetTargets()[0]
            )
            bp, bq = _world(body)
            lp = np.array((joint.GetLocalPos0Attr() if k == 0 else joint.GetLocalPos1Attr()).Get(), float)
            r = (joint.GetLocalRot0Attr() if k == 0 else joint.GetLocalRot1Attr()).Get()
            fq, fp = np.empty(4), np.empty(3)
            mujoco.mju_mulQuat(fq, bq, np.array([r.GetReal(), *r.GetImaginary()], float))
            mujoco.mju_rotVecQuat(fp, lp, bq)
            frames.append((bp + fp, fq))
        x = np.empty(3)
        mujoco.mju_rotVecQuat(x, np.array([1.0, 0, 0]), frames[0][1])
        np.testing.assert_allclose(x, d.xaxis[j], atol=1e-6)
        q = d.qpos[m.jnt_qposadr[j]]
        if hinge:
            np.testing.assert_allclose(frames[0][0], frames[1][0], atol=1e-6)
            turn = np.array([math.cos(q / 2), math.sin(q / 2), 0, 0])
            expect = np.empty(4)
            mujoco.mju_mulQuat(expect, frames[0][1], turn)
            assert _quat_diff(frames[1][1], expect) < 1e-5
        else:
            np.testing.assert_allclose(frames[1][0] - frames[0][0], q * d.xaxis[j], atol=1e-6)


def test_drives_follow_the_actuators(case):
    from pxr import UsdPhysics

    stage, _, m, d, _ = case
    for a in range(m.nu):
        if m.actuator_trntype[a] != mujoco.mjtTrn.mjTRN_JOINT:
            continue
        j = m.actuator_trnid[a, 0]
        drive = UsdPhysics.DriveAPI(stage.GetPrimAtPath(f"/World/Robot/joints/{m.joint(j).name}"), "angular")
        per_deg = math.pi / 180
        np.testing.assert_allclose(drive.GetStiffnessAttr().Get(), m.actuator_gainprm[a, 0] * per_deg, rtol=1e-6)
        kv = -m.actuator_biasprm[a, 2] + m.dof_damping[m.jnt_dofadr[j]]
        np.testing.assert_allclose(drive.GetDampingAttr().Get(), kv * per_deg, rtol=1e-6)
        np.testing.assert_allclose(
            drive.GetTargetPositionAttr().Get(), math.degrees(d.qpos[m.jnt_qposadr[j]]), atol=1e-4
        )
        np.testing.assert_allclose(drive.GetMaxForceAttr().Get(), m.actuator_forcerange[a, 1], rtol=1e-6)


def test_stage_passes_usd_validation_and_physics_parsing(case):
    from pxr import Usd, UsdGeom, UsdPhysics

    stage = case[0]
    assert UsdGeom.GetStageUpAxis(stage) == "Z" and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    scene = UsdPhysics.Scene(stage.GetPrimAtPath("/World/PhysicsScene"))
    assert scene.GetGravityMagnitudeAttr().Get() == pytest.approx(9.81)
    assert stage.GetRootLayer().Reload(force=True) and Usd.Stage.Open(stage.GetRootLayer()).GetDefaultPrim()
    try:
        from pxr import UsdValidation
    except ImportError:  # usd-core before the validation framework: reopening is the check
        pass
    else:
        validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
        errors = UsdValidation.ValidationContext(validators).Validate(stage)
        assert not errors, [e.GetMessage() for e in errors]
    load = getattr(UsdPhysics, "UsdPhysicsLoadStageFromPrimRange", None) or UsdPhysics.LoadUsdPhysicsFromRange
    parsed = {str(k).split(".")[-1]: v for k, v in load(stage, ["/"]).items()}
    (art,) = parsed["Articulation"][1]  # what a physics engine sees: one articulation with every robot link
    links = {p.pathString for p in art.articulatedBodies} - {""}
    assert links == {p.GetPath().pathString for p in stage.GetPrimAtPath("/World/Robot").GetChildren()} - {
        "/World/Robot/joints"
    }


def test_plan_replays_mujocos_controls(case):
    """The Isaac runner's per-physics-step targets are exactly the controls MuJoCo ran (in joint terms)."""
    from synth.usd.isaac import schedule

    stage, plan, m, _, w = case
    if plan is None:
        pytest.skip("this attempt has no plan")
    a = w.attempts([plan["attempt"]])[0]  # planned as export planned it
    start = np.r_[w.emb.home, w.emb.gripper.stroke]
    settle = plan["settle_periods"]
    acts = np.concatenate([a.p.actions, np.repeat(a.p.actions[-1:], settle, 0)])
    ctrl = controls(acts[None], start[None], plan["substeps"], w.scale)[0]
    sched = schedule(plan)
    lay = Layout(m, w.emb)
    assert sched.shape == (len(acts) * plan["substeps"], w.emb.dof + 2)
    np.testing.assert_allclose(sched[:, : w.emb.dof], ctrl[:, : w.emb.dof], atol=1e-12)
    np.testing.assert_allclose(sched[:, w.emb.dof :], np.repeat(ctrl[:, -1:], 2, 1), atol=1e-12)  # width/2 each
    assert plan["initial_q"] == pytest.approx(list(initial_qpos(m, w.emb, lay)[np.r_[lay.arm_qadr, lay.finger_qadr]]))
    for path in plan["joints"]:
        assert stage.GetPrimAtPath(path).IsValid()
    assert plan["mujoco"]["outcome"] == "success"


def test_cli_refuses_bad_input_with_one_line(tmp_path, capsys):
    for args, words in (
        (["n=5"], "n= does nothing"),
        (["tsk=pick_place"], "bad override"),
        (["attempt=-1"], "attempt="),
        ([f"out={tmp_path}/scene.obj"], ".usda"),
        (["task=pick_plac"], "did you mean 'pick_place'"),
    ):
        assert main(["export-usd", f"out={tmp_path}/s.usda", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err


def test_cli_without_usd_core_names_the_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pxr", None)  # import pxr now raises ImportError
    assert main(["export-usd", f"out={tmp_path}/s.usda"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install usd-core" in err and "\n" not in err


def test_isaac_backend_without_isaacsim_says_what_it_needs(tmp_path, capsys):
    import importlib.util

    pytest.importorskip("pxr")
    if importlib.util.find_spec("isaacsim") is not None:
        pytest.skip("isaacsim is installed here")
    assert main(["export-usd", f"out={tmp_path}/s.usda", "backend=isaac"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Python 3.12" in err and "RTX" in err and "\n" not in err
    assert not (tmp_path / "s.usda").exists()  # refused before any work


def test_export_is_the_attempt_that_generate_wrote(tmp_path):
    """Same keys, same attempt: the plan's targets are the episode's actions and the objects start where the
    dataset's recorded initial state has them."""
    import subprocess

    import pyarrow.parquet as pq

    pytest.importorskip("pxr")
    keys = ["task=pick_place", "seed=4", "randomizers=[object_pose,object_shape,lighting]"]
    data = tmp_path / "data"
    cmd = [sys.executable, "-m", "synth.cli", "generate", f"out={data}", "n=2", "workers=1", "progress=false", *keys]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    eps = pq.read_table(next((data / "meta" / "episodes").glob("*/*.parquet"))).to_pylist()
    meta = json.loads(eps[-1]["synth/meta"])
    frames = pq.read_table(next((data / "data").glob("*/*.parquet"))).to_pandas()
    action = np.stack(frames[frames["episode_index"] == eps[-1]["episode_index"]]["action"].to_numpy())
    out = tmp_path / "scene.usda"
    assert main(["export-usd", *keys, f"attempt={meta['attempt']}", f"out={out}"]) == 0
    plan = json.loads(out.with_suffix(".plan.json").read_text())
    targets = np.asarray(plan["targets"])
    np.testing.assert_allclose(targets[:, :7], action[:, :7], atol=1e-6)  # float32 in the dataset
    np.testing.assert_allclose(targets[:, 7:], np.repeat(action[:, 7:] / 2, 2, 1), atol=1e-6)
    m = make_worker(settings(compose_config(keys))).prepare(meta["attempt"]).model
    qpos0 = np.asarray(meta["initial_state"])[1 : 1 + m.nq]  # FULLPHYSICS state: time, qpos, ...
    adr = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "obj0")]
    np.testing.assert_allclose(plan["objects_start"]["/World/Objects/obj0"], qpos0[adr : adr + 7], atol=1e-12)
    assert plan["mujoco"]["outcome"] == "success"


@pytest.mark.parametrize("emb", ["panda", "ur5e"])
def test_every_task_exports_a_valid_stage(emb, tmp_path):
    """Every registered task with every randomizer (textures, walls, meshes, distractors) on each embodiment."""
    pytest.importorskip("pxr")
    from pxr import Usd, UsdPhysics

    from synth.registry import RANDOMIZERS, TASKS
    from synth.usd.export import write_stage

    every = "randomizers=[" + ",".join(RANDOMIZERS.names()) + "]"
    for task in TASKS.names():
        body = emb if TASKS.get(task).arms == 1 else "aloha"  # a two-arm task on the pair
        pair = ["randomizers.arm_dynamics.joints=12"] if body == "aloha" else []  # one slice of draws per arm
        w = make_worker(settings(compose_config([f"task={task}", f"embodiment={body}", every, *pair])))
        m = w.prepare(1).model
        info = write_stage(m, initial_qpos(m, w.emb, Layout(m, w.emb)), tmp_path / f"{task}.usda", (128, 128))
        stage = Usd.Stage.Open(str(tmp_path / f"{task}.usda"))
        bodies = {p.GetName() for p in stage.Traverse() if p.HasAPI(UsdPhysics.RigidBodyAPI)}
        assert bodies == {m.body(b).name for b in range(1, m.nbody)} == set(info.bodies), task
        assert len(info.drives) == w.emb.dof + 2 * len(w.emb.mounts), task  # every arm joint and finger driven
        try:
            from pxr import UsdValidation
        except ImportError:
            continue
        errors = UsdValidation.ValidationContext(UsdValidation.ValidationRegistry().GetOrLoadAllValidators())
        assert not errors.Validate(stage), task
