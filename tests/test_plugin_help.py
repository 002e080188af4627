"""Every parameter of every registered task and randomizer is described where it is declared, and `synth tasks` /
`synth randomizers` show them: the listing every key with its default, `<command> <name>` each key's description."""

import dataclasses
from dataclasses import dataclass

import pytest

from synth.cli import main
from synth.keys import default_of, help_of, key, show
from synth.registry import RANDOMIZERS, TASKS

PLUGINS = [("tasks", TASKS, n) for n in TASKS.names()] + [("randomizers", RANDOMIZERS, n) for n in RANDOMIZERS.names()]


def flat(text: str) -> str:
    """Text with its wrapping undone: every run of white space one space."""
    return " ".join(text.split())


@pytest.mark.parametrize(("command", "registry", "name"), PLUGINS, ids=[f"{c}.{n}" for c, _, n in PLUGINS])
def test_every_parameter_has_a_one_line_description(command, registry, name):
    cls = registry.get(name)
    text = getattr(cls, "description", "")
    assert text.strip() and "\n" not in text and len(text) <= 110, (name, text)
    for f in dataclasses.fields(cls):
        text = help_of(cls, f.name)
        assert text.strip() and "\n" not in text and len(text) <= 110, (name, f.name, text)


@pytest.mark.parametrize(("command", "registry", "name"), PLUGINS, ids=[f"{c}.{n}" for c, _, n in PLUGINS])
def test_the_detail_view_describes_every_key_within_80_columns(command, registry, name, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main([command, name]) == 0
    out = capsys.readouterr().out
    assert max(map(len, out.splitlines())) <= 80, max(out.splitlines(), key=len)
    typed = "task.<key>=value" if command == "tasks" else f"randomizers.{name}.<key>=value"
    assert typed in out
    cls = registry.get(name)
    lines = out.splitlines()
    for f in dataclasses.fields(cls):
        rows = [line for line in lines if line.startswith(f"  {f.name}=")]
        assert len(rows) == 1, (name, f.name)
        assert flat(help_of(cls, f.name)) in flat(out), (name, f.name)


@pytest.mark.parametrize(("command", "registry"), [("tasks", TASKS), ("randomizers", RANDOMIZERS)])
def test_the_listing_shows_every_plugin_and_key_within_80_columns(command, registry, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main([command]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80, max(lines, key=len)
    assert f"`synth {command} <name> ...`" in flat(out)
    lines = lines[: lines.index("")]  # the plugins; then the note on `<command> <name>`
    heads = [i for i, line in enumerate(lines) if line.startswith("  ") and not line.startswith("   ")]
    assert [lines[i].split()[0].rstrip(":") for i in heads] == registry.names()
    for i, end, name in zip(heads, [*heads[1:], len(lines)], registry.names(), strict=True):
        cls, block = registry.get(name), flat("\n".join(lines[i:end]))
        assert flat(cls.description) in block, name
        prefix = "task." if command == "tasks" else ""
        for f in dataclasses.fields(cls):
            assert f" {prefix}{f.name}={flat(show(default_of(f)))}".replace(", ", ",") in block.replace(", ", ","), (
                name,
                f.name,
            )


def test_an_unknown_name_is_one_line_with_the_closest(capsys):
    assert main(["randomizers", "lightng"]) == 2
    err = capsys.readouterr().err
    assert "unknown randomizer 'lightng'" in err and "did you mean 'lighting'?" in err and err.count("\n") == 1
    assert main(["tasks", "stak"]) == 2
    assert "did you mean 'stack'?" in capsys.readouterr().err


def test_a_field_declared_again_with_only_a_new_default_keeps_its_description():
    @dataclass(frozen=True)
    class Base:
        hover: float = key(0.1, "[m] above the grasp")
        lift: float = key(0.1, "[m] straight up")

    @dataclass(frozen=True)
    class Child(Base):
        hover: float = 0.2
        lift: float = key(0.3, "[m] both hands straight up")
        extra: int = 1

    assert help_of(Child, "hover") == "[m] above the grasp" and Child().hover == 0.2
    assert help_of(Child, "lift") == "[m] both hands straight up"
    assert help_of(Child, "extra") == ""  # undeclared: the walk above fails on such a field


def test_generate_help_points_to_the_plugin_keys(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["generate", "--help"]) == 0
    out = flat(capsys.readouterr().out)
    assert "`synth tasks <name>`" in out and "`synth randomizers <name>`" in out


def test_the_docs_randomizer_example_describes_its_keys(tmp_path):
    """The example of docs/randomizers.md, loaded as a plugin: `synth randomizers <name>` shows what it declares."""
    import re

    from test_docs import randomizer_example, synth  # sibling module; tests/ is on sys.path

    code = randomizer_example()
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "table_friction.py").write_text(code)
    run = synth(["randomizers", "table_friction"], tmp_path, str(tmp_path / "plugins"))
    assert run.returncode == 0, run.stderr[-2000:]
    declared = re.findall(r'description = "(.+)"', code) + re.findall(r'= key\(.*, "(.+)"\)', code)
    assert len(declared) == 2 and all(flat(d) in flat(run.stdout) for d in declared), (declared, run.stdout)
