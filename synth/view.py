"""`synth view`: an mp4 of one episode, cut from the dataset's videos or re-rendered from a replay."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from synth.errors import ConfigError
from synth.replay import episode_record, replay


def view(out: str, episode: int, camera: str | None = None, path: str | None = None) -> str:
    root = Path(out)
    if not (root / "meta" / "info.json").exists():
        raise ConfigError(f"out={out} is not a synth dataset (no meta/info.json)")
    info = json.loads((root / "meta" / "info.json").read_text())
    videos = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    dest = Path(path) if path else root / "views" / f"episode_{episode:06d}.mp4"
    dest.parent.mkdir(parents=True, exist_ok=True)
    fps = info["fps"]
    if videos and camera is None:
        from synth.dataset.video import read_frames

        row, _, _ = episode_record(root, episode)
        tiles = []
        for key in videos:
            f = root / info["video_path"].format(
                video_key=key, chunk_index=row[f"videos/{key}/chunk_index"], file_index=row[f"videos/{key}/file_index"]
            )
            tiles.append(read_frames(f, row[f"videos/{key}/from_timestamp"], row[f"videos/{key}/to_timestamp"], fps))
        frames = np.concatenate(tiles, axis=2)
    else:
        from synth.render import render

        rep = replay(root, episode, (256, 256))
        err = float(np.abs(rep.replayed_state - rep.recorded_state).max())
        print(
            f"replayed episode {episode} (attempt {rep.meta['attempt']}): max |state - recorded| = {err:.2e}",
            file=sys.stderr,
        )
        cam = camera or "front"
        frames = render(rep.model, rep.qpos, [cam], 256, 256)[cam]
    from synth.dataset.video import VideoWriter

    w = VideoWriter(dest, fps, frames.shape[1], frames.shape[2])
    w.write(frames)
    w.close()
    return str(dest)
