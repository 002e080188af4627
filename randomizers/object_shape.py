"""Shape, size and colour of the task's object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synth.errors import ConfigError
from synth.keys import key
from synth.palette import OBJECT_COLOURS
from synth.randomize import SCENE, Randomizer, pick, uniform
from synth.registry import randomizer
from synth.tabletop import objects
from synth.types import Scene


@randomizer("object_shape", acts_on="scene", kinematic=True, evaluation=True)
@dataclass(frozen=True)
class ObjectShape(Randomizer):
    """Each of the task's objects: shape from `shapes`, sizes from the shape family x `scale`, colour from
    `colours` (the task's objects never share one). Draws of objects[0] at the top level, of objects[i]
    under "obj<i>".
    The shape "file" draws an instance from the mesh files (.obj .stl .ply .off .glb) in `mesh_dir`.
    A task that limits its object's shapes (push: nothing that rolls) draws from the shapes both allow; a task
    that gives its objects' size ranges (`Scene.sizes`: bimanual_lift's bar) draws sizes from those.
    A sorting scene (Scene.groups) gives the objects of one class one colour (sort_by "colour") or one shape
    ("shape"), each class its own."""

    description = "each task object's shape, size and colour"
    stage = SCENE
    shapes: tuple[str, ...] = key(
        ("box", "cylinder", "sphere", "capsule", "mesh"),
        "shapes drawn from: box, cylinder, sphere, capsule, mesh (random convex), cup, file (mesh_dir)",
    )
    scale: tuple[float, float] = key((0.85, 1.15), "range of the scale on the shape's own size ranges")
    colours: tuple[str, ...] = key(
        tuple(OBJECT_COLOURS),
        "colour names drawn from (any of the default's); the task's objects never share one",
    )
    mesh_dir: str = key("", "directory of .obj .stl .ply .off .glb files that the shape 'file' draws from ('': none)")

    def mesh_files(self) -> list[str]:
        if not self.mesh_dir:
            return []
        exts = {".obj", ".stl", ".ply", ".off", ".glb"}
        return sorted(str(p) for p in Path(self.mesh_dir).expanduser().iterdir() if p.suffix.lower() in exts)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mesh_dir and "file" not in self.shapes:
            raise ConfigError(
                f"randomizers.object_shape.mesh_dir={self.mesh_dir} is used only by the shape 'file': add "
                "randomizers.object_shape.shapes=[file] (or e.g. [box,file] to mix them), or drop mesh_dir"
            )
        if "file" in self.shapes:
            if not self.mesh_dir or not Path(self.mesh_dir).expanduser().is_dir():
                raise ConfigError(
                    f"randomizers.object_shape.mesh_dir={self.mesh_dir!r}: give a directory of mesh files"
                )
            if not self.mesh_files():
                raise ConfigError(
                    f"randomizers.object_shape.mesh_dir={self.mesh_dir}: no .obj/.stl/.ply/.off/.glb files"
                )
            for f in self.mesh_files():
                objects.load_mesh(f)  # a broken file fails here, before any work is done
        choices = [s for s in self.shapes if s != "file"]
        bad = [s for s in choices if s not in objects.SIZES] + [c for c in self.colours if c not in OBJECT_COLOURS]
        if bad or not self.shapes or not self.colours:
            raise ConfigError(
                f"randomizers.object_shape: unknown or empty choices {bad}; shapes from {list(objects.SIZES)}, "
                f"colours from {list(OBJECT_COLOURS)}"
            )

    def __call__(self, scene: Scene, rng: np.random.Generator) -> tuple[Scene, dict]:
        draws: dict = {}
        for i in range(scene.task_objects):
            taken = [o.colour for o in scene.objects[:i]]
            colours = [c for c in self.colours if c not in taken] or list(self.colours)
            allowed = [s for s in self.shapes if not scene.shapes or s in scene.shapes]
            shapes = allowed or [s for s in scene.shapes if s != "file"]
            if scene.groups:  # sort: a class shares one colour (or one shape) that no other class has
                colours, shapes = self._of_class(scene, i, colours, shapes)
            scene, d = self._one(scene, i, colours, shapes, rng)
            draws.update(d if i == 0 else {f"obj{i}": d})
        return scene, draws

    def _of_class(self, scene: Scene, i: int, colours: list[str], shapes: list[str]) -> tuple[list[str], list[str]]:
        """The colours and shapes objects[i] may take in a sorting scene (Scene.groups, Scene.sort_by)."""
        before = list(zip(scene.objects[:i], scene.groups, strict=False))
        mine = [o for o, g in before if g == scene.groups[i]]
        others = [o for o, g in before if g != scene.groups[i]]
        if scene.sort_by == "colour":
            colours = [mine[0].colour] if mine else [c for c in self.colours if c not in {o.colour for o in others}]
        else:
            kinds = {o.family or o.shape for o in others}  # a cup is a mesh drawn from the "cup" family
            shapes = [mine[0].family or mine[0].shape] if mine else [s for s in shapes if s not in kinds]
        if not colours or not shapes:
            raise ConfigError(
                f"randomizers.object_shape: sorting by {scene.sort_by} needs a {scene.sort_by} per class; "
                f"give more {'colours' if not colours else 'shapes'}"
            )
        return colours, shapes

    def _one(
        self, scene: Scene, i: int, colours: list[str], shapes: list[str], rng: np.random.Generator
    ) -> tuple[Scene, dict]:
        old = scene.objects[i]
        shape = str(pick(rng, shapes))
        colour = str(pick(rng, colours))
        scale = uniform(rng, self.scale)
        draws: dict = {"shape": shape, "colour": colour, "scale": scale}
        if shape == "file":
            path = str(pick(rng, self.mesh_files()))
            new = objects.from_file(rng, path, old.name, colour, scale)
            draws["file"] = Path(path).name
        else:
            new = objects.sample(
                rng, old.name, shape, colour, scale, mass=old.mass, friction=old.friction, sizes=scene.sizes
            )
        scene = scene.with_object(
            i,
            shape=new.shape,
            size=new.size,
            colour=colour,
            rgba=new.rgba,
            mesh=new.mesh,
            parts=new.parts,
            family=new.family,
        )
        return scene, {**draws, "size": list(new.size)}
