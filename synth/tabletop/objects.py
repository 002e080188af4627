"""The object family: boxes, cylinders, spheres, capsules and random convex meshes (trimesh).

Sizes are drawn so that every object fits a parallel gripper with an 8 cm stroke:
the narrowest horizontal width is at most 6.5 cm.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING

import numpy as np

from synth.errors import ConfigError
from synth.palette import OBJECT_COLOURS, rgba
from synth.types import Obj

if TYPE_CHECKING:
    import trimesh


def _trimesh():
    """trimesh, imported on first use: with scipy it takes about a second, and the kinematic mode never needs it."""
    import trimesh

    return trimesh


MAX_WIDTH = 0.065  # [m] narrowest graspable width
# per shape: ranges of the three size numbers (see Obj.size) before scaling [m]
SIZES: dict[str, tuple[tuple[float, float], ...]] = {
    "box": ((0.016, 0.032), (0.016, 0.032), (0.016, 0.04)),
    "cylinder": ((0.016, 0.03), (0.02, 0.05), (0.0, 0.0)),
    "sphere": ((0.02, 0.03), (0.0, 0.0), (0.0, 0.0)),
    "capsule": ((0.014, 0.024), (0.02, 0.045), (0.0, 0.0)),
    "mesh": ((0.02, 0.034), (0.02, 0.034), (0.016, 0.035)),
    "cup": ((0.022, 0.03), (0.025, 0.04), (0.0, 0.0)),  # outer radius, half height: a concave mesh
}
NOUNS = {"box": "block", "cylinder": "cylinder", "sphere": "ball", "capsule": "capsule", "mesh": "rock", "cup": "cup"}
CUP_WALL, CUP_BASE, CUP_SEGMENTS = 0.005, 0.006, 10  # [m], [m], wall pieces around


def noun(obj: Obj) -> str:
    """What the object is called: a box with near-equal sides is a cube, one at least 3x as long as it is
    wide and tall a bar (the shape families' boxes are never that long); otherwise by its family or shape."""
    if obj.shape == "box" and max(obj.size) / min(obj.size) < 1.2:
        return "cube"
    if obj.shape == "box" and obj.size[0] >= 3 * max(obj.size[1], obj.size[2]):
        return "bar"
    return NOUNS[obj.family or obj.shape]


def cup_parts(radius: float, half_height: float) -> list[np.ndarray]:
    """Convex parts (each (V, 3) vertices [m], centred on the cup's bounding box) of an open cup: a base
    disc and CUP_SEGMENTS wall pieces, each an exact convex prism, so no decomposition is needed."""
    k = CUP_SEGMENTS
    ang = np.linspace(0.0, 2 * np.pi, k + 1)
    ring = np.stack([np.cos(ang), np.sin(ang)], 1)
    z0, zb, z1 = -half_height, -half_height + CUP_BASE, half_height
    base = np.vstack([np.c_[radius * ring[:-1], np.full(k, z)] for z in (z0, zb)])
    parts = [base]
    inner = radius - CUP_WALL
    for a, b in zip(ring[:-1], ring[1:], strict=True):
        xy = np.array([radius * a, radius * b, inner * a, inner * b])
        parts.append(np.vstack([np.c_[xy, np.full(4, z)] for z in (zb - 1e-4, z1)]))
    return parts


_HULLS = [True]  # False inside `points_only()`
QUARTERS = np.linspace(0, 2 * np.pi, 4, endpoint=False)  # (4,) [rad] corners every random base polygon has


@contextlib.contextmanager
def points_only():
    """Within this block a random convex mesh keeps the points it is the hull of instead of the hull's vertices:
    the same bounding box (so the same size, the same draws), the same extent in every direction, but no
    convex hull computed (what the kinematic mode needs; it never builds the mesh)."""
    _HULLS[0] = False
    try:
        yield
    finally:
        _HULLS[0] = True


def convex_mesh(rng: np.random.Generator, half: tuple[float, float, float]) -> np.ndarray:
    """(V, 3) vertices [m] of a random convex solid with a flat base, centred on its bounding box.

    A polygon on the bottom plane (so it rests stably) and points inside the half-ellipsoid above it (inside
    `points_only()`: all of those points, not only the hull's vertices).
    """
    hx, hy, hz = half
    k = int(rng.integers(5, 9))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    ang[0] = 0.0
    ang = np.sort(np.concatenate((ang, QUARTERS)))  # no gap wider than 90 degrees
    m = int(rng.integers(6, 12))
    d = rng.normal(size=(m, 3))
    d[:, 2] = np.abs(d[:, 2])
    d /= np.sqrt(np.add.reduce(d * d, axis=1, keepdims=True))  # np.linalg.norm(d, axis=1, keepdims=True)
    points = np.zeros((len(ang) + m + 1, 3))  # the base polygon (z = 0), the points above it, the apex
    points[: len(ang), 0], points[: len(ang), 1] = hx * np.cos(ang), hy * np.sin(ang)
    points[len(ang) : -1] = d * rng.uniform(0.6, 1.0, (m, 1)) * np.array([hx, hy, 2 * hz])
    points[-1, 2] = 2 * hz
    verts = _trimesh().convex.convex_hull(points).vertices if _HULLS[0] else points
    lo, hi = verts.min(0), verts.max(0)
    return np.asarray(verts - (lo + hi) / 2)


def sample(
    rng: np.random.Generator,
    name: str,
    shape: str,
    colour: str,
    scale: float = 1.0,
    mass: float = 0.1,
    friction: float = 1.0,
    sizes: tuple[tuple[float, float], ...] = (),
) -> Obj:
    """A resting object of `shape` with sizes drawn from SIZES (or the task's `sizes`) x scale, clipped to be
    graspable."""
    size = [(lo + (hi - lo) * rng.random()) * scale for lo, hi in (sizes or SIZES[shape])]  # rng.uniform's draws
    mesh: tuple = ()
    if shape in ("box", "mesh"):
        size[0], size[1] = max(size[0], size[1]), min(size[0], size[1], MAX_WIDTH / 2)
    elif shape in ("cylinder", "sphere", "capsule", "cup"):
        size[0] = min(size[0], MAX_WIDTH / 2)
    if shape == "mesh":
        verts = convex_mesh(rng, (size[0], size[1], size[2]))
        size = list((verts.max(0) - verts.min(0)) / 2)  # np.ptp's arithmetic
        mesh = tuple(map(tuple, verts.tolist()))
    parts: tuple = ()
    if shape == "cup":
        pieces = cup_parts(size[0], size[1])
        verts = _trimesh().convex.convex_hull(np.vstack(pieces)).vertices
        size = list(np.ptp(verts, axis=0) / 2)
        mesh = tuple(tuple(float(c) for c in v) for v in verts)
        parts = tuple(tuple(tuple(float(c) for c in v) for v in p) for p in pieces)
    return Obj(
        name=name,
        shape="mesh" if shape == "cup" else shape,
        size=(size[0], size[1], size[2]),
        colour=colour,
        rgba=rgba(OBJECT_COLOURS[colour]),
        mass=mass,
        friction=friction,
        mesh=mesh,
        parts=parts,
        family="cup" if shape == "cup" else "",
    )


@functools.cache
def _placed(path: str) -> tuple[trimesh.Trimesh, np.ndarray]:
    """The mesh file and the (4, 4) transform that rests its convex hull on its most stable face, centred on
    its bounding box. Raises ConfigError naming the file when it cannot be read or has no volume."""
    try:
        mesh = _trimesh().load(path, force="mesh")
        hull = mesh.convex_hull
        if len(hull.vertices) < 4 or hull.volume <= 0:
            raise ValueError("no volume")
        T = _resting(np.asarray(hull.vertices), np.asarray(hull.face_normals), hull.center_mass)
        v = _trimesh().transform_points(np.asarray(hull.vertices), T)
    except Exception as e:  # trimesh raises many kinds
        raise ConfigError(f"mesh file {path} could not be used ({type(e).__name__}: {e}); fix or remove it") from None
    T = T.copy()
    T[:3, 3] -= (v.min(0) + v.max(0)) / 2
    return mesh, T


def load_mesh(path: str) -> np.ndarray:
    """(V, 3) convex-hull vertices [m] of a mesh file in its most stable resting pose, centred on its box."""
    mesh, T = _placed(path)
    return _trimesh().transform_points(np.asarray(mesh.convex_hull.vertices), T)


CONCAVE = 1.1  # a closed mesh whose hull is this much larger than itself is decomposed into convex parts


@functools.cache
def load_parts(path: str) -> tuple[np.ndarray, ...]:
    """Convex parts (each (V, 3) [m], in load_mesh's frame) of a concave mesh file, by coacd's approximate
    convex decomposition (cached per file: it takes seconds); () for a mesh close to convex, one that is not
    closed, or when coacd is not installed (then its hull stands in for it)."""
    mesh, T = _placed(path)
    if not mesh.is_watertight or mesh.convex_hull.volume <= CONCAVE * abs(mesh.volume):
        return ()
    try:
        import coacd
    except ImportError:
        return ()
    coacd.set_log_level("error")
    pieces = coacd.run_coacd(coacd.Mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces)), threshold=0.05, seed=0)
    return tuple(_trimesh().transform_points(np.asarray(v), T) for v, _ in pieces if len(v) >= 4)


