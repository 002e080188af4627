"""Clearance of straight joint-space segments at their samples, without computing most samples.

A segment q0 -> q1 of world w is checked at n_w samples q0 + (j / n_w)(q1 - q0), j = 1..n_w (the start is
not a sample). Instead of placing the robot at every sample, intervals of samples [a, b] are checked at
their middle with every part's bounding sphere grown by how far the part can move within the interval: a
point on link k moves at most sum_i |dq_i| rho_ik per unit of the segment, rho_ik the length of the chain
from joint i's origin to the point (it bounds the distance to joint i's axis). A (part, obstacle) pair
clear by `margin` with that growth is clear at every sample of the interval; the rest are split in two,
down to single samples, where the part's spheres are checked exactly (planners/capsules.py). So the
verdict (clearance below `margin` or not) is the same as checking every sample, and each world's numbers
depend on that world alone. Shapes: W worlds, G parts (+1 for a carried object), O obstacles, P pairs.
"""

from __future__ import annotations

import numpy as np

from synth.kinematics import Kinematics
from synth.planners.capsules import PAD, Body, Obstacles, _frames, _place, sdf


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


def growth(frames: np.ndarray, centres: np.ndarray, radius: np.ndarray, speed: np.ndarray, bend: np.ndarray, h):
    """(M, G) [m]: how far any point of G part spheres (centres (M, G, 3) [m], radius (M, G)) can move between
    the configuration of `frames` (M, dof + 2, 3, 4) and any other within h (M,) of it along its segment.

    A point's speed is at most sum_i |dq_i| r_i over the joints i that move it (speed (M, G, dof): |dq_i| or
    0), r_i its distance to joint i's axis: measured here, r_i grows within the interval only through the
    joints after i, by at most h sum_{j>i} |dq_j| rho_j; bend (M, G) is sum_i |dq_i| sum_{j>i} |dq_j| rho_j."""
    axes = frames[:, 1:-1, :3, 2]  # (M, dof, 3): joint i turns about the z of frames[:, i + 1] (0 is the base)
    origins = frames[:, 1:-1, :3, 3]
    # |c - o|^2 - ((c - o) . z)^2 per part and joint, by (M, G, 3) @ (M, 3, dof) products
    along = centres @ axes.transpose(0, 2, 1) - (origins * axes).sum(-1)[:, None]
    dist2 = (centres**2).sum(-1)[..., None] - 2 * centres @ origins.transpose(0, 2, 1) + (origins**2).sum(-1)[:, None]
    r = np.sqrt(np.maximum(dist2 - along**2, 0.0)) + radius[..., None]
    return ((r * speed).sum(-1) + bend * h[:, None]) * h[:, None]


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
    rho, chain = reach(body, kin)
    G = len(rho)
    rho = np.broadcast_to(rho, (W, G, dof))
    g_radius = np.broadcast_to(body.g_radius, (W, G))
    moves = rho[0] > 0
    if carry is not None:  # the carried object: one more part on the hand, its bounding sphere per world
        local, radii = carry
        oc = (local.min(1) + local.max(1)) / 2
        orad = (np.linalg.norm(local - oc[:, None], axis=2) + radii).max(1)
        rho = np.concatenate([rho, (chain + (np.linalg.norm(oc, axis=1) + orad)[:, None])[:, None]], 1)
        g_radius = np.c_[g_radius, orad]
        moves = np.r_[moves, np.ones((1, dof), bool)]
    parts = rho.shape[1]
    speed = np.abs(dq)[:, None, :] * moves  # (W, parts, dof)
    later = np.cumsum((speed * rho)[..., ::-1], axis=-1)[..., ::-1] - speed * rho  # sum over j > i
    bend = (later * speed).sum(-1)  # (W, parts)
    best = np.full(W, np.inf)
    # every (world, part, obstacle) pair to check: obstacles neither allowed nor padding
    w, g, o = np.nonzero(np.broadcast_to((~allowed & (obs.role != PAD))[:, None, :], (W, parts, obs.role.shape[1])))
    if not len(w):
        return best - margin
    items_w, items_a, items_b = np.arange(W), np.ones(W, np.int64), np.asarray(n, np.int64)
    pi = w  # the item of each pair: item i is world i at first
    pg, po = g, o
    while len(pi):
        nw = n[items_w]
        s = ((items_a + items_b) / 2) / nw
        frames = _frames(kin.fk(q0[items_w] + s[:, None] * dq[items_w]), kin.base)  # (M, dof + 2, 3, 4)
        gp = _place(frames, body.g_link, body.g_centre, body.g_finger, width[items_w])  # (M, G, 3)
        if carry is not None:
            hand = frames[:, -1]
            held = np.einsum("mij,mj->mi", hand[:, :3, :3], oc[items_w]) + hand[:, :3, 3]
            gp = np.concatenate([gp, held[:, None]], 1)
        pw = items_w[pi]
        h = (items_b - items_a) / (2 * nw)  # the interval's half length, in units of the segment
        grow = growth(frames, gp, g_radius[items_w], speed[items_w], bend[items_w], h)[pi, pg]
        d = sdf(gp[pi, pg], *(_obstacle(obs, f, pw, po) for f in FIELDS)) - g_radius[pw, pg] - grow
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
    """(P,) clearance [m] of part g's spheres at item `item`'s configuration (frames (M, dof + 2, 3, 4)) to
    obstacle o of world w, per pair."""
    out = np.empty(len(item))
    robot = g < len(body.g_link)
    if robot.any():
        i, gg = item[robot], g[robot]
        spheres = body.members[gg]  # (P, K)
        T = frames[i[:, None], body.link[spheres] + 1]  # (P, K, 3, 4)
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
