"""LeRobot v3.0 statistics: per-episode stats of arrays and images, their aggregate over a dataset, and their
forms in meta/stats.json and in the episodes table's `stats/<feature>/<stat>` columns.

Mirrors lerobot 0.4.4 (`lerobot/datasets/compute_stats.py`) without importing it. Statistics are dicts
``{feature: {stat: ndarray}}`` with stats ``min max mean std count q01 q10 q50 q90 q99``; ``count`` has shape
(1,), vector stats (D,), scalar-feature stats (1,), image stats (3, 1, 1) in [0, 1]. Shapes: T frames of one
episode, D dimensions of a vector feature; images are (T, H, W, 3) uint8 RGB.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_KEYS = ("min", "max", "mean", "std", "count", *QUANTILES)
HIST_BINS = 5000  # lerobot's RunningQuantileStats histogram resolution


def _quantiles(x: np.ndarray, w: np.ndarray, lo: np.ndarray, hi: np.ndarray, n: float) -> dict[str, np.ndarray]:
    """lerobot's histogram quantiles: x (N, D) values with weights w (N, D), HIST_BINS bins on [lo, hi] per dim."""
    d = x.shape[1]
    width = (hi - lo) / HIST_BINS
    scale = np.divide(HIST_BINS, hi - lo, out=np.zeros_like(width), where=hi > lo)
    idx = np.clip(((x - lo) * scale).astype(np.int64), 0, HIST_BINS - 1)
    hist = np.bincount((idx + np.arange(d) * HIST_BINS).ravel(), w.ravel(), minlength=d * HIST_BINS)
    cum = hist.reshape(d, HIST_BINS).cumsum(axis=1)
    rows = np.arange(d)
    out = {}
    for key, q in QUANTILES.items():
        target = q * n
        i = (cum < target).sum(axis=1)  # np.searchsorted(cum[d], target) per dimension
        j = np.clip(i, 1, HIST_BINS - 1)
        before = cum[rows, j - 1]
        in_bin = cum[rows, j] - before
        edge = lo + j * width
        frac = np.divide(target - before, in_bin, out=np.zeros_like(before), where=in_bin > 0)
        val = edge + frac * width
        out[key] = np.where(i == 0, lo, np.where(i >= HIST_BINS, hi, val))
    return out