def _resting(verts: np.ndarray, normals: np.ndarray, com: np.ndarray) -> np.ndarray:
    """(4, 4) rotation putting a convex solid on its stable face with the lowest centre of mass."""
    best, best_h = None, np.inf
    for n in np.unique(np.round(normals, 6), axis=0):
        n = n / np.linalg.norm(n)
        d = (verts - com) @ n
        h = d.max()
        face = verts[d > h - 1e-6]  # the face's vertices, on the support plane
        u = np.cross(n, [1.0, 0, 0] if abs(n[0]) < 0.9 else [0, 1.0, 0])
        u /= np.linalg.norm(u)
        w = np.cross(n, u)
        pts = (face - com) @ np.stack([u, w], 1)
        if len(pts) >= 3 and h < best_h and _inside(np.zeros(2), pts):
            best, best_h = n, h
    if best is None:
        raise ValueError("no stable resting face")
    return _trimesh().geometry.align_vectors(best, [0.0, 0.0, -1.0])


def _inside(p: np.ndarray, pts: np.ndarray) -> bool:
    """Is p strictly inside the convex hull of 2-D points?"""
    c = pts.mean(0)
    ang = np.arctan2(*(pts - c).T[::-1])
    poly = pts[np.argsort(ang)]
    edges = np.roll(poly, -1, 0) - poly
    cross = edges[:, 0] * (p[1] - poly[:, 1]) - edges[:, 1] * (p[0] - poly[:, 0])
    return bool(np.all(cross > 1e-9))


def from_file(rng: np.random.Generator, path: str, name: str, colour: str, scale: float = 1.0) -> Obj:
    """An object instance from a mesh file, scaled to the mesh family's sizes and to fit the gripper."""
    v = load_mesh(path)
    half = np.ptp(v, axis=0) / 2
    target = rng.uniform(*SIZES["mesh"][0]) * scale
    k = min(target / half[:2].max(), MAX_WIDTH / 2 / half[:2].min(), 0.045 / half[2])
    v = v * k
    size = np.ptp(v, axis=0) / 2
    return Obj(
        name=name,
        shape="mesh",
        size=(float(size[0]), float(size[1]), float(size[2])),
        colour=colour,
        rgba=rgba(OBJECT_COLOURS[colour]),
        mesh=tuple((float(p[0]), float(p[1]), float(p[2])) for p in v),
        parts=tuple(tuple((float(q[0]), float(q[1]), float(q[2])) for q in part * k) for part in load_parts(path)),
    )
