"""`pip install .` (not only editable) ships every module, config and asset under `synth.*`."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIRS = {
    "synth": "synth",
    "scenes": "synth/scenes",
    "planners": "synth/planners",
    "randomizers": "synth/randomizers",
    "configs": "synth/configs",
    "assets": "synth/assets",
}


@pytest.mark.slow
def test_wheel_holds_every_module_config_and_asset(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0 and "No module named" in r.stderr:
        pytest.skip("setuptools is not installed in this environment")
    assert r.returncode == 0, r.stderr
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    expected = []
    for src, dst in DIRS.items():
        for f in (ROOT / src).rglob("*"):
            if f.suffix in (".py", ".yaml") and "__pycache__" not in f.parts:
                expected.append(f"{dst}/{f.relative_to(ROOT / src).as_posix()}")
    missing = [e for e in expected if e not in names]
    assert not missing, missing
    assert not any(n.startswith(("planners/", "scenes/", "randomizers/")) for n in names), "no bare top-level packages"
