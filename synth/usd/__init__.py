"""USD: `synth export-usd` (export.py) writes a compiled scene as a UsdPhysics stage (stage.py: prims), isaac.py replays
an exported plan in Isaac Sim."""
