"""A randomizer added by dropping one file in randomizers/ appears in the registry, in Hydra and in
generation, with no other file edited. The file is README's own example."""

import re
from pathlib import Path

from synth.config import compose_config, settings
from synth.randomize import apply
from synth.registry import RANDOMIZERS, TASKS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_randomizer_is_found_and_configurable(drop_plugin):
    drop_plugin("table_friction", re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1))
    assert "table_friction" in RANDOMIZERS.names()
    s = settings(
        compose_config(["randomizers=[table_friction,object_pose]", "randomizers.table_friction.friction=[0.2,0.5]"])
    )
    r = s.randomizers[0]
    assert r.name == "table_friction" and r.friction == (0.2, 0.5)
    scene, draws = apply(list(s.randomizers), TASKS.build("pick_place").scene(), 0, 3)
    assert 0.2 <= draws["table_friction"]["friction"] <= 0.5
    assert scene.table.friction == draws["table_friction"]["friction"]
