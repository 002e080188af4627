"""MuJoCo geoms, cameras and lights as USD prims (for synth.usd.export): shapes with their colour, physics material
and collision group, UsdGeom cameras, UsdLux lights. Read from a compiled MjModel; `pxr` is imported inside."""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np

G = mujoco.mjtGeom
SUN, DOME = 3000.0, 1000.0  # UsdLux intensity for a MuJoCo colour of 1 (a brightness choice; colours are MuJoCo's)
X_TO_Z = np.array([math.cos(-math.pi / 4), 0.0, math.sin(-math.pi / 4), 0.0])  # -90 deg about y: +x onto +z


def prim_name(m: mujoco.MjModel, kind: mujoco.mjtObj, i: int, fallback: str) -> str:
    """A valid prim name from MuJoCo's name of object i (or fallback + i for an unnamed one)."""
    from pxr import Tf

    return Tf.MakeValidIdentifier(mujoco.mj_id2name(m, kind, i) or f"{fallback}{i}")


def quat_mul(a, b) -> np.ndarray:
    """(4,) w, x, y, z: a then b."""
    out = np.empty(4)
    mujoco.mju_mulQuat(out, np.asarray(a, float), np.asarray(b, float))
    return out


def z_to(v) -> np.ndarray:
    """(4,) quaternion turning +z onto the direction v."""
    out = np.empty(4)
    mujoco.mju_quatZ2Vec(out, np.asarray(v, float))
    return out


def pose(prim, pos, quat, scale=None) -> None:
    """Translate [m], orient (w, x, y, z) and optionally scale a prim relative to its parent."""
    from pxr import Gf, UsdGeom

    x = UsdGeom.Xformable(prim)
    x.AddTranslateOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(*map(float, pos)))
    x.AddOrientOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Quatd(*map(float, quat)))
    if scale is not None:
        x.AddScaleOp(UsdGeom.XformOp.PrecisionDouble).Set(Gf.Vec3d(*map(float, scale)))


def physx(prim, schema: str, **attrs) -> None:
    """PhysX attributes by name (physxJoint__armature=0.1 writes `physxJoint:armature`), the schema listed as
    applied: usd-core has no PhysxSchema, Isaac Sim reads these names."""
    from pxr import Sdf

    prim.AddAppliedSchema(schema)
    kinds = {bool: Sdf.ValueTypeNames.Bool, float: Sdf.ValueTypeNames.Float, str: Sdf.ValueTypeNames.Token}
    for k, v in attrs.items():
        prim.CreateAttribute(k.replace("__", ":"), kinds[type(v)]).Set(v)


