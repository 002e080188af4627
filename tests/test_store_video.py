"""Videos are bytes of the episodes alone: the same run with 1 or 2 workers, or twice, writes identical mp4 files.

48 px frames: libx264's lookahead reads heap memory it never wrote at such sizes (under 64 px, or a side not a
multiple of 16), so without synth.dataset.video's fix these files differed from run to run."""

from pathlib import Path

import pytest

from synth import cli

pytest.importorskip("synth.render")
KEYS = ["progress=false", "seed=5", "n=4", "shard=1", "cameras=[front]", "resolution=[48,48]"]


def videos(out: Path) -> dict[str, bytes]:
    return {str(f.relative_to(out)): f.read_bytes() for f in sorted((out / "videos").rglob("*.mp4"))}


def test_one_or_two_workers_write_byte_identical_videos(tmp_path):
    for w in (1, 2):
        assert cli.main(["generate", f"out={tmp_path / f'w{w}'}", *KEYS, f"workers={w}"]) == 0
    one, two = videos(tmp_path / "w1"), videos(tmp_path / "w2")
    assert len(one) == 4 and sorted(one) == sorted(two)
    assert [f for f in one if one[f] != two[f]] == [], "mp4 bytes differ"
