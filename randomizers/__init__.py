"""synth.randomizers"""
