"""synth.scenes"""
