"""The kinematic mode's batched planner: a task's skill script for W attempts at once (planner.py), the robot and
world covered by spheres and boxes (capsules.py), segments checked by bisection (sweep.py, compiled: sweep_jit.py)."""
