"""synth.assets"""
