"""EfficientNet-Lite0..4 (tensorflow/tpu models/official/efficientnet/lite): EfficientNet-B0's
stages (Tan & Le 2019, arXiv:1905.11946, Table 1) with the "lite" changes.

Owns the B0 stage table, the Lite compound-scaling table and rules, and the five factories.

The Lite changes, as the tensorflow/tpu EfficientNet-Lite README lists them: squeeze-excite
removed, every swish replaced by ReLU6, and the stem (32) and head (1280) widths fixed while the
model is scaled; its builder (``efficientnet_lite_builder``, ``fix_head_stem``) also keeps the
repeats of the first and last stages at 1. Counted against timm's ``tf_efficientnet_lite0..4``
(the same definitions ported from that repository): equal parameters and MACs at every size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .layers import ClassifierHead, ConvBnAct, InvertedResidual, make_divisible

__all__ = [
    "EfficientNetLite",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "efficientnet_lite3",
    "efficientnet_lite4",
]

ACT = nn.ReLU6

# EfficientNet paper Table 1, stage 1: Conv3x3, 224² → 112², 32 channels (fixed in Lite).
STEM_CHANNELS = 32

# EfficientNet paper Table 1, stages 2–8 (EfficientNet-B0), in the table's column order:
#   (operator MBConv<t>, kernel k×k, output channels C_i, layers L_i, stride of the first layer)
# "MBConv<t>" is an inverted residual of expansion t; the squeeze-excite of B0 is removed in
# Lite. Input resolutions at 224: 112, 112, 56, 28, 14, 14, 7.
STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 16, 1, 1),  # MBConv1, k3×3 (fixed at 1 layer in Lite)
    (6, 3, 24, 2, 2),  # MBConv6, k3×3
    (6, 5, 40, 2, 2),  # MBConv6, k5×5
    (6, 3, 80, 3, 2),  # MBConv6, k3×3
    (6, 5, 112, 3, 1),  # MBConv6, k5×5
    (6, 5, 192, 4, 2),  # MBConv6, k5×5
    (6, 3, 320, 1, 1),  # MBConv6, k3×3 (fixed at 1 layer in Lite)
)

# EfficientNet paper Table 1, stage 9: Conv1x1 & Pooling & FC, 1280 channels (fixed in Lite).
HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class LiteScale:
    """One row of the Lite scaling table (tensorflow/tpu ``efficientnet_lite_builder.
    efficientnet_lite_params``): width and depth coefficients, input size, classifier dropout
    (identity in eval())."""

    width: float
    depth: float
    resolution: int
    dropout: float


SCALES: dict[str, LiteScale] = {
    "efficientnet_lite0": LiteScale(1.0, 1.0, 224, 0.2),
    "efficientnet_lite1": LiteScale(1.0, 1.1, 240, 0.2),
    "efficientnet_lite2": LiteScale(1.1, 1.2, 260, 0.3),
    "efficientnet_lite3": LiteScale(1.2, 1.4, 280, 0.3),
    "efficientnet_lite4": LiteScale(1.4, 1.8, 300, 0.3),
}


def scale_channels(channels: int, width: float) -> int:
    """``round_filters`` of the reference: make_divisible(c · width, 8)."""
    return make_divisible(channels * width)


def scale_repeats(repeats: int, depth: float, fixed: bool) -> int:
    """``round_repeats`` of the reference, ceil(L · depth), except in the first and last stage
    (``fixed``), whose single layer Lite keeps."""
    return repeats if fixed else int(math.ceil(depth * repeats))


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite: ``features`` (stem, MBConv stages, 1×1 conv to 1280) and ``head``.

    ``width`` multiplies the block widths on top of the variant's own width coefficient; the
    stem and head stay fixed, as in Lite.
    """

    def __init__(self, scale: LiteScale, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        channels = STEM_CHANNELS
        layers: list[nn.Module] = [ConvBnAct(3, channels, 3, 2, act=ACT)]
        last = len(STAGES) - 1
        for index, (expansion, kernel, out, repeats, first_stride) in enumerate(STAGES):
            out_channels = scale_channels(out, scale.width * width)
            for i in range(scale_repeats(repeats, scale.depth, index in (0, last))):
                layers.append(
                    InvertedResidual(
                        channels,
                        channels * expansion,
                        out_channels,
                        kernel,
                        first_stride if i == 0 else 1,
                        act=ACT,
                    )
                )
                channels = out_channels
        layers.append(ConvBnAct(channels, HEAD_CHANNELS, 1, act=ACT))
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(HEAD_CHANNELS, num_classes, dropout=scale.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def efficientnet_lite0(width: float = 1.0, num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(SCALES["efficientnet_lite0"], width, num_classes)


def efficientnet_lite1(width: float = 1.0, num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(SCALES["efficientnet_lite1"], width, num_classes)


def efficientnet_lite2(width: float = 1.0, num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(SCALES["efficientnet_lite2"], width, num_classes)


def efficientnet_lite3(width: float = 1.0, num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(SCALES["efficientnet_lite3"], width, num_classes)


def efficientnet_lite4(width: float = 1.0, num_classes: int = 1000) -> EfficientNetLite:
    return EfficientNetLite(SCALES["efficientnet_lite4"], width, num_classes)
