"""synth: manufacture robot-learning data."""
