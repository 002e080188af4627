"""The embodiment-aware prompt: the body, its control convention, rate and horizon, then the instruction.

Qwen-VLA describes the body in the prompt so that one policy serves many bodies; a change of control
frequency or prediction horizon is a change of prompt, not of weights.
"""

from __future__ import annotations


def describe(card: dict, horizon: int, control_hz: float | None = None) -> str:
    """The body part of a prompt, from an embodiment card (see synth.embodiment.Embodiment.card)."""
    hz = float(card.get("control_hz", 0.0) if control_hz is None else control_hz)
    action = card.get("action", {})
    units = sorted(set(action.get("units", [])))
    gripper = card.get("gripper", {})
    cams = card.get("cameras") or []
    parts = [
        f"robot: {card.get('robot', 'unknown')}",
        f"arm: {card.get('arm', 'arm')}",
        f"dof: {card.get('dof', len(action.get('names', [])) - 1)}",
        f"control: {action.get('convention', 'joint_pos').replace('_', ' ')}"
        + (f" in {', '.join(units)}" if units else ""),
        f"gripper: {gripper.get('kind', 'none')}",
        f"rate: {hz:g} hz",
        f"horizon: {horizon} steps ({horizon / hz:.2f} s)" if hz > 0 else f"horizon: {horizon} steps",
    ]
    if cams:
        parts.append(f"cameras: {', '.join(cams)}")
    return "; ".join(parts)


def build(card: dict, instruction: str, horizon: int, control_hz: float | None = None) -> str:
    """The full prompt: body description, then the task instruction."""
    return f"{describe(card, horizon, control_hz)}. task: {instruction.strip()}"
