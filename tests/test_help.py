"""Every key of every command is described once; --help fits a screen; bad input is one line, exit 2, nothing
written."""

import ctypes.util
import dataclasses
import json
import os
import subprocess
import sys

import pytest

from synth.cli import COMMANDS, DatasetArgs, ExportArgs, MergeArgs, ViewArgs, main
from synth.config import PLUGIN_KEYS, GenerateConfig, Settings
from synth.keys import default_of, parse
from synth.vla.evaluate import EvalConfig
from synth.vla.train import TrainConfig, lr_at

CONFIGS = {
    "generate": GenerateConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "inspect": DatasetArgs,
    "view": ViewArgs,
    "export-usd": ExportArgs,
    "verify": DatasetArgs,
    "repair": DatasetArgs,
    "merge": MergeArgs,
}


@pytest.mark.parametrize("command", list(CONFIGS))
def test_every_key_has_a_one_line_description(command):
    for f in dataclasses.fields(CONFIGS[command]):
        text = f.metadata.get("help", "")
        assert text.strip() and "\n" not in text and len(text) <= 110, (command, f.name, text)


def test_every_generate_key_reaches_the_settings():
    """A key added to GenerateConfig (with its check) arrives in Settings under the same name."""
    assert {f.name for f in dataclasses.fields(GenerateConfig)} <= {f.name for f in dataclasses.fields(Settings)}


@pytest.mark.parametrize("command", list(CONFIGS))
def test_help_fits_a_screen_and_prints_each_default_once(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) <= 70, (command, len(lines))
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    start = lines.index("keys (key=value):") + 1
    section = lines[start : lines.index("", start)]
    for f in dataclasses.fields(CONFIGS[command]):
        if command == "generate" and f.name in PLUGIN_KEYS:  # under "plugins:", with the chosen defaults
            assert f"  {f.name}=" in out
            continue
        if dataclasses.is_dataclass(group := default_of(f)):  # a group of keys: one row per member
            for g in dataclasses.fields(group):
                assert sum(line.lstrip().startswith(f"{f.name}.{g.name}=") for line in section) == 1, (f.name, g.name)
            continue
        rows = [line for line in section if line.lstrip().startswith(f"{f.name}=")]
        assert len(rows) == 1 and rows[0].count("default") <= 1, (command, f.name, rows)  # shown once, as key=


def test_listings(capsys):
    assert main(["axes"]) == 0
    out = capsys.readouterr().out
    assert "in_distribution" in out and "lighting" in out and "dim, strongly tinted light" in out
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "task.levels=" in out and "task.by=" in out and "task.lift=" in out
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "axes " in out and "--help` lists its keys" in out and "pick_place" in out
    assert "axes" in COMMANDS


def test_one_parser_types_every_key():
    cfg = parse(TrainConfig, ["data=[a,b]", "weights=[0.7,0.3]", "steps=1e3", "vision=false", "keypoints=8"], "train")
    assert cfg.data == ("a", "b") and cfg.weights == (0.7, 0.3) and cfg.steps == 1000 and cfg.vision is False
    assert cfg.keypoints == 8 and cfg.locate_minutes == "auto"
    assert parse(TrainConfig, ["keypoints=auto", "data=d"], "train").data == ("d",)
    ev = parse(EvalConfig, ["axes=[lighting,camera]", "max_seconds=0.6"], "eval")
    assert ev.axes == ("lighting", "camera") and ev.max_seconds == 0.6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "worker=2"], "error: unknown key 'worker'; did you mean 'workers'?"),
        (["generate", "--n=5"], "error: write n=5, not --n=5"),
        (["generate", "task.lfit=0.1"], "unknown key 'task.lfit' of task=pick_place; did you mean 'task.lift'?"),
        (["generate", "task=stack", "task.levls=3"], "did you mean 'task.levels'?"),
        (["generate", "randomizers.lighting.intensty=[0,1]"], "did you mean 'randomizers.lighting.intensity'?"),
        (["train", "--steps=30"], "error: write steps=30, not --steps=30"),
        (["eval", "--policy=x"], "error: write policy=x, not --policy=x"),
        (["inspect", "--out=x"], "error: write out=x, not --out=x"),
        (["train", "data=d", "stepz=3"], "did you mean 'steps'?"),
        (["train", "data=d", "steps=abc"], "steps=abc: expected a whole number"),
        (["train", "data=d", "keypoints=many"], "expected a whole number or auto"),
        (["train", "data=d", "amp=fast"], "amp=fast: choose one of auto, on, off"),
        (["eval", "policy=p", "axes=[lightng]"], "did you mean 'lighting'?"),
        (["view", "out=d", "episode=-1"], "episode=-1: give a value >= 0"),
        (["view", "out=d", "episode=x"], "episode=x: expected a whole number"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_train_on_a_missing_dataset_writes_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", f"data={tmp_path / 'does/not/exist'}", f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert "not a dataset" in err and "run `synth generate` first" in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.skipif(ctypes.util.find_library("OSMesa") is not None, reason="libOSMesa is installed here")
def test_mujoco_gl_without_its_library_names_the_fix(tmp_path):
    env = {**os.environ, "MUJOCO_GL": "osmesa"}
    r = subprocess.run(
        [sys.executable, "-m", "synth.cli", "generate", "n=1", f"out={tmp_path / 'd'}"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "apt-get install libosmesa6" in r.stderr and "MUJOCO_GL=egl" in r.stderr
    assert not (tmp_path / "d").exists()


def test_short_runs_reach_the_peak_learning_rate():
    """warmup is at most a tenth of steps=: steps=30 reaches lr; the default run keeps its 200-step warm-up."""
    short = TrainConfig(steps=30)
    lrs = [lr_at(short, s) for s in range(30)]
    assert max(lrs) == pytest.approx(short.lr) and lrs[-1] >= short.lr / 10
    default = TrainConfig()
    assert lr_at(default, 198) < default.lr and lr_at(default, 199) == pytest.approx(default.lr)


def test_a_short_run_plots_every_point(tmp_path, monkeypatch):
    """Few log lines: the plot marks each point (a 2-point line is otherwise hard to read)."""
    import matplotlib.axes

    from synth.vla.report import plot_training

    recs = [{"step": 1, "loss": 1.0, "lr": 1e-4}, {"step": 2, "loss": 0.5, "lr": 2e-4}]
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    seen = []
    plot = matplotlib.axes.Axes.plot

    def spy(self, *a, **k):
        seen.append(k.get("marker"))
        return plot(self, *a, **k)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    assert plot_training(tmp_path).stat().st_size > 1000
    assert seen and all(m == "o" for m in seen)
