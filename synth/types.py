"""Plain data passed between stages: scene specs (per episode) and batched arrays (per batch).

Scene specs are frozen dataclasses of numbers and strings, so a randomizer is a pure function
``(scene, rng) -> (scene, draws)`` and every draw can be written to JSON.
Positions are world-frame metres; the world's z = 0 is the floor; angles are radians.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np

SHAPES = ("box", "cylinder", "sphere", "capsule", "mesh")


@dataclass(frozen=True)
class Obj:
    """A rigid object resting on the table.

    size: half extents per shape: box (x, y, z); cylinder (radius, half height, -);
    sphere (radius, -, -); capsule lying along its local x (radius, half length, -);
    mesh (x, y, z) half extents of its bounding box, vertices in ``mesh``.
    """

    name: str
    shape: str = "box"
    size: tuple[float, float, float] = (0.02, 0.02, 0.02)
    colour: str = "red"
    rgba: tuple[float, float, float, float] = (0.85, 0.1, 0.1, 1.0)
    xy: tuple[float, float] = (0.5, 0.0)  # [m] centre; it rests on the table top (z is derived)
    yaw: float = 0.0  # [rad] about the vertical
    mass: float = 0.1  # [kg]
    friction: float = 1.0  # sliding coefficient
    restitution: float = 0.0  # coefficient of restitution in [0, 0.7] (0: MuJoCo's default, critically damped)
    mesh: tuple[tuple[float, float, float], ...] = ()  # vertices [m] in the object frame (shape == "mesh")
    # a concave mesh as convex parts (each a tuple of vertices [m] in the object frame); `mesh` is then
    # their convex hull (what grasp selection and footprints use), the parts are what collides and is seen
    parts: tuple[tuple[tuple[float, float, float], ...], ...] = ()
    family: str = ""  # the shape family it was drawn from when that is not `shape` (a cup is a concave mesh)
    active: bool = True  # unused slots of the fixed-size scene are parked and inert

    @property
    def half_height(self) -> float:
        """Distance from the centre to the table when resting [m]."""
        if self.shape in ("sphere", "capsule"):
            return self.size[0]
        if self.shape == "cylinder":
            return self.size[1]
        return self.size[2]

    @property
    def footprint(self) -> float:
        """Radius of a disc that covers the object seen from above [m]."""
        s = self.size
        if self.shape in ("box", "mesh"):
            return float((s[0] ** 2 + s[1] ** 2) ** 0.5)
        if self.shape == "capsule":
            return s[0] + s[1]
        return s[0]


@dataclass(frozen=True)
class Table:
    size: tuple[float, float] = (0.35, 0.5)  # half extents x, y [m]
    height: float = 0.75  # top surface z [m]
    centre: tuple[float, float] = (0.5, 0.0)  # [m]
    colour: str = "wood"
    rgba: tuple[float, float, float, float] = (0.62, 0.48, 0.33, 1.0)
    friction: float = 0.8
    restitution: float = 0.0  # coefficient of restitution of the top (see Obj.restitution)


@dataclass(frozen=True)
class Target:
    """Where the object goes: a flat coloured region, a low tray, or a bin with tall walls; "none" for a
    task whose place target is another object (stack): then nothing is shown and nothing collides."""

    kind: str = "region"  # region | tray | bin | none
    pos: tuple[float, float] = (0.5, -0.2)  # centre x, y [m]
    size: tuple[float, float] = (0.07, 0.07)  # inner half extents [m]
    wall: float = 0.025  # wall height of a tray or bin [m]
    colour: str = "green"
    rgba: tuple[float, float, float, float] = (0.15, 0.7, 0.2, 1.0)

    @property
    def walled(self) -> bool:
        """A container (tray or bin) with a base plate and walls, rather than a flat region."""
        return self.kind in ("tray", "bin")


PATTERNS = ("plain", "checker", "stripes", "noise")
SURFACES = ("table", "floor", "walls")


@dataclass(frozen=True)
class Texture:
    """A procedural pattern: "plain" | "checker" | "stripes" | "noise", blending colour rgb1 and rgb2 (each
    (3,) in [0, 1]) with `cells` periods across the texture; `seed` draws the noise."""

    pattern: str = "plain"
    rgb1: tuple[float, float, float] = (0.5, 0.5, 0.5)
    rgb2: tuple[float, float, float] = (0.4, 0.4, 0.4)
    cells: int = 4
    seed: int = 0


@dataclass(frozen=True)
class ArmDynamics:
    """Per-joint scales on the arm's joint damping and actuator position gains (empty: the embodiment's own)."""

    damping: tuple[float, ...] = ()
    gain: tuple[float, ...] = ()


@dataclass(frozen=True)
class StateStd:
    """Standard deviations of the Gaussian noise on the written state (`state_noise`); 0: none."""

    joints: float = 0.0  # [rad] on each arm joint
    gripper: float = 0.0  # [m] on the gripper width


@dataclass(frozen=True)
class Drift:
    """A slow Ornstein-Uhlenbeck offset on the executed arm joint targets (`action_drift`, DART)."""

    joints: float = 0.0  # [rad] its standard deviation; 0: off
    period: float = 0.0  # [s] its correlation time
    quiet: float = 0.0  # [s] faded out within this of every gripper change and of the plan's end


@dataclass(frozen=True)
class ExecutionNoise:
    """Gaussian noise on the executed arm joint targets and a control latency (`action_noise`)."""

    joints: float = 0.0  # [rad] std, at every control period
    latency: int = 0  # [control periods] the physics runs the targets this late


@dataclass(frozen=True)
class MissedGrasp:
    """A first grasp aimed beside the planned one, closed on nothing, then the hand lifted (`regrasp`)."""

    dx: float = 0.0  # [m] world x offset of the missed grasp
    dy: float = 0.0  # [m] world y offset
    up: float = 0.0  # [m] the lift after the missed close; 0: no miss


@dataclass(frozen=True)
class StoppedDescent:
    """A first descent stopped beside and above the planned grasp, then corrected (`near_miss`)."""

    dx: float = 0.0  # [m] world x offset of the stop
    dy: float = 0.0  # [m] world y offset
    dz: float = 0.0  # [m] height of the stop above the grasp; 0: no stop


@dataclass(frozen=True)
class Perturbations:
    """What the perturbation randomizers drew for one episode, one field each (the defaults perturb nothing):
    read by the expert (regrasp, near_miss), the executor (action_drift, action_noise), the writer (state_noise)
    and the instruction (words). A new perturbation randomizer adds one field here."""

    state_noise: StateStd = StateStd()
    action_drift: Drift = Drift()
    action_noise: ExecutionNoise = ExecutionNoise()
    regrasp: MissedGrasp = MissedGrasp()
    near_miss: StoppedDescent = StoppedDescent()
    words: tuple[tuple[str, str], ...] = ()  # (word, replacement) applied to the instruction (`synonyms`)


LIGHT_KINDS = ("directional", "spot", "point")


@dataclass(frozen=True)
class Drawer:
    """A cabinet standing on the table with one drawer that slides out of its front towards the robot.

    pos: cabinet centre x, y [m]; yaw [rad] turns it about z (0: the front faces -x, the robot); size:
    cabinet half extents (depth, width, height) [m]; travel: how far the drawer slides out at most [m];
    opening: how far it is out at the start [m]; damping [N s/m] and friction [N] of its slide; the handle
    is a bar `handle` [m] half long, standing `standoff` [m] off the drawer's front near its top.
    """

    pos: tuple[float, float] = (0.62, 0.0)
    yaw: float = 0.0
    size: tuple[float, float, float] = (0.12, 0.14, 0.07)
    travel: float = 0.14
    opening: float = 0.0
    damping: float = 8.0
    friction: float = 1.0
    handle: float = 0.05
    standoff: float = 0.045
    colour: str = "white"
    rgba: tuple[float, float, float, float] = (0.9, 0.9, 0.9, 1.0)

    @property
    def out(self) -> tuple[float, float]:
        """The unit xy direction the drawer slides out."""
        return (-math.cos(self.yaw), -math.sin(self.yaw))


@dataclass(frozen=True)
class Light:
    """A light: "directional" (parallel rays along `direction`), "spot" (a cone of half angle `cutoff` [deg]
    from `pos` [m] along `direction`) or "point" (from `pos` in every direction). diffuse: (3,) rgb in [0, 1].
    ambient: (3,) the scene's ambient level; read from the key light (Scene.lights[0]) only. An inactive light
    is compiled but off (a fixed light count keeps the models of a batch alike)."""

    direction: tuple[float, float, float] = (0.3, 0.2, -1.0)
    diffuse: tuple[float, float, float] = (0.7, 0.7, 0.7)
    ambient: tuple[float, float, float] = (0.3, 0.3, 0.3)
    kind: str = "directional"
    pos: tuple[float, float, float] = (0.5, 0.0, 2.5)
    cutoff: float = 45.0
    active: bool = True


@dataclass(frozen=True)
class Camera:
    """A fixed camera looking at `lookat` from `pos` [m]; fovy [deg]."""

    name: str = "front"
    pos: tuple[float, float, float] = (1.05, 0.0, 1.3)
    lookat: tuple[float, float, float] = (0.45, 0.0, 0.72)
    fovy: float = 50.0


@dataclass(frozen=True)
class Scene:
    """Everything that differs between episodes. objects[0] is the object the task is about."""

    table: Table = field(default_factory=Table)
    objects: tuple[Obj, ...] = ()
    target: Target = field(default_factory=Target)
    lights: tuple[Light, ...] = (Light(),)  # lights[0] is the key light (`lighting`); fill lights follow (`lights`)
    targets: tuple[Target, ...] = ()  # place targets beyond `target` (sort: one region per class)
    cameras: tuple[Camera, ...] = (Camera(),)
    workspace: tuple[float, float, float, float] = (0.33, 0.66, -0.28, 0.28)  # x0, x1, y0, y1 [m]
    shapes: tuple[str, ...] = ()  # the task's object may only take these shapes (empty: any)
    sizes: tuple[tuple[float, float], ...] = ()  # the task's objects' size ranges [m] (Obj.size), if not the shape's
    region: tuple[float, ...] = ()  # x0, x1, y0, y1 [m]: the task's objects lie in this box too (empty: anywhere)
    target_kinds: tuple[str, ...] = ()  # the target may only take these kinds (empty: the randomizer's)
    sweep: bool = False  # objects[0] travels along the table to the target: keep that lane free of clutter
    textures: tuple[tuple[str, Texture], ...] = ()  # (surface, texture): table, floor, walls (added if listed)
    arm: ArmDynamics = field(default_factory=ArmDynamics)
    perturb: Perturbations = field(default_factory=Perturbations)  # noise, drift, expert detours, synonyms
    base: tuple[float, float, float] = (0.0, 0.0, 0.0)  # robot base offset x, y [m] and yaw [rad] (`robot_base`)
    task_objects: int = 1  # objects[:task_objects] are the task's own (randomized as such); clutter follows
    drawer: Drawer | None = None  # a cabinet with a drawer (open_drawer, close_drawer)
    groups: tuple[int, ...] = ()  # sort: the class of each task object, i.e. its target (0: `target`, k: targets[k-1])
    sort_by: str = ""  # sort: "colour" (a class shares one colour) | "shape" (a class shares one shape)

    @property
    def all_targets(self) -> tuple[Target, ...]:
        """`target` then the extra `targets`: index k is class k's target in a sorting scene."""
        return (self.target, *self.targets)

    def replace(self, **kw) -> Scene:
        return replace(self, **kw)

    def perturbed(self, **kw) -> Scene:
        """This scene with the named fields of its Perturbations replaced: scene.perturbed(regrasp=MissedGrasp(...))."""
        return replace(self, perturb=replace(self.perturb, **kw))

    def with_object(self, i: int, **kw) -> Scene:
        objs = list(self.objects)
        objs[i] = replace(objs[i], **kw)
        return replace(self, objects=tuple(objs))