class Shapes:
    """Writes geoms of one model into one stage, sharing materials and collision groups between them."""

    def __init__(self, m: mujoco.MjModel, stage):
        self.m, self.stage = m, stage
        self.looks: dict[tuple, Any] = {}  # colour or friction -> UsdShade.Material
        self.groups: dict[tuple[int, int], Any] = {}  # (contype, conaffinity) -> UsdPhysics.CollisionGroup

    def colour(self, g: int) -> np.ndarray:
        """(4,) rgba of geom g; a textured geom gets its texture's mean colour times its rgba."""
        m, rgba = self.m, self.m.geom_rgba[g].astype(float)
        mat = m.geom_matid[g]
        tex = m.mat_texid[mat, mujoco.mjtTextureRole.mjTEXROLE_RGB] if mat >= 0 else -1
        if tex >= 0:
            n, c = m.tex_width[tex] * m.tex_height[tex], m.tex_nchannel[tex]
            px = m.tex_data[m.tex_adr[tex] : m.tex_adr[tex] + n * c].reshape(n, c)[:, :3]
            rgba[:3] *= px.mean(0) / 255.0
        return rgba

    def _look(self, rgba: np.ndarray):
        from pxr import Gf, Sdf, UsdShade

        key = tuple(np.round(rgba, 4).tolist())
        if key not in self.looks:
            mat = UsdShade.Material.Define(self.stage, f"/World/Looks/colour{len(self.looks)}")
            sh = UsdShade.Shader.Define(self.stage, mat.GetPath().AppendChild("surface"))
            sh.CreateIdAttr("UsdPreviewSurface")
            sh.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(*key[:3]))
            sh.CreateInput("opacity", Sdf.ValueTypeNames.Float).Set(key[3])
            sh.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.6)
            mat.CreateSurfaceOutput().ConnectToSource(sh.ConnectableAPI(), "surface")
            self.looks[key] = mat
        return self.looks[key]

    def _friction(self, mu: float):
        """A physics material; PhysX combines two by `max`, as MuJoCo takes the larger friction of a pair."""
        from pxr import UsdPhysics, UsdShade

        key = ("friction", round(float(mu), 6))
        if key not in self.looks:
            mat = UsdShade.Material.Define(self.stage, f"/World/Looks/friction{len(self.looks)}")
            api = UsdPhysics.MaterialAPI.Apply(mat.GetPrim())
            api.CreateStaticFrictionAttr(key[1])
            api.CreateDynamicFrictionAttr(key[1])
            api.CreateRestitutionAttr(0.0)
            physx(mat.GetPrim(), "PhysxMaterialAPI", physxMaterial__frictionCombineMode="max")
            self.looks[key] = mat
        return self.looks[key]

    def _group(self, g: int):
        from pxr import UsdPhysics

        key = (int(self.m.geom_contype[g]), int(self.m.geom_conaffinity[g]))
        if key not in self.groups:
            path = f"/World/Collision/type{key[0]}_affinity{key[1]}"
            self.groups[key] = UsdPhysics.CollisionGroup.Define(self.stage, path)
        return self.groups[key]

    def geom(self, parent: str, g: int):
        """Geom g as a gprim under `parent` (its body's prim) at MuJoCo's geom_pos/geom_quat; a collider (with
        a physics material and collision group) where MuJoCo lets it collide."""
        from pxr import Gf, Usd, UsdGeom, UsdPhysics, UsdShade, Vt

        m, st, t, size = self.m, self.stage, int(self.m.geom_type[g]), self.m.geom_size[g]
        path = f"{parent}/{prim_name(m, mujoco.mjtObj.mjOBJ_GEOM, g, 'geom')}"
        scale = None
        if t == G.mjGEOM_PLANE:  # MuJoCo's plane collides everywhere; size is its drawn half-extent (0: infinite)
            p = UsdGeom.Plane.Define(st, path)
            p.CreateAxisAttr("Z")
            p.CreateWidthAttr(2 * float(size[0] or 50))
            p.CreateLengthAttr(2 * float(size[1] or 50))
        elif t == G.mjGEOM_BOX:
            p, scale = UsdGeom.Cube.Define(st, path), size  # a cube of edge 2 scaled by the half-extents
            p.CreateSizeAttr(2.0)
        elif t == G.mjGEOM_SPHERE:
            p = UsdGeom.Sphere.Define(st, path)
            p.CreateRadiusAttr(float(size[0]))
        elif t in (G.mjGEOM_CYLINDER, G.mjGEOM_CAPSULE):
            p = (UsdGeom.Cylinder if t == G.mjGEOM_CYLINDER else UsdGeom.Capsule).Define(st, path)
            p.CreateAxisAttr("Z")
            p.CreateRadiusAttr(float(size[0]))
            p.CreateHeightAttr(2 * float(size[1]))  # MuJoCo's size[1] is half the straight part
        elif t == G.mjGEOM_MESH:  # the compiled mesh: MuJoCo re-centres it, geom_pos/quat put it back
            k = m.geom_dataid[g]
            v0, nv, f0, nf = m.mesh_vertadr[k], m.mesh_vertnum[k], m.mesh_faceadr[k], m.mesh_facenum[k]
            p = UsdGeom.Mesh.Define(st, path)
            p.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(m.mesh_vert[v0 : v0 + nv].astype(np.float32)))
            p.CreateFaceVertexCountsAttr(Vt.IntArray([3] * int(nf)))
            p.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(m.mesh_face[f0 : f0 + nf].ravel().astype(np.int32)))
            p.CreateSubdivisionSchemeAttr("none")
        else:
            raise ValueError(f"geom {path}: MuJoCo geom type {t} has no USD export")
        pose(p.GetPrim(), m.geom_pos[g], m.geom_quat[g], scale)
        p.CreateExtentAttr(UsdGeom.Boundable.ComputeExtentFromPlugins(p, Usd.TimeCode.Default()))
        rgba = self.colour(g)
        p.CreateDisplayColorAttr([Gf.Vec3f(*map(float, rgba[:3]))])
        p.CreateDisplayOpacityAttr([float(rgba[3])])
        if rgba[3] == 0:
            p.MakeInvisible()
        binding = UsdShade.MaterialBindingAPI.Apply(p.GetPrim())
        binding.Bind(self._look(rgba))
        if m.geom_contype[g] or m.geom_conaffinity[g]:
            UsdPhysics.CollisionAPI.Apply(p.GetPrim())
            if t == G.mjGEOM_MESH:
                UsdPhysics.MeshCollisionAPI.Apply(p.GetPrim()).CreateApproximationAttr("convexHull")
            strength = UsdShade.Tokens.weakerThanDescendants
            binding.Bind(self._friction(m.geom_friction[g, 0]), strength, "physics")
            self._group(g).GetCollidersCollectionAPI().GetIncludesRel().AddTarget(p.GetPath())
        return p.GetPrim()

    def filter_groups(self) -> None:
        """MuJoCo lets geoms a, b touch iff contype_a & conaffinity_b or contype_b & conaffinity_a; every other
        pair of groups is filtered (e.g. the robot's links never touch each other)."""
        for (ta, aa), ga in self.groups.items():
            for (tb, ab), gb in self.groups.items():
                if not (ta & ab or tb & aa):
                    ga.CreateFilteredGroupsRel().AddTarget(gb.GetPath())


