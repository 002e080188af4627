"""A resting object's pose and a contact's restitution: what the scene compiler and its uniform layout share."""

from __future__ import annotations

import math

import mujoco
import numpy as np

from synth.pose import yaw_quat
from synth.types import Obj

CONTACT_TIMECONST = 0.02  # [s] MuJoCo's default solref time constant, kept when a restitution is set
MAX_RESTITUTION = 0.7  # above this the contact spring is too stiff for the ~2 ms step to keep the bounce honest


def object_quat(obj: Obj) -> np.ndarray:
    """Orientation of a resting object: yaw about z; capsules lie with their axis horizontal."""
    q = yaw_quat(obj.yaw)
    if obj.shape == "capsule":  # capsule axis is local z: turn it onto local x
        lie = np.array([np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0])
        out = np.empty(4)
        mujoco.mju_mulQuat(out, q, lie)
        return out
    return q


def object_pose(obj: Obj, table_height: float) -> np.ndarray:
    """(7,) free-joint qpos of a resting object: position [m], quaternion (w, x, y, z)."""
    return np.concatenate([[obj.xy[0], obj.xy[1], table_height + obj.half_height], object_quat(obj)])


def dampratio(restitution: float) -> float:
    """The contact damping ratio whose bounce has coefficient of restitution `restitution` (in [0, 1)).

    MuJoCo has no restitution coefficient: a contact is a spring-damper set by solref = (timeconst, dampratio).
    A damped spring with damping ratio z releases a body after half a period with its speed scaled by
    e = exp(-pi z / sqrt(1 - z^2)); inverted, z = -ln e / sqrt(pi^2 + ln^2 e). e = 0 gives z = 1 (critical
    damping, MuJoCo's default: no bounce). Measured with the 2 ms step (a ball, a box and a cylinder dropped 3-30
    cm on the table): the soft contact always gives back ~0.11 of the impact speed (a rise of ~1 mm from 10 cm), so
    the rebound speed ratio runs above e for small e (e = 0.2: 0.27-0.31) and is within ~0.06 of it from e = 0.4
    to 0.7 (tests/test_randomizers.py drops a ball). Above 0.7 the contact is too springy for the step.
    A contact mixes the two geoms' solref by their solmix weights (1 each here): its damping ratio is the mean.
    """
    if restitution <= 0.0:
        return 1.0
    ln = math.log(restitution)
    return -ln / math.sqrt(math.pi**2 + ln**2)


def solref(restitution: float) -> list[float]:
    """(2,) MuJoCo solref (timeconst [s], dampratio) of a geom with this coefficient of restitution."""
    return [CONTACT_TIMECONST, dampratio(restitution)]
