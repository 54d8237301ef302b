"""Analyses over predictions: compare, Pareto frontiers, sweeps, the ridge-point sweep.

They make tables; the HTML is ``roofline.report``'s.
"""
