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
        named = list(range(scene.task_objects))  # stack and pick_place_multi name every block they move
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
