"""The model zoo of roofline (installed as ``roofline.zoo``): MobileNet V1–V4, EfficientNet-Lite,
MnasNet and MobilenetEdgeTPU in plain PyTorch.

Owns the registry re-exports. Importing it imports no network and no torch: the catalogue
(``zoo.toml``) and the published figures (``published_models.csv``) are data, and a network's
module is imported only when :func:`create_model` builds it. No weights, no downloads.
"""

from .registry import (
    EXACTNESS_TOLERANCES,
    ModelInfo,
    PublishedFigure,
    create_model,
    get_model_info,
    list_models,
    published_figures,
)

__all__ = [
    "EXACTNESS_TOLERANCES",
    "ModelInfo",
    "PublishedFigure",
    "create_model",
    "get_model_info",
    "list_models",
    "published_figures",
]
