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
