"""A task's skill script as data: key TCP poses, the segments between them, their speeds, gripper events,
collision rules and phase names, declared once per task and run by both modes.

The per-attempt expert runs it one attempt at a time (mink IK, MuJoCo collision checks, OMPL for the transits,
ruckig/toppra timing: planners/script.py, scenes/pick_place.py); the batched planner runs it for W attempts at once
(compiled IK, sphere-cover sweeps, minimum-jerk timing: synth/batch_planner/), for the kinematic mode and, by
default, for physics mode's one-arm pick-and-places (synth/batched_plans.py, the expert as the fallback). Neither
holds a copy of a task's motion.

Key poses are TCP positions [m, world] that share one orientation, the grasp's, whose z axis is the approach
direction (into the object). Each is an anchor plus offsets: `grasp`, the TCP where the fingers close, or
`place`, the TCP where the carried object's centre is at the place centre; `approach` [m] along the grasp's
approach axis (negative: backed off), `up` [m] along the world's z. The first key is solved from the arm's
home, each other from the one before it; a key reached from the one before it by a straight segment may not
turn a joint further than the script's `flip` (FLIP: a wrist flip on a short move). A straight segment may pass
through `via` keys (a Cartesian line solved at a few points), timed as one path.

A task whose hand moves along a Cartesian line (push, the drawers) anchors its keys at the line's ends instead,
`from` and `to` (Script.line_positions), and moves between them with a "line" segment: IK waypoints every
`step` [m] along the line, each solved from the one before and turning no joint further than LINE_FLIP, joined
by one motion through them. What moves with the hand while the gripper is closed is the script's `carries`:
the object (a pick-and-place), nothing (a push: the fingers closed into one flat face), or an articulation
(a drawer's handle, held while the drawer's joint follows the hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from synth.types import Scene

FLIP = 1.2  # [rad] a key reached by a straight segment whose IK solution turns a joint further is a wrist flip
START = "start"  # a segment's start key: where the arm is when the move begins (home, or the last move's end)
MOTIONS = ("transit", "straight", "hold", "line")
TOUCH = ("object", "table", "place")  # what a segment may touch (see Segment.touch)
LINE_FLIP = 0.35  # [rad] a line's waypoint whose IK solution turns a joint further than this from the last flips
CARRIES = ("object", "nothing", "articulation")  # what moves with the closed hand (Script.carries)


@dataclass(frozen=True)
class Key:
    """A key TCP pose: anchor ("grasp" | "place", or a line's "from" | "to") + approach [m] along the approach
    axis + up [m] along z."""

    name: str
    anchor: str
    approach: float = 0.0
    up: float = 0.0


@dataclass(frozen=True)
class Segment:
    """One motion between two key poses, or a hold at one.

    motion: "transit" (free motion: a collision-checked straight joint-space segment, and in physics mode OMPL
    where that is in collision), "straight" (a straight joint-space segment, checked, no fallback), "line"
    (the TCP along the straight Cartesian line `start` -> `end`: IK waypoints every `step` [m], each checked
    to the next, one motion through them) or "hold" (the arm still at `start` while the gripper moves to
    `grip`: the gripper events). speed: (velocity,
    acceleration) as fractions of the arm's limits. grip: "open" or "closed" throughout a motion; where a hold
    ends. duration [s] and ramp (the share of it during which the gripper moves): a hold's. touch: what the
    robot may touch on the way, of TOUCH: the task's object where it rests, the table, the place target's geoms
    (the task's `place_geoms`); a carried object never collides with itself. margin [m]: the clearance it keeps
    from everything else."""

    phase: str
    start: str
    end: str
    motion: str
    speed: tuple[float, float] = (1.0, 1.0)
    grip: str = "open"
    duration: float = 0.0
    ramp: float = 1.0
    touch: tuple[str, ...] = ()
    margin: float = 0.01
    via: tuple[str, ...] = ()  # a straight motion's keys between start and end, in order: one timed path through them
    step: float = 0.0

    def __post_init__(self) -> None:
        assert self.motion in MOTIONS and self.grip in ("open", "closed") and set(self.touch) <= set(TOUCH)
        assert not self.via or self.motion == "straight"
        assert (self.motion == "line") == (self.step > 0), "a line segment has a waypoint step > 0, no other"

    @property
    def path(self) -> tuple[str, ...]:
        """The keys the motion passes through: start, via..., end."""
        return (self.start, *self.via, self.end)

    def legs(self) -> list[tuple[str, str]]:
        """(from, to) key names of each straight piece of the motion."""
        return list(zip(self.path[:-1], self.path[1:], strict=True))


@dataclass(frozen=True)
class Script:
    """A skill: key poses in solving order and the segments from START through them. A task driving several arms
    declares one script that every arm runs at once, each arm's keys from its own anchors (scenes/bimanual_lift.py:
    each hand's grasp), the segments timed for all arms together.

    The object is held from the hold that closes the gripper to the hold that opens it, and carried with the
    hand by the closed motions between (`carries`, of CARRIES: "object"; "articulation": the hand holds a handle
    and the articulation follows it; "nothing": closed fingers carry nothing). flip [rad]: the most a key reached
    by a straight segment may turn a joint. open_width [m]: the open gripper's width (None: its stroke)."""

    keys: tuple[Key, ...]
    segments: tuple[Segment, ...]
    flip: float = FLIP
    carries: str = "object"
    open_width: float | None = None

    def __post_init__(self) -> None:
        names = {k.name for k in self.keys}
        assert all(s.start in names | {START} and set(s.via) | {s.end} <= names for s in self.segments)
        assert self.carries in CARRIES

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    def straight_keys(self) -> tuple[str, ...]:
        """Keys reached from the key before them by a straight segment (or a piece of one through `via` keys):
        those may not flip the wrist."""
        before = dict(zip(self.names[1:], self.names[:-1], strict=True))
        legs = [leg for s in self.segments if s.motion == "straight" for leg in s.legs()]
        return tuple(b for a, b in legs if before.get(b, None) == a)

    def grips(self) -> list[tuple[str, str]]:
        """(grip at the start, grip at the end) per segment: the gripper starts open."""
        out, g = [], "open"
        for s in self.segments:
            out.append((g, s.grip))
            g = s.grip
        return out

    def carried(self) -> list[bool]:
        """Per segment: whether the hand carries the object or moves the articulation (a closed motion)."""
        return [s.motion != "hold" and s.grip == "closed" and self.carries != "nothing" for s in self.segments]

    def held(self) -> list[bool]:
        """Per segment: whether the fingers rest on the object (closed at its start or end)."""
        return ["closed" in g for g in self.grips()]

    def released(self) -> list[bool]:
        """Per segment: whether the object has been let go (from the hold that opens the gripper on)."""
        out, let_go = [], False
        for s, (g0, g1) in zip(self.segments, self.grips(), strict=True):
            let_go = let_go or (s.motion == "hold" and g0 == "closed" and g1 == "open")
            out.append(let_go)
        return out

    @property
    def grasp_key(self) -> str:
        """The key where the gripper closes on the object."""
        return next(s.start for s, (g0, g1) in zip(self.segments, self.grips(), strict=True) if g1 != g0)

    def positions(self, grasp: np.ndarray, approach: np.ndarray, place: np.ndarray) -> np.ndarray:
        """(..., len(keys), 3) [m] the key TCP positions, from the grasp TCP position grasp (..., 3), the
        approach axis approach (..., 3) (unit, into the object) and the TCP position at the place place (..., 3)."""
        up = np.array([0.0, 0.0, 1.0])
        out = []
        for k in self.keys:
            p = grasp if k.anchor == "grasp" else place
            if k.approach:
                p = p + k.approach * approach
            if k.up:
                p = p + k.up * up
            out.append(np.broadcast_to(p, np.broadcast_shapes(grasp.shape, place.shape)))
        return np.stack(out, -2)

    @property
    def line(self) -> Segment:
        """The script's line segment (a script with Cartesian-line keys has one)."""
        return next(s for s in self.segments if s.motion == "line")

    def line_positions(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """(..., len(keys), 3) [m] the key TCP positions of a line script, its keys anchored at the line's
        start (..., 3) ("from") and end (..., 3) ("to") plus `up` along z."""
        up = np.array([0.0, 0.0, 1.0])
        out = []
        for k in self.keys:
            assert k.anchor in ("from", "to") and not k.approach, f"key {k.name}: a line script's keys are from/to + up"
            p = start if k.anchor == "from" else end
            out.append(p + k.up * up if k.up else p)
        return np.stack(out, -2)


def line_points(start: np.ndarray, end: np.ndarray, step: float) -> np.ndarray:
    """(n, 3) [m] the waypoints of the line start (3,) -> end (3,) at most `step` [m] apart, both ends included."""
    n = max(2, int(np.ceil(np.linalg.norm(end - start) / step)) + 1)
    return start + np.linspace(0, 1, n)[:, None] * (end - start)


def line_points_batch(start: np.ndarray, end: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """line_points of W lines start, end (W, 3) [m]: (points (W, N, 3), each padded with its last point to the
    longest line's N, n (W,) each line's own count), each line's points equal to line_points'."""
    n = np.maximum(2, np.ceil(np.linalg.norm(end - start, axis=1) / step).astype(int) + 1)
    t = np.arange(n.max())[None] * (1.0 / (n - 1))[:, None]  # as np.linspace computes them
    t[np.arange(len(n)), n - 1] = 1.0
    t = np.minimum(t, 1.0)
    return start[:, None] + t[..., None] * (end - start)[:, None], n


@dataclass(frozen=True)
class Placement:
    """One pick-and-place of a scene: objects[object] is released with its centre at xy [m], height release [m],
    and comes to rest at height rest [m]; while it is set down it may touch the table, the geoms of
    scene.all_targets[target] (None: no target) and the objects `on`."""

    object: int
    xy: tuple[float, float]
    release: float
    rest: float
    target: int | None = 0
    on: tuple[int, ...] = ()


def place_tcp(grasp: np.ndarray, centre: np.ndarray, place_centre: np.ndarray) -> np.ndarray:
    """(..., 3) [m] the TCP position that puts the object's centre at place_centre, the object held as grasped
    (its centre `centre` while the TCP is at `grasp`, the hand's orientation unchanged)."""
    return place_centre - (centre - grasp)


class Placing(Protocol):
    """What the planners read of a pick-and-place task besides its script (scenes/pick_place.py)."""

    phases: ClassVar[tuple[str, ...]]
    grasp_below: float

    def script(self) -> Script: ...

    def scene(self) -> Scene: ...

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str: ...

    def placements(self, scene: Scene) -> list[Placement]: ...

    def placed(self, scenes: list[Scene], centre: np.ndarray) -> np.ndarray:
        """(E,) whether every pick-and-place's object, at rest with its centre at centre (E, M, 3) [m] (in the
        order of placements()), counts as placed."""
        ...

    def place_check(self, scene: Scene) -> dict: ...


class Lining(Protocol):
    """What the planners read of a task whose hand moves along a Cartesian line (scenes/push.py,
    scenes/drawer.py): the line moves what the task follows (the pushed object, the drawer)."""

    phases: ClassVar[tuple[str, ...]]
    held_width: ClassVar[float]  # [m] the fingers' width while closed (on nothing: 0)

    def script(self) -> Script: ...

    def scene(self) -> Scene: ...

    def instruction(self, scene: Scene, rng: np.random.Generator, held_out: bool = False) -> str: ...

    def hand_line(self, scene: Scene) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """The TCP's line start, end (3,) [m, world] and the hand's rotations (3, 3) along it, in the order tried."""
        ...

    def line_check(self, scene: Scene) -> tuple[dict, dict]:
        """(the plan's check, its planner stats) as physics mode writes them (JSON-able)."""
        ...

    def follow(self, scenes: list[Scene], ep: np.ndarray, travel: np.ndarray) -> np.ndarray:
        """(F, 7) world pose (position [m], quaternion w, x, y, z) of what the task follows in scenes[ep] (F,) once
        the hand has advanced travel (F,) [m] along the line from its start (the furthest so far)."""
        ...

    def kinematic_verdict(self, scenes: list[Scene], travel: np.ndarray) -> list[str]:
        """Per scene, '' where what the task follows, at rest where the hand's final advance travel (E,) [m] along
        the line left it, counts as success by the task's judge, else the judge's failure reason."""
        ...
