import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def drop_plugin():
    """drop_plugin(name, code): write a randomizer file into randomizers/ as a user would; removed after."""
    import synth.randomizers
    from synth import registry

    added = []

    def drop(name: str, code: str) -> None:
        path = Path(synth.randomizers.__path__[0]) / f"zz_{name}.py"
        path.write_text(code)
        added.append((name, path))
        registry._loaded = False

    yield drop
    for name, path in added:
        path.unlink()
        registry.RANDOMIZERS.items.pop(name, None)
        shutil.rmtree(path.parent / "__pycache__", ignore_errors=True)
