"""Clearance of straight joint-space segments at their samples, without computing most samples.

A segment q0 -> q1 of world w is checked at n_w samples q0 + (j / n_w)(q1 - q0), j = 1..n_w (the start is
not a sample). Instead of placing the robot at every sample, intervals of samples [a, b] are checked at
their middle with every part's bounding sphere grown by how far the part can move within the interval: a
point on link k moves at most sum_i |dq_i| rho_ik per unit of the segment, rho_ik the length of the chain
from joint i's origin to the point (it bounds the distance to joint i's axis). A (part, obstacle) pair
clear by `margin` with that growth is clear at every sample of the interval; the rest are split in two,
down to single samples, where the part's spheres are checked exactly (capsules.py). So the
verdict (clearance below `margin` or not) is the same as checking every sample, and each world's numbers
depend on that world alone. Shapes: W worlds, G parts (+1 for a carried object), O obstacles, P pairs.
"""

from __future__ import annotations

import numpy as np

from synth.arm_kinematics import Kinematics
from synth.batch_planner.capsules import PAD, Body, Obstacles, sdf


def reach(body: Body, kin: Kinematics) -> tuple[np.ndarray, np.ndarray]:
    """(rho (G, dof) [m] for the robot's parts, chain (dof,) [m] from each joint's origin to the hand's):
    rho[g, i] bounds the distance from joint i's axis to any point of part g (0 where joint i does not
    move it), the fingers counted fully open."""
    dof = kin.dof
    links = np.r_[[np.linalg.norm(r[:3, 3]) for r in kin.rows[1:]], np.linalg.norm(kin.flange[:3, 3])]  # (dof,)
    to_end = np.r_[np.cumsum(links[::-1])[::-1], 0.0]  # to_end[i]: chain from origin i to the hand's origin
    own = np.linalg.norm(body.g_centre, axis=1) + body.g_radius + np.abs(body.g_finger) * kin.emb.gripper.stroke / 2
    rho = np.zeros((len(body.g_link), dof))
    for g, k in enumerate(body.g_link):
        for i in range(min(k, dof - 1) + 1):
            rho[g, i] = to_end[i] - to_end[k] + own[g]
    return rho, to_end[:dof]


def growth(
    frames: np.ndarray, item: np.ndarray, centres: np.ndarray, radius: np.ndarray, speed: np.ndarray, bend, h
) -> np.ndarray:
    """(U,) [m]: how far any point of U part spheres (centres (U, 3) [m], radius (U,)) can move between the
    configuration of their item (U,) (frames (M, dof + 1, 3, 4)) and any other within h (U,) of it along its
    segment.

    A point's speed is at most sum_i |dq_i| r_i over the joints i that move it (speed (U, dof): |dq_i| or 0),
    r_i its distance to joint i's axis: measured here, r_i grows within the interval only through the joints
    after i, by at most h sum_{j>i} |dq_j| rho_j; bend (U,) is sum_i |dq_i| sum_{j>i} |dq_j| rho_j."""
    along = np.zeros((len(item), frames.shape[1] - 1))
    dist2 = np.zeros_like(along)
    for k in range(3):  # joint i turns about the z of link i, through its origin
        rel = centres[:, k, None] - frames[item, :-1, k, 3]  # (U, dof)
        along += rel * frames[item, :-1, k, 2]
        dist2 += rel * rel
    r = np.sqrt(np.maximum(dist2 - along**2, 0.0)) + radius[:, None]
    return (np.einsum("ud,ud->u", r, speed) + bend * h) * h


