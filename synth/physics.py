"""The physics settings a dataset is simulated with: step, integrator, constraint solver iterations and tolerance.

`physics.*` generate keys resolve to one `Physics`; synth.tabletop.compiler.build applies it to the MjModel's options
and meta/synth.json records it, so replay runs the same physics.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import mujoco

from synth.errors import ConfigError

TIMESTEP = 0.002  # [s] today's largest step: `timestep=auto` takes the largest at most this dividing the period
INTEGRATORS = {
    "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST,
    "implicit": mujoco.mjtIntegrator.mjINT_IMPLICIT,
    "euler": mujoco.mjtIntegrator.mjINT_EULER,
    "rk4": mujoco.mjtIntegrator.mjINT_RK4,
}
ITERATIONS = 100  # MuJoCo's default constraint solver iterations
TOLERANCE = 1e-8  # MuJoCo's default solver tolerance


def largest_step(control_hz: float, at_most: float = TIMESTEP) -> float:
    """The physics step [s]: the largest at most `at_most` [s] that divides one control period evenly."""
    return 1.0 / (control_hz * math.ceil(1.0 / (control_hz * at_most) - 1e-9))


@dataclass(frozen=True)
class Physics:
    """Resolved physics options: timestep [s] (a whole fraction of the control period), integrator name,
    constraint solver iterations and tolerance."""

    timestep: float
    integrator: str = "implicitfast"
    iterations: int = ITERATIONS
    tolerance: float = TOLERANCE

    def apply(self, opt) -> None:
        """Set a MjSpec's or MjModel's `option` (both have the same fields)."""
        opt.timestep = self.timestep
        opt.integrator = INTEGRATORS[self.integrator]
        opt.iterations = self.iterations
        opt.tolerance = self.tolerance

    def record(self) -> dict:
        """What meta/synth.json holds (timestep [s], and substeps are control period / timestep)."""
        return asdict(self)


def default(control_hz: float, at_most: float = TIMESTEP) -> Physics:
    """Physics with the largest step at most `at_most` [s] dividing the control period (2 ms at 20 Hz)."""
    return Physics(largest_step(control_hz, at_most))


def resolve(node: dict, control_hz: float, at_most: float = TIMESTEP) -> Physics:
    """Check the `physics.*` keys `node` and resolve them for `control_hz`; `at_most` [s] is the task's largest
    default step, used by timestep=auto. Raises ConfigError naming the fix."""
    ts = node.get("timestep", "auto")
    period = 1.0 / control_hz
    if ts == "auto":
        timestep = largest_step(control_hz, at_most)
    else:
        try:
            timestep = float(ts)
        except (TypeError, ValueError):
            raise ConfigError(f"physics.timestep={ts!r}: give seconds, e.g. 0.002, or physics.timestep=auto") from None
        k = period / timestep if timestep > 0 else 0.0
        if not (timestep > 0 and k >= 1 - 1e-9 and abs(k - round(k)) < 1e-6 * k):
            fits = ", ".join(f"{period / s:.6g}" for s in (10, 20, 25, 50) if period / s >= 5e-4)
            raise ConfigError(
                f"physics.timestep={ts} does not divide the {period:.6g} s control period (control_hz={control_hz:g}) "
                f"evenly; choose e.g. {fits}, or physics.timestep=auto"
            )
        timestep = 1.0 / (control_hz * round(k))  # as largest_step computes it: the period is a whole number of steps
    integrator = node.get("integrator", "implicitfast")
    if integrator not in INTEGRATORS:
        raise ConfigError(f"physics.integrator={integrator!r}: choose one of {', '.join(INTEGRATORS)}")
    it = node.get("iterations", ITERATIONS)
    if not isinstance(it, int) or isinstance(it, bool) or it < 1:
        raise ConfigError(f"physics.iterations={it!r}: give constraint solver iterations >= 1 (default {ITERATIONS})")
    tol = node.get("tolerance", TOLERANCE)
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 <= tol < 1:
        raise ConfigError(f"physics.tolerance={tol!r}: give a solver tolerance in [0, 1) (default {TOLERANCE:g})")
    return Physics(timestep, integrator, it, float(tol))


def recorded(synth_meta: dict) -> Physics:
    """The physics a dataset was written with: its meta/synth.json `physics` record, or for a dataset written
    before it was recorded, the rule of that time (largest step at most 2 ms, implicitfast, MuJoCo's solver)."""
    rec = synth_meta.get("physics")
    if rec:
        return Physics(float(rec["timestep"]), rec["integrator"], int(rec["iterations"]), float(rec["tolerance"]))
    return default(float(synth_meta["config"]["control_hz"]))
