"""PyBullet (`backend=pybullet`): a second, independent physics engine for the same compiled scenes.

Each world is its own PyBullet DIRECT client holding the scene rebuilt from the world's MjModel
(synth.backends.pybullet_scene), so per-world randomized masses, frictions, sizes and gains are the model's.
Results come back in MuJoCo's layout (qpos, qvel, sensordata), so execute.run, Task.judge and the writer are
unchanged.

Actuators. MuJoCo's position actuators (force = kp (target - q) - kv dq/dt, limited to forcerange, plus the
joint's own damping, integrated implicitly with the joint's armature) become PyBullet's joint motors, which the
constraint solver meets together with the contacts. A motor asks for the velocity change
dv = kp_b (target - q) / dt - kd_b dq/dt; with kp_b = dt^2 kp / I' and kd_b = dt (kv + damping) / I', where
I' = M_jj + armature + dt (kv + damping) (M from PyBullet at the current pose), that is MuJoCo's implicit step of
one decoupled joint. The motor's force is capped at what MuJoCo's actuator would exert now (|kp (target - q) -
kv dq/dt| within forcerange, plus damping and frictionloss), so a finger pressing on an object squeezes with
MuJoCo's force, not the motor's maximum. Tendon actuators (the gripper) drive each joint of the tendon with the
same target (synth.drives); MuJoCo's finger equality is a gear constraint.

Gravity. MuJoCo's gravity compensation removes the arm's weight; PyBullet's world has no gravity and each body
gets its weight times (1 - gravcomp) as a force at its centre of mass every step.

Friction. PyBullet keeps one coefficient per link and combines a pair by product, where MuJoCo takes the larger
(or the priority geom's); pairs are therefore lower in PyBullet (pad 1.2 x object 0.6-1.2). Friction anchors
are off (synth.backends.pybullet_scene): with them a rolling sphere or capsule gained speed.
"""

from __future__ import annotations

import mujoco
import numpy as np

from synth.backends.pybullet_scene import Body, SceneMap, build, qconj, qmul, rotate, xyzw
from synth.errors import ConfigError

S = mujoco.mjtSensor
O = mujoco.mjtObj


INSTALL = 'backend=pybullet needs PyBullet: pip install pybullet (or pip install -e ".[pybullet]")'


def require_pybullet():
    """The `pybullet` module, or a one-line ConfigError naming the install."""
    try:
        import pybullet
    except ImportError:
        raise ConfigError(
            'backend=pybullet needs PyBullet: pip install pybullet (or pip install -e ".[pybullet]")'
        ) from None
    return pybullet


def wxyz(q) -> np.ndarray:
    """PyBullet (x, y, z, w) -> MuJoCo (w, x, y, z)."""
    return np.array([q[3], q[0], q[1], q[2]], float)


