"""roofline: hardware-aware latency modelling and roofline simulation for vision models.

    model ─▶ trace ─▶ LayerGraph ─▶ fuse ─▶ predict(+ HardwareProfile) ─▶ Prediction
                                                    └▶ compare / pareto / sweep / report

MACs are multiply-accumulates throughout (1 MAC = 2 FLOPs). The public API is listed in
``__all__``; torch is imported only by the functions that build or trace a model.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # models and tracing (import torch when called)
    "create_model",
    "list_models",
    "trace",
    "register_op_rule",
    "fuse",
    "LayerGraph",
    "Layer",
    "OpKind",
    "UnknownOpWarning",
    # hardware and prediction (no torch)
    "load_hardware",
    "list_hardware",
    "HardwareProfile",
    "predict",
    "Prediction",
    # errors
    "RooflineError",
]

_LAZY = {
    "create_model": ("roofline.zoo", "create_model"),
    "list_models": ("roofline.zoo", "list_models"),
    "trace": ("roofline.sources.pytorch.tracer", "trace"),
    "register_op_rule": ("roofline.sources.pytorch.ops", "register_op_rule"),
    "UnknownOpWarning": ("roofline.core.graph", "UnknownOpWarning"),
    "fuse": ("roofline.core.fuse", "fuse"),
    "LayerGraph": ("roofline.core.graph", "LayerGraph"),
    "Layer": ("roofline.core.graph", "Layer"),
    "OpKind": ("roofline.core.graph", "OpKind"),
    "load_hardware": ("roofline.core.hardware", "load_hardware"),
    "list_hardware": ("roofline.core.hardware", "list_hardware"),
    "HardwareProfile": ("roofline.core.hardware", "HardwareProfile"),
    "predict": ("roofline.core.engine", "predict"),
    "Prediction": ("roofline.core.engine", "Prediction"),
    "RooflineError": ("roofline.errors", "RooflineError"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'roofline' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