def replace(obj, **kw):
    """dataclasses.replace for the plain frozen specs of this module (no __post_init__, every field set by
    __init__), without re-running __init__: a copy of obj's fields with `kw` changed."""
    names = _FIELDS.get(type(obj))
    if names is None:
        names = _FIELDS[type(obj)] = frozenset(f.name for f in dataclasses.fields(obj))
    if not names.issuperset(kw):
        raise TypeError(f"{type(obj).__name__} has no field(s) {sorted(set(kw) - names)}")
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__, **kw)
    return new


_FIELDS: dict[type, frozenset[str]] = {}


@dataclass
class Episode:
    """One verified demonstration, ready for the writer. T frames at the control rate.

    state: (T, S) float32 measured joints + gripper width; action: (T, A) float32 commanded targets;
    labels: extra per-frame features, e.g. "synth.phase" (T,) int64, "observation.ee_pose" (T, 7) float32;
    images: camera name -> (T, H, W, 3) uint8 (empty when state-only);
    meta: JSON-able facts: seed, attempt, randomizer draws, planner statistics, success checks, card.
    """

    attempt: int
    instruction: str
    state: object
    action: object
    labels: dict = field(default_factory=dict)
    images: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return len(self.action)  # type: ignore[arg-type]


@dataclass
class EpisodeBatch:
    """E episodes with their frames concatenated in episode order, N = lengths.sum() frames: what a worker
    hands the writer without one Python object per episode.

    state: (N, S) float32; action: (N, A) float32; labels: {key: (N,) or (N, D)}; lengths: (E,) int64;
    attempts: (E,) int64; instructions: E strings; metas: E JSON-able dicts (see Episode.meta), or each
    already serialized (a Json string).
    """

    state: np.ndarray
    action: np.ndarray
    labels: dict[str, np.ndarray]
    lengths: np.ndarray
    attempts: np.ndarray
    instructions: list[str]
    metas: list[dict | Json]

    def __len__(self) -> int:
        return len(self.lengths)

    @staticmethod
    def of(episodes: list[Episode]) -> EpisodeBatch:
        """The frames of state-and-label episodes (their images are not carried) concatenated."""
        if not episodes:
            return EpisodeBatch(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), {}, *_empty())
        return EpisodeBatch(
            np.concatenate([np.asarray(e.state) for e in episodes]),
            np.concatenate([np.asarray(e.action) for e in episodes]),
            {k: np.concatenate([np.asarray(e.labels[k]) for e in episodes]) for k in episodes[0].labels},
            np.array([e.length for e in episodes], np.int64),
            np.array([e.attempt for e in episodes], np.int64),
            [e.instruction for e in episodes],
            [e.meta for e in episodes],
        )

    @staticmethod
    def concat(parts: list[EpisodeBatch]) -> EpisodeBatch:
        """The episodes of `parts`, in order (an empty batch from none)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return EpisodeBatch.of([])
        return EpisodeBatch(
            np.concatenate([p.state for p in parts]),
            np.concatenate([p.action for p in parts]),
            {k: np.concatenate([p.labels[k] for p in parts]) for k in parts[0].labels},
            np.concatenate([p.lengths for p in parts]),
            np.concatenate([p.attempts for p in parts]),
            [t for p in parts for t in p.instructions],
            [m for p in parts for m in p.metas],
        )

    def episodes(self) -> list[Episode]:
        """One Episode (views into the batch's arrays) per episode."""
        ends = np.cumsum(self.lengths)
        out = []
        for j, (a, b) in enumerate(zip(ends - self.lengths, ends, strict=True)):
            labels = {k: v[a:b] for k, v in self.labels.items()}
            out.append(
                Episode(
                    int(self.attempts[j]),
                    self.instructions[j],
                    self.state[a:b],
                    self.action[a:b],
                    labels,
                    {},
                    _loaded(self.metas[j]),
                )
            )
        return out


class Json(str):
    """A value already serialized as JSON text (written as it is)."""


def dumps(value) -> str:
    """JSON text of `value`, as json.dumps writes it; a Json is that text already."""
    return value if isinstance(value, Json) else json.dumps(value)


def _loaded(meta):
    return json.loads(meta) if isinstance(meta, Json) else meta


def _empty() -> tuple[np.ndarray, np.ndarray, list, list]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), [], []
