"""synth.configs"""
