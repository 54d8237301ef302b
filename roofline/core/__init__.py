"""The pure core: the layer graph, fusion, hardware profiles and the engine.

Nothing here imports torch or plotly (tested): it is fast to import and easy to test.
"""
