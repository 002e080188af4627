"""synth/tabletop/placement.py: sample_free, which tests all its tries at once, gives the draws of plain rejection
sampling (one try at a time) and leaves the generator where that would."""

import math

import numpy as np

from synth.tabletop.placement import sample_free


def _one_by_one(rng, box, radius, taken, gap, tries):
    """Rejection sampling one try at a time: the reference."""
    x0, x1, y0, y1 = box
    for _ in range(tries):
        p = np.array([x0 + (x1 - x0) * rng.random(), y0 + (y1 - y0) * rng.random()])
        if all(np.linalg.norm(p - c) >= r + radius + gap for c, r in taken):
            return p
    return None


def _case(g: np.random.Generator):
    taken = [(g.uniform(-0.3, 0.7, 2), float(g.uniform(-0.05, 0.2))) for _ in range(int(g.integers(0, 8)))]
    box = (*sorted(g.uniform(0.2, 0.7, 2)), *sorted(g.uniform(-0.3, 0.3, 2)))
    return box, float(g.uniform(0.0, 0.15)), taken, float(g.choice([0.0, 0.02])), int(g.choice([1, 5, 200]))


def test_sample_free_draws_as_one_try_at_a_time():
    g = np.random.default_rng(0)
    found = missed = 0
    for _ in range(3000):
        box, radius, taken, gap, tries = _case(g)
        seed = int(g.integers(1 << 30))
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        want, got = _one_by_one(a, box, radius, taken, gap, tries), sample_free(b, box, radius, taken, gap, tries)
        assert (want is None) == (got is None)
        if want is not None:
            np.testing.assert_array_equal(got, want)
        assert a.random() == b.random()  # the generator left after the same draws
        found, missed = found + (want is not None), missed + (want is None)
    assert found > 300 and missed > 300  # both outcomes, after the first try and later


def test_sample_free_decides_a_distance_equal_to_the_need_as_the_norm_does():
    """A try at exactly the needed distance from a disc (within rounding): the tolerance band's exact decision."""
    for seed in range(200):
        rng = np.random.default_rng(seed)
        u = rng.random(2)
        box = (0.3, 0.7, -0.2, 0.2)
        p = np.array([0.3 + 0.4 * u[0], -0.2 + 0.4 * u[1]])
        c = np.array([0.5, 0.0])
        d = float(np.linalg.norm(p - c))
        for need in (d, math.nextafter(d, 0.0), math.nextafter(d, 1.0)):
            taken = [(c, need - 0.01)]
            a, b = np.random.default_rng(seed), np.random.default_rng(seed)
            want, got = _one_by_one(a, box, 0.01, taken, 0.0, 3), sample_free(b, box, 0.01, taken, 0.0, 3)
            assert (want is None) == (got is None), (seed, need)
            assert want is None or np.array_equal(want, got)
            assert a.random() == b.random()
