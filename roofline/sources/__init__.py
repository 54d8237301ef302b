"""Model sources: where a model comes from (the zoo, a Python file or module, an ONNX file)
and how it becomes an op-view layer graph.
"""
