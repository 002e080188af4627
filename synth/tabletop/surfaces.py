"""Procedural textures (checker, stripes, noise, plain) on the table, the floor and background walls.

A texture is data (`synth.types.Texture`): its pixels are made here, deterministically, when the scene is
compiled, so a recorded draw rebuilds the same image.
"""

from __future__ import annotations

import mujoco
import numpy as np

from synth.types import Scene, Texture

TEXTURE_SIZE = 64  # [px] square; uploaded to the GL context of every episode that renders
# background walls: (name, centre (3,) [m], half extents (3,) [m]) behind and beside the robot
WALLS = (
    ("wall_back", (-0.9, 0.0, 1.0), (0.01, 1.6, 1.0)),
    ("wall_left", (0.3, 1.6, 1.0), (1.2, 0.01, 1.0)),
    ("wall_right", (0.3, -1.6, 1.0), (1.2, 0.01, 1.0)),
)


def image(tex: Texture, size: int = TEXTURE_SIZE) -> np.ndarray:
    """(size, size, 3) uint8 pixels of a procedural texture (deterministic in its fields)."""
    u = (np.arange(size) + 0.5) / size * tex.cells
    x, y = np.meshgrid(u, u)
    if tex.pattern == "checker":
        mix = (np.floor(x) + np.floor(y)) % 2
    elif tex.pattern == "stripes":
        mix = np.floor(2 * x) % 2
    elif tex.pattern == "noise":  # value noise: random cell values, bilinearly smoothed
        k = max(tex.cells, 1)
        grid = np.random.default_rng(tex.seed).uniform(size=(k + 1, k + 1))
        grid[-1], grid[:, -1] = grid[0], grid[:, 0]  # tiles seamlessly
        i, j = np.floor(y).astype(int) % k, np.floor(x).astype(int) % k
        fy, fx = y - np.floor(y), x - np.floor(x)
        mix = (
            grid[i, j] * (1 - fx) * (1 - fy)
            + grid[i, j + 1] * fx * (1 - fy)
            + grid[i + 1, j] * (1 - fx) * fy
            + grid[i + 1, j + 1] * fx * fy
        )
    else:
        mix = np.zeros_like(x)
    rgb = (1 - mix[..., None]) * np.asarray(tex.rgb1) + mix[..., None] * np.asarray(tex.rgb2)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def add_surfaces(spec: mujoco.MjSpec, scene: Scene) -> None:
    """Give the table and floor their textures and add the textured walls (only when the scene has them)."""
    for surface, tex in scene.textures:
        t = spec.add_texture(name=f"tex_{surface}", type=mujoco.mjtTexture.mjTEXTURE_2D)
        t.width = t.height = TEXTURE_SIZE
        t.nchannel = 3
        t.data = image(tex).tobytes()
        mat = spec.add_material(name=f"mat_{surface}")
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = f"tex_{surface}"
        if surface == "floor":
            mat.texuniform, mat.texrepeat = True, [0.5, 0.5]  # one texture per 2 m
        geoms = [n for n, _, _ in WALLS] if surface == "walls" else [surface]
        for name, pos, size in WALLS if surface == "walls" else ():
            w = spec.worldbody.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, pos=list(pos), size=list(size))
            w.contype = w.conaffinity = 0
        for name in geoms:
            g = spec.geom(name)
            g.material, g.rgba = f"mat_{surface}", [1.0, 1.0, 1.0, 1.0]  # the texture's own colours