def motion(
    body: Body, kin: Kinematics, dq: np.ndarray, carry: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """How fast the parts move along segments dq (W, dof) [rad]: (speed (W, parts, dof) |dq_i| where joint i moves
    the part, else 0; bend (W, parts), see growth; g_radius (W, parts) [m] each part's bounding sphere; held (W, 3)
    [m] the carried object's bounding-sphere centre in the hand frame, or None). The parts are the robot's G, then
    with `carry` (centres (W, K, 3) [m] in the hand frame, radii (W, K)) the carried object."""
    W, dof = dq.shape
    rho, chain = reach(body, kin)
    G = len(rho)
    rho = np.broadcast_to(rho, (W, G, dof))
    g_radius = np.tile(body.g_radius, (W, 1))  # writable (numba compiles read-only arrays separately)
    moves = rho[0] > 0
    oc = None
    if carry is not None:  # the carried object: one more part on the hand, its bounding sphere per world
        local, radii = carry
        oc = (local.min(1) + local.max(1)) / 2
        orad = (np.linalg.norm(local - oc[:, None], axis=2) + radii).max(1)
        rho = np.concatenate([rho, (chain + (np.linalg.norm(oc, axis=1) + orad)[:, None])[:, None]], 1)
        g_radius = np.c_[g_radius, orad]
        moves = np.r_[moves, np.ones((1, dof), bool)]
    speed = np.abs(dq)[:, None, :] * moves  # (W, parts, dof)
    later = np.cumsum((speed * rho)[..., ::-1], axis=-1)[..., ::-1] - speed * rho  # sum over j > i
    bend = (later * speed).sum(-1)  # (W, parts)
    return speed, bend, g_radius, oc


def side_by_side(obs: Obstacles) -> np.ndarray:
    """(W, O, 10) the obstacles' fields side by side: centre, cos, sin, half, rounding, cylinder."""
    o = obs
    return np.concatenate(
        [o.centre, o.cos[..., None], o.sin[..., None], o.half, o.rounding[..., None], o.cylinder[..., None]], -1
    )


def segment_clearance(
    kin: Kinematics,
    body: Body,
    q0: np.ndarray,
    q1: np.ndarray,
    n: np.ndarray,
    obs: Obstacles,
    allowed: np.ndarray,
    margin: float,
    width: np.ndarray,
    carry: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """(W,) smallest clearance [m] over the samples j = 1..n (W,) of the segments q0 -> q1 (W, dof) to the
    obstacles not `allowed` (W, O); exact (to the sphere cover) below `margin`, a lower bound above it.
    width (W,) [m] is the gripper opening; `carry` (centres (W, K, 3) [m] in the hand frame, radii (W, K)) a
    carried object."""
    W, dof = q0.shape
    dq = q1 - q0
    speed, bend, g_radius, oc = motion(body, kin, dq, carry)
    parts = speed.shape[1]
    best = np.full(W, np.inf)
    # every (world, part, obstacle) pair to check: obstacles neither allowed nor padding
    w, g, o = np.nonzero(np.broadcast_to((~allowed & (obs.role != PAD))[:, None, :], (W, parts, obs.role.shape[1])))
    if not len(w):
        return best - margin
    items_w, items_a, items_b = np.arange(W), np.ones(W, np.int64), np.asarray(n, np.int64)
    pi = w  # the item of each pair: item i is world i at first
    pg, po = g, o
    fields = side_by_side(obs)
    while len(pi):
        nw = n[items_w]
        s = ((items_a + items_b) / 2) / nw
        frames = kin.fk(q0[items_w] + s[:, None] * dq[items_w]).poses  # (M, dof + 1, 3, 4): links, hand
        assert frames is not None  # fk with links gives every link's pose
        # each (item, part) the remaining pairs need, once
        key, inv = np.unique(pi * parts + pg, return_inverse=True)
        ui, ug = key // parts, key % parts
        uw = items_w[ui]
        centre = _centres(body, frames, ui, ug, width[uw], None if oc is None else oc[uw])
        h = ((items_b - items_a) / (2 * nw))[ui]  # the interval's half length, in units of the segment
        grow = growth(frames, ui, centre, g_radius[uw, ug], speed[uw, ug], bend[uw, ug], h)
        pw = items_w[pi]
        f = fields[pw, po]
        d = sdf(centre[inv], f[:, :3], f[:, 3], f[:, 4], f[:, 5:8], f[:, 8], f[:, 9] > 0)
        d = d - (g_radius[uw, ug] + grow)[inv]
        clear = d >= margin
        np.minimum.at(best, pw[clear], d[clear])
        single = (items_a == items_b)[pi] & ~clear
        if single.any():
            exact = _exact(body, frames, width[items_w], obs, pi[single], pw[single], pg[single], po[single], carry)
            np.minimum.at(best, pw[single], exact)
        split = ~clear & ~single
        pi, pg, po = pi[split], pg[split], po[split]
        if not len(pi):
            break
        parents, pos = np.unique(pi, return_inverse=True)
        mid = (items_a[parents] + items_b[parents]) // 2
        items_w = np.repeat(items_w[parents], 2)
        items_a = np.stack([items_a[parents], mid + 1], 1).reshape(-1)
        items_b = np.stack([mid, items_b[parents]], 1).reshape(-1)
        pi = np.r_[2 * pos, 2 * pos + 1]
        pg, po = np.r_[pg, pg], np.r_[po, po]
    return best - margin


FIELDS = ("centre", "cos", "sin", "half", "rounding", "cylinder")


def _centres(
    body: Body, frames: np.ndarray, item: np.ndarray, g: np.ndarray, width: np.ndarray, held: np.ndarray | None
) -> np.ndarray:
    """(U, 3) world centre of part g (U,) (the robot's groups, then the carried object's bounding sphere, centred
    at held (U, 3) in the hand frame) at item's pose (frames (M, dof + 1, 3, 4)), gripper opening width (U,) [m]."""
    robot = g < len(body.g_link)
    gr = np.minimum(g, len(body.g_link) - 1)
    local = body.g_centre[gr].copy()
    local[:, 1] += body.g_finger[gr] * width / 2
    if held is not None:
        local[~robot] = held[~robot]
    T = frames[item, np.where(robot, body.g_link[gr], frames.shape[1] - 1)]  # (U, 3, 4)
    return np.einsum("uij,uj->ui", T[:, :, :3], local) + T[:, :, 3]


def _obstacle(obs: Obstacles, field: str, w: np.ndarray, o: np.ndarray) -> np.ndarray:
    return getattr(obs, field)[w, o]


def _exact(
    body: Body,
    frames: np.ndarray,
    width: np.ndarray,
    obs: Obstacles,
    item: np.ndarray,
    w: np.ndarray,
    g: np.ndarray,
    o: np.ndarray,
    carry: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """(P,) clearance [m] of part g's spheres at item `item`'s configuration (frames (M, dof + 1, 3, 4)) to
    obstacle o of world w, per pair."""
    out = np.empty(len(item))
    robot = g < len(body.g_link)
    if robot.any():
        i, gg = item[robot], g[robot]
        spheres = body.members[gg]  # (P, K)
        T = frames[i[:, None], body.link[spheres]]  # (P, K, 3, 4)
        local = body.centre[spheres].copy()
        local[..., 1] += body.finger[spheres] * width[i][:, None] / 2
        pts = np.einsum("pkij,pkj->pki", T[..., :3, :3], local) + T[..., :3, 3]
        fields = (_obstacle(obs, f, w[robot], o[robot])[:, None] for f in FIELDS)
        out[robot] = (sdf(pts, *fields) - body.radius[spheres]).min(1)
    if carry is not None and (~robot).any():
        local, radii = carry
        i, ww = item[~robot], w[~robot]
        hand = frames[i, -1]
        pts = np.einsum("pij,pkj->pki", hand[:, :3, :3], local[ww]) + hand[:, None, :3, 3]
        fields = (_obstacle(obs, f, ww, o[~robot])[:, None] for f in FIELDS)
        out[~robot] = (sdf(pts, *fields) - radii[ww]).min(1)
    return out
