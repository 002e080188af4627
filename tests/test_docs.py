"""The manual holds: its randomizer example runs as an out-of-tree plugin, README stays short, and every relative
link in README.md and docs/ points to a file that exists."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- docs-example: table_friction.py"
# Pages that other parts of the work write; the lead removes each entry once its page is merged.


def randomizer_example() -> str:
    """The python block that follows the marker in docs/randomizers.md."""
    text = (ROOT / "docs" / "randomizers.md").read_text()
    assert text.count(MARKER) == 1, "docs/randomizers.md must mark its example exactly once"
    block = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert block, "no ```python block after the marker"
    return block.group(1)


def synth(args: list[str], cwd: Path, plugins: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SYNTH_PLUGINS": plugins, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run(
        [sys.executable, "-m", "synth.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_randomizer_example_runs_as_a_plugin_and_its_draws_reach_the_dataset(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "table_friction.py").write_text(randomizer_example())
    args = ["generate", "n=3", "workers=1", "progress=false", f"out={tmp_path / 'ds'}"]
    args += ["randomizers=[table_friction,object_pose]", "randomizers.table_friction.friction=[0.2,0.5]"]
    run = synth(args, tmp_path, str(plugins))
    assert run.returncode == 0, run.stderr[-2000:]
    rows = pq.read_table(next((tmp_path / "ds" / "meta" / "episodes").rglob("*.parquet"))).to_pylist()
    assert len(rows) == 3
    draws = [json.loads(r["synth/meta"])["draws"] for r in rows]
    assert all(set(d) == {"table_friction", "object_pose"} for d in draws)
    frictions = [d["table_friction"]["friction"] for d in draws]
    assert all(0.2 <= f <= 0.5 for f in frictions) and len(set(frictions)) == 3, frictions


def test_a_plugin_folder_that_is_missing_or_shadows_a_module_is_one_line_and_writes_nothing(tmp_path):
    run = synth(["generate", "n=1", f"out={tmp_path / 'a'}"], tmp_path, str(tmp_path / "nowhere"))
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0, run.stderr
    assert run.stderr.startswith("error: SYNTH_PLUGINS") and not (tmp_path / "a").exists()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "json.py").write_text("raise RuntimeError('never imported')\n")
    run = synth(["generate", "n=1", f"out={tmp_path / 'b'}"], tmp_path, str(tmp_path / "plugins"))
    assert run.returncode == 2 and "rename the file" in run.stderr and not (tmp_path / "b").exists(), run.stderr


def test_readme_is_at_most_250_lines():
    n = len((ROOT / "README.md").read_text().splitlines())
    assert n <= 250, f"README.md has {n} lines; move detail into docs/"


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    heads = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def test_every_relative_link_points_to_an_existing_file_and_heading():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # links in code blocks are not links
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            path = (page.parent / file).resolve() if file else page
            if not path.exists() or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken
    assert len(pages) >= 10  # README plus the manual's pages
