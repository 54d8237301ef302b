"""The ONNX front end: the reader (an ``.onnx`` file → LayerGraph), the ONNX op table, and
ONNX files as a model source.

    source.py   OnnxSource: label, default input, fingerprint (no onnx import until read)
    reader.py   read_onnx: binding dynamic dimensions, the walk from nodes to layers
    ops.py      the op table: kinds, MAC formulas, which inputs are data
    shapes.py   shape inference, helped where onnx's data propagation stops
    layout.py   PyTorch's view rules (which reshapes copy)
    idioms.py   the exporter's multi-node forms of one PyTorch op
    qdq.py      which Quantize/DequantizeLinear nodes ONNX Runtime fuses away
    nodes.py    the static facts about a loaded graph the others share

Importing this package does not import onnx (a few seconds on some machines): the reader is
loaded when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .source import OnnxSource

__all__ = ["OnnxSource", "read_onnx", "onnx_fingerprint", "onnx_input_specs", "module_path"]

_LAZY = {"read_onnx", "onnx_fingerprint", "onnx_input_specs", "module_path"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.reader"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
