"""MuJoCo's position actuators as one drive per joint: what another engine or a USD stage needs to hold the same
targets (PyBullet's motors, UsdPhysics drives)."""

from __future__ import annotations

import mujoco
import numpy as np


def drives(m: mujoco.MjModel) -> dict[int, tuple[int, float, float, float, float]]:
    """joint -> (actuator, divisor, stiffness, damping, max force) of MuJoCo's position actuators [SI units].

    An actuator of length L = sum_j c_j q_j (a joint: c = gear; a fixed tendon: its coefficients) applies
    c_j F to joint j, F = kp (ctrl - L) - kv dL/dt. With its joints moving together (MuJoCo's equality keeps the
    fingers equal), joint j feels stiffness c_j S kp towards ctrl / S, S = sum_j c_j: one drive per joint.
    """
    out = {}
    for a in range(m.nu):
        kp, bias = m.actuator_gainprm[a, 0], m.actuator_biasprm[a, :3]
        name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_ACTUATOR, a)
        if m.actuator_dyntype[a] or m.actuator_biastype[a] != 1 or bias[0] or not np.isclose(bias[1], -kp):
            raise ValueError(f"actuator {name}: only position actuators are exported")
        if m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT:
            coef = [(int(m.actuator_trnid[a, 0]), float(m.actuator_gear[a, 0]))]
        elif m.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_TENDON:
            t = m.actuator_trnid[a, 0]
            wraps = range(m.tendon_adr[t], m.tendon_adr[t] + m.tendon_num[t])
            if any(m.wrap_type[w] != mujoco.mjtWrap.mjWRAP_JOINT for w in wraps):
                raise ValueError(f"actuator {name}: only tendons over joints are exported")
            coef = [(int(m.wrap_objid[w]), float(m.wrap_prm[w])) for w in wraps]
        else:
            raise ValueError(f"actuator {name}: transmission {m.actuator_trntype[a]} has no USD export")
        s = sum(c for _, c in coef)
        fmax = np.abs(m.actuator_forcerange[a]).max() if m.actuator_forcelimited[a] else np.inf
        for j, c in coef:
            out[j] = (a, s, c * s * kp, -c * s * bias[2], abs(c) * fmax)
    return out