def cross(a, b) -> np.ndarray:
    """a x b for 3-vectors (np.cross costs ~100 us a call, a third of a physics step)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _sensors(m: mujoco.MjModel) -> list[tuple[int, str, int, np.ndarray, np.ndarray]]:
    """(address, "pos" | "quat", body, local pos, local quat) of each sensor: frame position and quaternion of a
    body (its inertial frame, as MuJoCo's mjOBJ_BODY), an xbody (its frame), a site or a geom, in world axes."""
    out = []
    for s in range(m.nsensor):
        name = mujoco.mj_id2name(m, O.mjOBJ_SENSOR, s)
        typ, ref = int(m.sensor_type[s]), int(m.sensor_reftype[s])
        if typ not in (S.mjSENS_FRAMEPOS, S.mjSENS_FRAMEQUAT) or ref != O.mjOBJ_UNKNOWN:
            raise ValueError(f"sensor {name}: only world-frame framepos/framequat sensors map to PyBullet")
        i, t = int(m.sensor_objid[s]), int(m.sensor_objtype[s])
        if t == O.mjOBJ_BODY:
            frame = (i, m.body_ipos[i], m.body_iquat[i])
        elif t == O.mjOBJ_XBODY:
            frame = (i, np.zeros(3), np.array([1.0, 0, 0, 0]))
        elif t == O.mjOBJ_SITE:
            frame = (int(m.site_bodyid[i]), m.site_pos[i], m.site_quat[i])
        elif t == O.mjOBJ_GEOM:
            frame = (int(m.geom_bodyid[i]), m.geom_pos[i], m.geom_quat[i])
        else:
            raise ValueError(f"sensor {name}: object type {t} has no PyBullet frame")
        kind = "pos" if typ == S.mjSENS_FRAMEPOS else "quat"
        out.append((int(m.sensor_adr[s]), kind, frame[0], frame[1].copy(), frame[2].copy()))
    return out


class World:
    """One MjModel stepped by PyBullet, from qpos (nq,) [m, rad] and qvel (nv,); read back in MuJoCo's layout."""

    def __init__(self, model: mujoco.MjModel, qpos: np.ndarray, qvel: np.ndarray | None = None):
        from synth.drives import drives  # MuJoCo's position actuators as per-joint drives (shared with USD export)

        self.pb = pb = require_pybullet()
        self.m, self.dt, self.time = model, float(model.opt.timestep), 0.0
        self.cid = pb.connect(pb.DIRECT)
        try:
            self.map: SceneMap = build(pb, self.cid, model, qpos)
            joint_drives = drives(model)
        except BaseException:
            self.close()
            raise
        m, qvel = model, np.zeros(model.nv) if qvel is None else qvel
        for j in self.map.joints.values():
            pb.resetJointState(j.uid, j.link, float(qpos[j.qadr]), float(qvel[j.dadr]), physicsClientId=self.cid)
        for k, b in self.map.free.items():
            a, v = m.jnt_qposadr[k], m.jnt_dofadr[k]
            self._set_free(self.map.bodies[b], qpos[a : a + 7], qvel[v : v + 6])
        self.sensors = _sensors(m)
        by_uid: dict[int, list] = {}
        for j in self.map.joints.values():
            by_uid.setdefault(j.uid, []).append(j)
        self._groups = {  # multibody -> its joints' links, qpos and qvel addresses
            uid: ([j.link for j in js], np.array([j.qadr for j in js]), np.array([j.dadr for j in js]))
            for uid, js in by_uid.items()
        }
        # joint motors per multibody: arrays over its motorized joints (see `step`)
        rows: dict[int, list[tuple]] = {}
        for k, j in self.map.joints.items():
            dof = int(m.jnt_dofadr[k])
            a, div, kp, kv, fmax = joint_drives.get(k, (-1, 1.0, 0.0, 0.0, 0.0))
            if a < 0 and not (m.dof_damping[dof] or m.dof_frictionloss[dof]):
                continue  # a free-swinging joint
            rows.setdefault(j.uid, []).append(
                (j.link, j.qadr, dof, a, div, kp, kv, min(fmax, 1e9), m.dof_damping[dof], m.dof_frictionloss[dof])
            )
        names = ("link", "qadr", "dof", "act", "div", "kp", "kv", "fmax", "damping", "frictionloss")
        self.motors: dict[int, dict[str, np.ndarray]] = {}
        for uid, r in rows.items():
            table = np.array(r, float)
            mo = {n: table[:, i].astype(int) if i < 4 else table[:, i] for i, n in enumerate(names)}
            mo["armature"] = m.dof_armature[mo["dof"]]
            movable = sorted((j for j in self.map.joints.values() if j.uid == uid), key=lambda j: j.link)
            mo["all_qadr"] = np.array([j.qadr for j in movable])  # PyBullet's mass matrix: every dof, link order
            mo["col"] = np.searchsorted([j.link for j in movable], mo["link"])
            self.motors[uid] = mo
        self._read()

    def close(self) -> None:
        if self.cid >= 0:
            self.pb.disconnect(physicsClientId=self.cid)
            self.cid = -1

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _set_free(self, body: Body, q: np.ndarray, v: np.ndarray) -> None:
        """A free body at MuJoCo's free-joint qpos (pos, quat w x y z) and qvel (origin velocity in world axes,
        angular velocity in body axes); PyBullet holds the inertial frame."""
        pb, quat = self.pb, q[3:7] / np.linalg.norm(q[3:7])
        com = q[:3] + rotate(quat, body.ipos)
        pb.resetBasePositionAndOrientation(
            body.uid, com.tolist(), xyzw(qmul(quat, body.iquat)), physicsClientId=self.cid
        )
        w = rotate(quat, v[3:6])
        pb.resetBaseVelocity(body.uid, (v[:3] + cross(w, com - q[:3])).tolist(), w.tolist(), physicsClientId=self.cid)

    def _read(self) -> None:
        """qpos (nq,), qvel (nv,) and the free bodies' inertial frames from PyBullet."""
        pb, m, cid = self.pb, self.m, self.cid
        self.qpos, self.qvel = m.qpos0.copy(), np.zeros(m.nv)
        for uid, (links, qadr, dadr) in self._groups.items():
            states = pb.getJointStates(uid, links, physicsClientId=cid)
            self.qpos[qadr] = [st[0] for st in states]
            self.qvel[dadr] = [st[1] for st in states]
        self.com: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # free body -> inertial frame pos, quat (w x y z)
        for k, b in self.map.free.items():
            body = self.map.bodies[b]
            p, q = pb.getBasePositionAndOrientation(body.uid, physicsClientId=cid)
            lin, ang = pb.getBaseVelocity(body.uid, physicsClientId=cid)
            com, iq = np.array(p), wxyz(q)
            quat = qmul(iq, qconj(body.iquat))
            pos = com - rotate(quat, body.ipos)
            a, v = m.jnt_qposadr[k], m.jnt_dofadr[k]
            self.qpos[a : a + 3], self.qpos[a + 3 : a + 7] = pos, quat
            w = np.array(ang)
            self.qvel[v : v + 3] = np.array(lin) + cross(w, pos - com)
            self.qvel[v + 3 : v + 6] = rotate(qconj(quat), w)
            self.com[b] = (com, iq)

    def body_pose(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """World position [m] and quaternion (w, x, y, z) of MuJoCo body b's frame."""
        body = self.map.bodies.get(b)
        if body is None:
            raise ValueError(f"body {b} has no PyBullet counterpart")
        if body.kind == "fixed":
            return body.pos, body.quat
        if body.kind == "free":
            com, iq = self.com[b]
            quat = qmul(iq, qconj(body.iquat))
            return com - rotate(quat, body.ipos), quat
        st = self.pb.getLinkState(body.uid, body.link, computeForwardKinematics=1, physicsClientId=self.cid)
        quat = wxyz(st[5])
        return np.array(st[4]) - rotate(quat, body.offset), quat

    def sensordata(self) -> np.ndarray:
        """(nsensordata,) MuJoCo's frame sensors computed from the current PyBullet state."""
        out = np.zeros(self.m.nsensordata)
        poses: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for adr, kind, b, lpos, lquat in self.sensors:
            if b not in poses:
                poses[b] = self.body_pose(b)
            pos, quat = poses[b]
            out[adr : adr + (3 if kind == "pos" else 4)] = (
                pos + rotate(quat, lpos) if kind == "pos" else qmul(quat, lquat)
            )
        return out

    def step(self, ctrl: np.ndarray) -> None:
        """One physics step of model.opt.timestep with actuator controls `ctrl` (nu,) held over it."""
        pb, cid, dt = self.pb, self.cid, self.dt
        for uid, mo in self.motors.items():
            q, v = self.qpos[mo["qadr"]], self.qvel[mo["dof"]]
            target = np.where(mo["act"] >= 0, ctrl[mo["act"]] / mo["div"], q)
            full = pb.calculateMassMatrix(uid, self.qpos[mo["all_qadr"]].tolist(), physicsClientId=cid)
            inertia = np.asarray(full)[mo["col"], mo["col"]] + mo["armature"]
            damp = mo["kv"] + mo["damping"]
            den = inertia + dt * damp
            force = np.clip(mo["kp"] * (target - q) - mo["kv"] * v, -mo["fmax"], mo["fmax"])
            pb.setJointMotorControlArray(
                uid,
                mo["link"].tolist(),
                pb.POSITION_CONTROL,
                targetPositions=target.tolist(),
                targetVelocities=[0.0] * len(q),
                positionGains=(dt * dt * mo["kp"] / den).tolist(),
                velocityGains=(dt * damp / den).tolist(),
                forces=(np.abs(force) + mo["damping"] * np.abs(v) + mo["frictionloss"]).tolist(),
                physicsClientId=cid,
            )
        g = self.m.opt.gravity / max(float(np.linalg.norm(self.m.opt.gravity)), 1e-12)
        for b, weight in self.map.weights:
            body = self.map.bodies[b]
            if body.kind == "free":
                com = self.com[b][0]
            else:
                com = np.array(pb.getLinkState(body.uid, body.link, physicsClientId=cid)[0])
            pb.applyExternalForce(
                body.uid, body.link, (g * weight).tolist(), com.tolist(), pb.WORLD_FRAME, physicsClientId=cid
            )
        pb.stepSimulation(physicsClientId=cid)
        self.time += dt
        self._read()


class PyBullet:
    """Steps W worlds one after another, each its own PyBullet client built from its MjModel; the
    `rollout` of synth.backends.mujoco_cpu.MujocoCPU."""

    name = "pybullet"

    def __init__(self) -> None:
        require_pybullet()

    def rollout(
        self, models: list[mujoco.MjModel], state0: np.ndarray, ctrl: np.ndarray, every: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """state0: (W, nstate) MuJoCo FULLPHYSICS states; ctrl: (W, N, nu) per physics step, N a multiple of `every`.

        Returns state (W, N // every, nstate) after steps every-1, 2*every-1, ... (time, qpos, qvel from PyBullet;
        the rest of state0 carried) and sensordata (W, N // every, nsensordata), sensordata[:, j] computed at the
        start of step j * every. A world whose physics turns non-finite is filled with NaN from there on
        (execute.diverged flags it).
        """
        if ctrl.shape[1] % every:
            raise ValueError(f"{ctrl.shape[1]} steps are not a whole number of every={every}")
        W, N = ctrl.shape[:2]
        m0 = models[0]
        state = np.repeat(state0[:, None], N, axis=1)
        sens = np.zeros((W, N, m0.nsensordata))
        nq, nv = m0.nq, m0.nv
        for w, m in enumerate(models):
            with World(m, state0[w, 1 : 1 + nq], state0[w, 1 + nq : 1 + nq + nv]) as world:
                for k in range(N):
                    sens[w, k] = world.sensordata()
                    world.step(ctrl[w, k])
                    state[w, k, 0] = state0[w, 0] + (k + 1) * m.opt.timestep
                    state[w, k, 1 : 1 + nq], state[w, k, 1 + nq : 1 + nq + nv] = world.qpos, world.qvel
                    if not (np.isfinite(world.qpos).all() and np.isfinite(world.qvel).all()):
                        state[w, k:, 1:] = np.nan
                        break
        return state[:, every - 1 :: every], sens[:, ::every]
