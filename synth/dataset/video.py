"""Camera streams as mp4 files, one continuous stream per file (PyAV).

Frame k of a file has pts = k in time base 1/fps, so its time is exactly k / fps [s]. Episodes are
appended one after another; an episode that starts at frame k0 and has T frames is addressed by
``from_timestamp = k0 / fps`` and ``to_timestamp = (k0 + T) / fps`` (LeRobot v3.0 episodes metadata).

Codecs: "h264" (libx264) and "av1" (libsvtav1, what lerobot itself writes), both yuv420p.

Identical frames encode to identical bytes in any process: libx264's mb-tree lookahead reads heap memory it
never wrote when a side is under 64 px or not a multiple of 16 (measured: 32, 48, 100, 72x136 varied from run
to run; 64 and 128 did not), so while an encoder is open glibc fills fresh heap blocks with a constant
(`M_PERTURB`), as a fresh process's zeroed memory would be.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.container import OutputContainer
from av.video.stream import VideoStream

ENCODERS = {"h264": "libx264", "av1": "libsvtav1"}
DEFAULT_CRF = {"h264": 23, "av1": 30}  # av1: lerobot's own default
PIX_FMT = "yuv420p"


_open = 0  # encoders open in this process


def _fill_fresh_heap(on: bool) -> None:
    """Count an encoder opened (`on`) or closed; the first open has glibc fill heap blocks with a constant from
    then on, the last close stops it (elsewhere than glibc: nothing)."""
    global _open
    _open += 1 if on else -1
    if _open == (1 if on else 0):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").mallopt(-6, 0x55 if on else 0)  # M_PERTURB
        except (OSError, AttributeError):
            pass


def frame_rate(fps: float) -> Fraction:
    """fps as an exact fraction (20 -> 20/1, 29.97 -> 2997/100)."""
    return Fraction(fps).limit_denominator(100_000)


def codec_options(codec: str, crf: int | None, gop: int, threads: int) -> dict[str, str]:
    """Encoder options: constant quality `crf`, a keyframe every `gop` frames, no B-frames."""
    if codec not in ENCODERS:
        raise ValueError(f"codec={codec!r}: choose one of {sorted(ENCODERS)}")
    crf = DEFAULT_CRF[codec] if crf is None else crf
    if codec == "h264":
        # bf=0: pts == dts, so no edit list shifts the first frame's time away from 0
        return {"crf": str(crf), "g": str(gop), "bf": "0", "threads": str(threads)}
    return {"crf": str(crf), "g": str(gop), "preset": "12", "svtav1-params": f"lp={threads}"}


class VideoWriter:
    """Encode RGB frames into one mp4 stream, written under a temporary name and renamed on close.

    path: final file name; fps: frames per second [Hz]; height, width: frame size [px] (even);
    codec: "h264" | "av1"; crf: quality (None: 23 for h264, 30 for av1); gop: keyframe interval [frames];
    threads: encoder threads (1 suits one writer per worker process).
    A process killed before `close` leaves only the hidden temporary file, never a truncated `path`.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float,
        height: int,
        width: int,
        codec: str = "h264",
        crf: int | None = None,
        gop: int = 2,
        threads: int = 1,
    ):
        if height % 2 or width % 2:
            raise ValueError(f"{height}x{width}: yuv420p needs an even height and width")
        self.path = Path(path)
        self.height, self.width = int(height), int(width)
        self.codec = codec
        self.frames = 0  # frames written so far == pts of the next frame
        self._tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rate = frame_rate(fps)
        if codec == "av1":
            os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints ~20 info lines per encoder otherwise
        options = codec_options(codec, crf, gop, threads)  # a bad codec is refused before the heap is touched
        _fill_fresh_heap(True)
        try:
            self._container: OutputContainer | None = av.open(str(self._tmp), "w", format="mp4")
            stream = cast(VideoStream, self._container.add_stream(ENCODERS[codec], rate=rate, options=options))
        except BaseException:
            _fill_fresh_heap(False)
            raise
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, PIX_FMT
        stream.time_base = 1 / rate
        stream.codec_context.time_base = 1 / rate
        self._stream = stream

    def write(self, frames: np.ndarray) -> None:
        """Append frames: (N, H, W, 3) uint8 RGB."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (self.height, self.width, 3) or frames.dtype != np.uint8:
            raise ValueError(
                f"frames {frames.shape} {frames.dtype}: expected (N, {self.height}, {self.width}, 3) uint8"
            )
        if self._container is None:
            raise ValueError(f"{self.path}: writer already closed")
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = self.frames
            frame.time_base = self._stream.codec_context.time_base
            self._container.mux(self._stream.encode(frame))
            self.frames += 1

    def close(self) -> None:
        """Flush the encoder, finish the file and move it to `path`."""
        if self._container is None:
            return
        self._container.mux(self._stream.encode(None))
        self._container.close()
        self._container = None
        _fill_fresh_heap(False)
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the file being written."""
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file is being discarded anyway
                pass
            self._container = None
            _fill_fresh_heap(False)
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_frames(path: str | Path, from_timestamp: float, to_timestamp: float, fps: float) -> np.ndarray:
    """Decode the frames with time in [from_timestamp, to_timestamp) [s]: (N, H, W, 3) uint8 RGB."""
    first, stop = round(from_timestamp * fps), round(to_timestamp * fps)
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        assert time_base is not None
        if first > 0:
            container.seek(int(from_timestamp / time_base), stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            k = round(frame.pts * time_base * fps) if frame.pts is not None else -1
            if k >= stop:
                break
            if k >= first:
                out.append(frame.to_ndarray(format="rgb24"))
        h, w = stream.codec_context.height, stream.codec_context.width
    return np.stack(out) if out else np.zeros((0, h, w, 3), np.uint8)
