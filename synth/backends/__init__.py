"""Physics backends. MuJoCo on the CPU is the reference every other backend is tested against."""
