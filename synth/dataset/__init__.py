"""Dataset I/O: LeRobot v3.0 on disk."""
