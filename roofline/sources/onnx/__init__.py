"""The ONNX front end: the reader (``.onnx`` file → LayerGraph) and the ONNX op table."""

from .reader import module_path, onnx_fingerprint, onnx_input_specs, read_onnx

__all__ = ["read_onnx", "onnx_fingerprint", "onnx_input_specs", "module_path"]
