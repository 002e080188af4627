"""Named colours: language can only name what the palette names."""

from __future__ import annotations

OBJECT_COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.12, 0.10),
    "green": (0.15, 0.65, 0.20),
    "blue": (0.12, 0.30, 0.85),
    "yellow": (0.95, 0.85, 0.10),
    "orange": (0.95, 0.50, 0.08),
    "purple": (0.55, 0.20, 0.75),
    "pink": (0.95, 0.45, 0.70),
    "cyan": (0.10, 0.80, 0.85),
    "white": (0.92, 0.92, 0.92),
    "black": (0.08, 0.08, 0.08),
    "brown": (0.45, 0.28, 0.12),
    "grey": (0.50, 0.50, 0.50),
}

TABLE_COLOURS: dict[str, tuple[float, float, float]] = {
    "light wood": (0.72, 0.58, 0.40),
    "dark wood": (0.40, 0.27, 0.16),
    "white": (0.88, 0.88, 0.86),
    "grey": (0.45, 0.46, 0.48),
    "black": (0.12, 0.12, 0.13),
    "beige": (0.83, 0.76, 0.62),
    # not drawn by default: kept for evaluation on unseen backgrounds
    "green felt": (0.16, 0.42, 0.22),
    "navy": (0.10, 0.14, 0.38),
    "brick red": (0.58, 0.20, 0.14),
}
DEFAULT_TABLE_COLOURS = ("light wood", "dark wood", "white", "grey", "black", "beige")
HELD_OUT_TABLE_COLOURS = ("green felt", "navy", "brick red")


def rgba(rgb: tuple[float, float, float], alpha: float = 1.0) -> tuple[float, float, float, float]:
    return (float(rgb[0]), float(rgb[1]), float(rgb[2]), alpha)