def _weighted_stats(x: np.ndarray, w: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """Stats per column of x (N, D) float64 with weights w (N, D) (zero weight: value absent)."""
    n = w.sum(axis=0)
    present = w > 0
    mn = np.where(present, x, np.inf).min(axis=0)
    mx = np.where(present, x, -np.inf).max(axis=0)
    mean = (w * x).sum(axis=0) / n
    std = np.sqrt(np.maximum((w * (x - mean) ** 2).sum(axis=0) / n, 0.0))
    out = {"min": mn, "max": mx, "mean": mean, "std": std, "count": np.array([count], np.int64)}
    if n[0] < 2:  # lerobot: too few samples for quantiles, use the mean
        out.update({k: mean.copy() for k in QUANTILES})
    else:
        out.update(_quantiles(x, w, mn - 1e-10, mx + 1e-10, float(n[0])))
    return out


def episodes_array_stats(values: np.ndarray, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """array_stats of every episode at once: values (N, ...) are E episodes' frames concatenated, lengths (E,).

    Returns {stat: (E, D)} (count (E, 1)), equal to array_stats per episode (to float rounding): the same
    min/max/mean/std and the same histogram quantiles, found from each episode's sorted bin indices
    instead of a HIST_BINS-long cumulative histogram per episode.

    The numbers are those of one (E, max length, D) array padded with zeros, to the bit: a vector feature
    (D > 1) is summed frame after frame, so it is done in groups of similar length with less padding (a sum
    that padding turned from -0.0 to 0.0 is turned likewise); a scalar one is summed pairwise, so in one.
    """
    x = np.asarray(values).reshape(len(values), -1).astype(np.float64)
    lengths = np.asarray(lengths, np.int64)
    E, L = len(lengths), int(lengths.max())
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    if x.shape[1] == 1 or E < 64:
        return _padded_stats(x, starts, lengths, lengths < L)
    order = np.argsort(lengths, kind="stable")
    out: dict[str, np.ndarray] = {}
    for part in np.array_split(order, 4):
        st = _padded_stats(x, starts[part], lengths[part], lengths[part] < L)
        for k, v in st.items():
            out.setdefault(k, np.empty((E, v.shape[1]), v.dtype))[part] = v
    return out


def _padded_stats(x: np.ndarray, starts: np.ndarray, lengths: np.ndarray, padded: np.ndarray) -> dict[str, np.ndarray]:
    """episodes_array_stats of the episodes at `starts` (E,) with `lengths` (E,) in x (N, D), summed over an
    (E, max length, D) array; padded (E,): whether the episode was padded in the caller's array."""
    E, L, D = len(lengths), int(lengths.max()), x.shape[1]
    t = np.arange(L)
    valid = (t[None, :] < lengths[:, None])[..., None]  # (E, L, 1)
    X = x[starts[:, None] + np.minimum(t[None, :], lengths[:, None] - 1)]  # (E, L, D), padded with its last frame
    n = lengths[:, None].astype(np.float64)
    zero = np.where(padded, 0.0, -0.0)[:, None]  # + 0.0 is what a zero of padding adds to a sum
    mn, mx = X.min(1), X.max(1)
    mean = (np.where(valid, X, 0.0).sum(1) + zero) / n
    std = np.sqrt(np.maximum((np.where(valid, (X - mean[:, None]) ** 2, 0.0).sum(1) + zero) / n, 0.0))
    out = {"min": mn, "max": mx, "mean": mean, "std": std, "count": lengths[:, None].copy()}
    lo, hi = mn - 1e-10, mx + 1e-10
    width = (hi - lo) / HIST_BINS
    scale = np.divide(HIST_BINS, hi - lo, out=np.zeros_like(width), where=hi > lo)
    idx = np.clip(((X - lo[:, None]) * scale[:, None]).astype(np.int64), 0, HIST_BINS - 1).astype(np.int16)
    s = np.sort(np.where(valid, idx, np.int16(2 * HIST_BINS)), axis=1)  # padding sorts last, counted nowhere
    # (int16: bin numbers fit, and numpy sorts 2-byte integers 3x faster than 8-byte ones)
    # counts of bins below / up to j per (episode, dim): binary searches in the rows laid end to end
    span = 2 * HIST_BINS + 1
    row = np.arange(E * D, dtype=np.int64).reshape(E, D)
    keys = (s.transpose(0, 2, 1) + (row * span)[..., None]).reshape(-1)  # int64
    for key, q in QUANTILES.items():
        target = q * n  # (E, 1)
        rank = np.clip(np.ceil(target).astype(np.int64), 1, L)  # the first bin whose cumulative count >= target
        i = np.take_along_axis(s, np.broadcast_to(rank - 1, (E, D))[:, None], axis=1)[:, 0]
        j = np.clip(i, 1, HIST_BINS - 1)
        below = np.searchsorted(keys, row * span + j, side="left") - row * L
        before = below.astype(np.float64)
        in_bin = (np.searchsorted(keys, row * span + j, side="right") - row * L) - before
        frac = np.divide(target - before, in_bin, out=np.zeros_like(before), where=in_bin > 0)
        val = lo + j * width + frac * width
        out[key] = np.where(n < 2, mean, np.where(i == 0, lo, np.where(i >= HIST_BINS, hi, val)))
    return out


def sample_indices(length: int) -> np.ndarray:
    """Frames lerobot samples for image stats: 100 (or all if fewer) up to 10,000 as length**0.75."""
    num = max(min(100, length), min(int(length**0.75), 10_000))
    return np.round(np.linspace(0, length - 1, num)).astype(np.int64)


def image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats of frames (T, H, W, 3) uint8, on lerobot's frame subsample, scaled to [0, 1]: (3, 1, 1).

    Unlike lerobot 0.4.4 (whose uint8 `batch**2` overflows, giving std 0) std is computed exactly.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames {frames.shape} {frames.dtype}: expected (T, H, W, 3) uint8")
    idx = sample_indices(len(frames))
    sub = frames[idx]
    height, width = frames.shape[1:3]
    if max(height, width) >= 300:  # lerobot's auto_downsample_height_width
        step = int(width / 150) if width > height else int(height / 150)
        sub = sub[:, ::step, ::step]
    counts = np.stack([np.bincount(sub[..., c].ravel(), minlength=256) for c in range(3)], axis=1)
    values = np.repeat(np.arange(256, dtype=np.float64)[:, None], 3, axis=1)
    s = _weighted_stats(values, counts.astype(np.float64), len(idx))
    return {k: v if k == "count" else (v / 255.0).reshape(3, 1, 1) for k, v in s.items()}


def array_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """Stats of one per-frame feature (T,) or (T, D) over time: shape (1,) or (D,)."""
    a = np.asarray(values)
    x = a.reshape(len(a), -1).astype(np.float64)
    return _weighted_stats(x, np.ones_like(x), len(a))


def episode_stats(arrays: dict[str, np.ndarray], images: dict[str, np.ndarray] | None = None) -> dict:
    """Per-episode stats as lerobot's compute_episode_stats: arrays (T, ...) per feature, images (T, H, W, 3) uint8.

    Non-numeric arrays (strings) are skipped, as lerobot does.
    """
    out = {key: array_stats(a) for key, a in arrays.items() if np.asarray(a).dtype.kind in "biuf"}
    out.update({key: image_stats(f) for key, f in (images or {}).items()})
    return out


class StatsAccumulator:
    """Dataset stats from per-episode stats, as lerobot's aggregate_stats, in O(features) memory.

    mean: count-weighted; std: pooled (Chan's parallel variance); min/max: global; quantiles: count-weighted
    means of the per-episode quantiles; count: total. Episodes are folded in one after another (the numbers do
    not depend on how they are batched); every feature's numbers sit side by side in one flat vector per
    stat, so one episode costs a dozen vector operations whatever the number of features.
    """

    def __init__(self) -> None:
        self._layout: list[tuple[str, tuple[int, ...]]] = []  # (feature, shape of its stats) in order
        self._acc: dict[str, np.ndarray] = {}  # stat -> flat vector over every feature's entries
        self._has: dict[str, np.ndarray] = {}  # quantile -> (features,) whether every episode had it
        self.episodes = 0

    def add(self, stats: dict[str, dict[str, np.ndarray]]) -> None:
        """Fold in one episode's stats."""
        self.add_batch({k: {st: np.asarray(v)[None] for st, v in s.items()} for k, s in stats.items()})

    def add_batch(self, stats: dict[str, dict[str, np.ndarray]]) -> None:
        """Fold in E episodes' stats, {feature: {stat: (E, *shape)}}, in order; every episode has the same features."""
        layout = [(k, np.shape(s["mean"])[1:]) for k, s in stats.items()]
        if not layout:
            return
        E = len(stats[layout[0][0]]["mean"])
        if not self._layout:
            self._layout = layout
        elif layout != self._layout:
            raise ValueError(f"episode stats have features {layout}, the dataset's are {self._layout}")

        def flat(stat: str) -> np.ndarray:
            return np.concatenate([np.asarray(stats[k][stat], np.float64).reshape(E, -1) for k, _ in layout], axis=1)

        width = [int(np.prod(shape)) for _, shape in layout]
        count = np.concatenate(
            [
                np.repeat(np.asarray(stats[k]["count"]).reshape(E, -1)[:, :1].astype(np.float64), w, 1)
                for (k, _), w in zip(layout, width, strict=True)
            ],
            axis=1,
        )
        mean, mn, mx = flat("mean"), flat("min"), flat("max")
        var = flat("std") ** 2
        has = {q: np.array([q in stats[k] for k, _ in layout]) for q in QUANTILES}
        qs = {}
        for q in QUANTILES:
            if has[q].any():
                vals = [
                    np.asarray(stats[k][q], np.float64).reshape(E, -1) if q in stats[k] else np.zeros((E, w))
                    for (k, _), w in zip(layout, width, strict=True)
                ]
                qs[q] = np.concatenate(vals, axis=1) * count
        start = 0
        if not self._acc:
            c = count[0]
            self._acc = {"n": c, "min": mn[0], "max": mx[0], "mean": mean[0], "m2": var[0] * c}
            self._acc.update({q: v[0] for q, v in qs.items()})
            self._has = has
            start = 1
        a = self._acc
        for e in range(start, E):
            c, n = count[e], a["n"]
            total = n + c
            delta = mean[e] - a["mean"]
            a["mean"] = a["mean"] + delta * (c / total)
            a["m2"] = a["m2"] + var[e] * c + delta**2 * (n * c / total)
            a["min"] = np.minimum(a["min"], mn[e])
            a["max"] = np.maximum(a["max"], mx[e])
            for q, v in qs.items():
                if q in a:
                    a[q] = a[q] + v[e]
            a["n"] = total
        self._has = {q: self._has.get(q, np.zeros(len(layout), bool)) & has[q] for q in QUANTILES}
        self.episodes += E

    def result(self) -> dict[str, dict[str, np.ndarray]]:
        """The aggregated stats so far."""
        out = {}
        start = 0
        a = self._acc
        for i, (key, shape) in enumerate(self._layout):
            sl = slice(start, start + int(np.prod(shape)))
            start = sl.stop
            n = a["n"][sl]
            out[key] = {
                "min": a["min"][sl].reshape(shape),
                "max": a["max"][sl].reshape(shape),
                "mean": a["mean"][sl].reshape(shape),
                "std": np.sqrt(np.maximum(a["m2"][sl] / n, 0.0)).reshape(shape),
                "count": np.array([round(float(n[0]))], np.int64),
                **{q: (a[q][sl] / n).reshape(shape) for q in QUANTILES if q in a and self._has[q][i]},
            }
        return out


def tolist(v) -> list:
    a = np.asarray(v)
    return a.astype(np.int64).tolist() if a.dtype.kind in "iub" else a.astype(np.float64).tolist()


def stats_to_json(stats: dict) -> dict:
    """meta/stats.json: {feature: {stat: nested lists}}, count as integers."""
    return {key: {k: tolist(v) for k, v in s.items()} for key, s in stats.items()}


def flatten_stats(stats: dict) -> dict[str, list]:
    """Episode-row columns `stats/<feature>/<stat>` -> nested lists."""
    return {f"stats/{key}/{k}": tolist(v) for key, s in stats.items() for k, v in s.items()}


def stats_from_row(row: dict) -> dict[str, dict[str, np.ndarray]]:
    """Inverse of flatten_stats on one episodes-table row (e.g. from `Table.to_pylist()`)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for col, value in row.items():
        if col.startswith("stats/") and value is not None:
            key, stat = col[len("stats/") :].rsplit("/", 1)
            out.setdefault(key, {})[stat] = np.asarray(value)
    return out


def nested(v: np.ndarray) -> pa.Array:
    """(E, *shape) stats -> list<...list<double>> per episode (int64 for counts), as episodes_table writes them."""
    a = np.ascontiguousarray(v, np.int64 if v.dtype.kind in "iub" else np.float64)
    out: pa.Array = pa.array(a.reshape(-1))
    for size in reversed(a.shape[1:]):
        out = pa.ListArray.from_arrays(pa.array(np.arange(0, len(out) + 1, size, dtype=np.int32)), out)
    return out
