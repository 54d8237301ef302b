"""The model zoo of roofline (installed as ``roofline.zoo``): MobileNet V1–V4 in plain PyTorch.

Owns the registry re-exports; importing it registers every model. No weights, no downloads.
"""

from . import mobilenet_v1, mobilenet_v2, mobilenet_v3, mobilenet_v4  # noqa: F401  (register)
from .layers import make_divisible
from .registry import (
    EXACTNESS_TOLERANCES,
    ModelInfo,
    PublishedFigure,
    create_model,
    get_model_info,
    list_models,
    published_figures,
    register_model,
)

__all__ = [
    "EXACTNESS_TOLERANCES",
    "ModelInfo",
    "PublishedFigure",
    "create_model",
    "get_model_info",
    "list_models",
    "make_divisible",
    "published_figures",
    "register_model",
]