def cameras_and_lights(m: mujoco.MjModel, stage, parents: dict[int, str], resolution: tuple[int, int]) -> None:
    """MuJoCo's cameras (both look along -z with y up) and lights; one on a body goes under its prim in
    `parents` (body -> prim path), one on the world under /World/Cameras or /World/Lights.

    resolution: (height, width) [px], which sets the aspect ratio; MuJoCo's fovy is the vertical angle.
    """
    from pxr import Gf, UsdGeom, UsdLux

    h, w = resolution
    for c in range(m.ncam):
        parent = parents.get(int(m.cam_bodyid[c]), "/World/Cameras")
        cam = UsdGeom.Camera.Define(stage, f"{parent}/{prim_name(m, mujoco.mjtObj.mjOBJ_CAMERA, c, 'camera')}")
        pose(cam.GetPrim(), m.cam_pos[c], m.cam_quat[c])
        aperture = 20.955  # USD's default horizontal aperture [mm]; only ratios matter
        cam.CreateHorizontalApertureAttr(aperture)
        cam.CreateVerticalApertureAttr(aperture * h / w)
        cam.CreateFocalLengthAttr(aperture * h / w / (2 * math.tan(math.radians(m.cam_fovy[c]) / 2)))
        cam.CreateClippingRangeAttr(Gf.Vec2f(m.vis.map.znear * m.stat.extent, m.vis.map.zfar * m.stat.extent))
    for k in range(m.nlight):
        parent = parents.get(int(m.light_bodyid[k]), "/World/Lights")
        path = f"{parent}/{prim_name(m, mujoco.mjtObj.mjOBJ_LIGHT, k, 'light')}"
        rgb = m.light_diffuse[k].astype(float)
        if m.light_type[k] == mujoco.mjtLightType.mjLIGHT_DIRECTIONAL:
            light = UsdLux.DistantLight.Define(stage, path)
        else:
            light = UsdLux.SphereLight.Define(stage, path)
            light.CreateRadiusAttr(0.05)
            if m.light_type[k] == mujoco.mjtLightType.mjLIGHT_SPOT:
                UsdLux.ShapingAPI.Apply(light.GetPrim()).CreateShapingConeAngleAttr(float(m.light_cutoff[k]))
        pose(light.GetPrim(), m.light_pos[k], z_to(-m.light_dir[k]))  # a UsdLux light shines along its -z
        light.CreateIntensityAttr(SUN * float(rgb.max()))
        light.CreateColorAttr(Gf.Vec3f(*map(float, rgb / max(rgb.max(), 1e-9))))
    amb = m.vis.headlight.ambient.astype(float)
    if amb.max() > 0:  # MuJoCo's headlight ambient: light from everywhere
        dome = UsdLux.DomeLight.Define(stage, "/World/Lights/ambient")
        dome.CreateIntensityAttr(DOME * float(amb.max()))
        dome.CreateColorAttr(Gf.Vec3f(*map(float, amb / amb.max())))
