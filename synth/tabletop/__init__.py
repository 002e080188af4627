"""The tabletop world every task shares: its compiler into MuJoCo, object shapes, placement, cabinet, surfaces."""
