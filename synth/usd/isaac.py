"""Isaac Sim runner (`synth export-usd ... backend=isaac`): replays an exported plan on its USD stage.

UNTESTED: written from Isaac Sim 6.0's public Python API (isaacsim.core.experimental, SimulationManager), never
run: Isaac Sim 6 needs Python 3.12 and an RTX GPU, and synth's machines have Python 3.11 and no GPU. What is
tested is what needs no Isaac Sim: `schedule` (the physics-rate targets) and the one-line error without it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from synth.errors import ConfigError
from synth.execute import controls


def require_isaac() -> None:
    """A one-line ConfigError unless `isaacsim` can be imported."""
    if importlib.util.find_spec("isaacsim") is None:
        raise ConfigError(
            "backend=isaac needs Isaac Sim 6 (pip install isaacsim), which needs Python 3.12 and an RTX GPU; "
            "export here without backend= and replay the stage and its .plan.json on such a machine"
        )


def schedule(plan: dict) -> np.ndarray:
    """(N, J) joint targets [rad | m] for each physics step, N = (T + settle periods) * substeps: first-order
    hold over each control period, as synth.execute gives MuJoCo, then the last target held while settling."""
    targets = np.asarray(plan["targets"], float)
    held = np.concatenate([targets, np.repeat(targets[-1:], plan["settle_periods"], 0)])
    return controls(held[None], np.asarray(plan["start"], float)[None], plan["substeps"], np.ones(held.shape[1]))[0]


def replay(plan_path: Path, headless: bool = True) -> dict:
    """Open the plan's stage in Isaac Sim, run the plan on PhysX (CPU), and compare where the free bodies end
    with where MuJoCo left them. Returns {"objects_end": {path: pose}, "position_error_m": {path: metres}}."""
    require_isaac()
    plan = json.loads(Path(plan_path).read_text())
    stage_path = Path(plan_path).with_name(plan["stage"])
    from isaacsim import SimulationApp  # must come before any other Isaac Sim import

    app = SimulationApp({"headless": headless})
    try:
        import isaacsim.core.experimental.utils.stage as stage_utils
        import omni.timeline
        from isaacsim.core.experimental.prims import Articulation, RigidPrim
        from isaacsim.core.simulation_manager import SimulationManager

        ok, _ = stage_utils.open_stage(str(stage_path))
        if not ok:
            raise ConfigError(f"Isaac Sim could not open {stage_path}")
        SimulationManager.setup_simulation(dt=plan["physics_dt"], device="cpu")
        robot = Articulation(plan["articulation"])
        paths = list(plan["objects_start"])
        objects = RigidPrim(paths)
        omni.timeline.get_timeline_interface().play()
        app.update()
        dofs = [robot.dof_names.index(p.rsplit("/", 1)[1]) for p in plan["joints"]]  # tensor API: rad and m
        robot.set_dof_positions(np.asarray(plan["initial_q"], np.float32)[None], dof_indices=dofs)
        robot.set_dof_velocities(np.zeros((1, len(dofs)), np.float32), dof_indices=dofs)
        for target in schedule(plan).astype(np.float32):
            robot.set_dof_position_targets(target[None], dof_indices=dofs)
            SimulationManager.step(steps=1)
        pos, quat = objects.get_world_poses()
        end = np.concatenate([pos.numpy(), quat.numpy()], 1)  # (n, 7): x, y, z [m], qw, qx, qy, qz
        ref = np.asarray([plan["mujoco"]["objects_end"][p] for p in paths])
        omni.timeline.get_timeline_interface().stop()
        return {
            "objects_end": {p: e.tolist() for p, e in zip(paths, end, strict=True)},
            "position_error_m": {
                p: float(np.linalg.norm(e[:3] - r[:3])) for p, e, r in zip(paths, end, ref, strict=True)
            },
            "mujoco_outcome": plan["mujoco"]["outcome"],
        }
    finally:
        app.close()
