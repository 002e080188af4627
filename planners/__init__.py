"""synth.planners"""
