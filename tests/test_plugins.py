"""A randomizer added by dropping one file in randomizers/ appears in the registry, in Hydra and in
generation, with no other file edited. The file is the example of docs/randomizers.md."""

import re
from pathlib import Path

from synth.config import compose_config, settings
from synth.randomize import apply
from synth.registry import RANDOMIZERS, TASKS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "randomizers.md"


def test_docs_randomizer_is_found_and_configurable(drop_plugin):
    text = PAGE.read_text()
    example = re.search(r"```python\n(.*?)```", text[text.index("<!-- docs-example: table_friction.py") :], re.S)
    drop_plugin("table_friction", example.group(1))
    assert "table_friction" in RANDOMIZERS.names()
    s = settings(
        compose_config(["randomizers=[table_friction,object_pose]", "randomizers.table_friction.friction=[0.2,0.5]"])
    )
    r = s.randomizers[0]
    assert r.name == "table_friction" and r.friction == (0.2, 0.5)
    scene, draws = apply(list(s.randomizers), TASKS.build("pick_place").scene(), 0, 3)
    assert 0.2 <= draws["table_friction"]["friction"] <= 0.5
    assert scene.table.friction == draws["table_friction"]["friction"]


KINEMATIC_ONLY_PHYSICS = '''
from dataclasses import dataclass

from synth.randomize import PHYSICS, Randomizer
from synth.registry import randomizer


@randomizer("wobble", acts_on="execution", kinematic=False, evaluation=False)
@dataclass(frozen=True)
class Wobble(Randomizer):
    """Declared for the physics only and left out of evaluation."""

    stage = PHYSICS
    amount: tuple[float, float] = (0.0, 0.1)

    def __call__(self, scene, rng):
        return scene, {"amount": float(rng.uniform(*self.amount))}
'''


def test_every_randomizer_declares_what_it_acts_on_and_where_it_is_allowed():
    from synth.randomize import Randomizer
    from synth.registry import ACTS_ON

    for n in RANDOMIZERS.names():
        cls = RANDOMIZERS.get(n)
        assert issubclass(cls, Randomizer) and "acts_on" in vars(cls), n  # on its own class, by the decorator
        assert cls.acts_on in ACTS_ON and isinstance(cls.kinematic, bool) and isinstance(cls.evaluation, bool), n
    acts = {RANDOMIZERS.get(n).acts_on for n in RANDOMIZERS.names()}
    assert acts == set(ACTS_ON), acts  # the shipped randomizers use every kind


def test_an_undeclared_or_misdeclared_randomizer_is_refused_at_registration():
    import pytest

    from synth.errors import ConfigError
    from synth.registry import randomizer

    for kw in ({}, {"acts_on": "weather", "kinematic": True, "evaluation": True}, {"acts_on": "scene"}):
        with pytest.raises(ConfigError, match=r"randomizer 'nameless' declares .*acts_on=<one of \['scene'"):
            randomizer("nameless", **kw)
    from dataclasses import dataclass

    from synth.randomize import Randomizer

    with pytest.raises(ConfigError, match=r"parameters \['kinematic'\]: the names of its declaration"):
        randomizer("nameless", acts_on="scene", kinematic=True, evaluation=True)(
            dataclass(frozen=True)(type("Nameless", (Randomizer,), {"__annotations__": {"kinematic": bool}}))
        )
    assert "nameless" not in RANDOMIZERS.names()


def test_mode_kinematic_and_evaluation_follow_the_declaration(drop_plugin):
    """A plugin declared kinematic=False is refused by mode=kinematic (and taken by mode=physics); one declared
    evaluation=False is left out of an evaluation's randomizers; `synth randomizers` shows both."""
    import pytest

    from synth.errors import ConfigError
    from synth.listings import randomizers as list_randomizers
    from synth.vla.axes import AXES, demonstration_only, randomizer_nodes

    drop_plugin("wobble", KINEMATIC_ONLY_PHYSICS)
    over = ["randomizers=[object_shape,object_pose,target,wobble]"]
    with pytest.raises(ConfigError, match=r"mode=kinematic does not apply randomizers \['wobble'\]"):
        settings(compose_config([*over, "mode=kinematic"]))
    assert [r.name for r in settings(compose_config(over)).randomizers][-1] == "wobble"
    kinematic = RANDOMIZERS.where(kinematic=True)
    assert "wobble" not in kinematic and settings(
        compose_config([f"randomizers=[{','.join(kinematic)}]", "mode=kinematic"])
    )
    assert "wobble" in demonstration_only()
    assert set(randomizer_nodes({"object_pose": {}, "wobble": {}}, AXES["in_distribution"])) == {"object_pose"}
    lines = list_randomizers().splitlines()
    line = lines[[k for k, x in enumerate(lines) if x.split()[:1] == ["wobble"]][0] + 1]
    assert line.strip() == "(acts on: execution; mode=kinematic: no; synth eval: no)"
