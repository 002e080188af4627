import re

import numpy as np
import pytest

from synth.language import matches, refer
from synth.randomize import apply, stream
from synth.registry import RANDOMIZERS, TASKS
from synth.types import Obj, Scene


@pytest.mark.parametrize("name", TASKS.names())
def test_templates_are_many_and_split(name):
    t = TASKS.get(name)
    assert len(t.templates) + len(t.held_out_templates) >= 20
    assert len(t.held_out_templates) >= 4
    assert not set(t.templates) & set(t.held_out_templates)


def _template_regex(template):
    parts = re.split(r"\{\w+\}", template.replace(" {rel}", "{rel}"))
    return "^" + "(.+?)".join(re.escape(p) for p in parts) + "$"


@pytest.mark.parametrize("name", TASKS.names())
def test_instructions_name_the_right_object_and_never_use_held_out_paraphrases(name):
    task = TASKS.build(name)
    rs = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names()]
    held = [_template_regex(t) for t in task.held_out_templates]
    train = [_template_regex(t) for t in task.templates]
    for i in range(60):
        scene, _ = apply(rs, task.scene(), 0, i)
        text = task.instruction(scene, stream(0, i, "instruction"))
        assert any(re.match(r, text) for r in train), text
        assert not any(re.match(r, text) for r in held), text
        # stack and pick_place_multi name every block they move; sort names classes (test_sort_names_its_classes)
        named = [] if scene.groups else list(range(scene.task_objects))
        for k in named:
            phrase = refer(scene, k)
            assert phrase in text
            assert matches(scene, phrase) == [k], (text, [(o.colour, o.shape) for o in scene.objects])
        if scene.drawer is not None:  # the one drawer, by its own colour if any
            said = re.search(r"(\w+) drawer", text)
            assert said and said.group(1) in (scene.drawer.colour, "the", "open", "a"), text
        held_text = task.instruction(scene, stream(0, i, "instruction"), held_out=True)
        assert any(re.match(r, held_text) for r in held), held_text


def test_refer_disambiguates_identical_colour_and_shape():
    a = Obj("obj0", "box", (0.02, 0.02, 0.02), "red", xy=(0.5, 0.2))
    b = Obj("obj1", "box", (0.02, 0.02, 0.02), "red", xy=(0.5, -0.2))
    scene = Scene(objects=(a, b))
    assert refer(scene, 0) == "red cube on the left" and refer(scene, 1) == "red cube on the right"
    big = Obj("obj1", "box", (0.03, 0.03, 0.03), "red", xy=(0.5, -0.2))
    assert refer(Scene(objects=(a, big)), 1).startswith("large red")
    assert np.all([matches(scene, refer(scene, i)) == [0, 1] for i in range(2)])  # colour+noun alone is ambiguous


def _named_regex(template):
    """The template as a regex with one named group per placeholder (the first of each name; repeats match it)."""
    out, seen = "^", set()
    for part in re.split(r"(\{\w+\})", template):
        name = part[1:-1] if re.fullmatch(r"\{\w+\}", part) else None
        if name is None:
            out += re.escape(part)
        elif name in seen:
            out += f"(?P={name})"
        else:
            seen.add(name)
            out += f"(?P<{name}>.+?)"
    return out + "$"


@pytest.mark.parametrize(("by", "count"), [("colour", 4), ("shape", 4), ("colour", 3), ("shape", 3)])
def test_sort_names_its_classes(by, count):
    """Read back from each sort instruction: each class phrase picks out, among every active object on the table
    (clutter included), exactly that class's objects, by their colour or by their shape's noun, and the region
    named with it is that class's region; the rule named is the task's."""
    from synth.scenes.pick_place import target_phrase
    from synth.tabletop.objects import NOUNS, noun

    task = TASKS.build("sort", {"by": by, "count": count})
    rs = [RANDOMIZERS.build(n) for n in RANDOMIZERS.names()]
    regexes = [_named_regex(t) for t in task.templates]
    singular = {"cubes": "cube", "blocks": "block", "cylinders": "cylinder", "balls": "ball", "capsules": "capsule"}
    for i in range(40):
        scene, _ = apply(rs, task.scene(), 0, i)
        text = task.instruction(scene, stream(0, i, "instruction"))
        m = next(mm for mm in (re.match(r, text) for r in regexes) if mm)
        parts = m.groupdict()
        assert parts.get("rule", by) == by, text
        said = [(parts["a"], parts["ra"]), (parts.get("b") or parts["bb"], parts["rb"])]
        if "b" in parts and "bb" in parts:
            said.append((parts["bb"], parts["rb"]))
        active = [k for k, o in enumerate(scene.objects) if o.active]
        classes = set()
        for phrase, region in said:
            *adj, word = phrase.split()
            if by == "colour":
                assert len(adj) == 1 and word in ("objects", "object", "ones", "one"), text
                picked = {k for k in active if scene.objects[k].colour == adj[0]}
            else:
                assert not adj, text
                kind = singular.get(word, word)
                picked = {k for k in active if kind in (noun(scene.objects[k]), NOUNS[scene.objects[k].shape])}
            (g,) = {scene.groups[k] for k in picked}  # the phrase picks objects of one class only ...
            assert picked == {k for k in range(count) if scene.groups[k] == g}, (text, picked)  # ... all of it
            assert region == target_phrase(scene.all_targets[g]), text
            classes.add(g)
        assert classes == {0, 1}, text
        assert target_phrase(scene.all_targets[0]) != target_phrase(scene.all_targets[1])
