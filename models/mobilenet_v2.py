"""MobileNetV2 (Sandler et al., 2018, arXiv:1801.04381) as the layer table of the paper.

Owns the V2 bottleneck table, its width-multiplier rules and the registered ``mobilenet_v2``.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ClassifierHead, ConvBnAct, InvertedResidual, make_divisible

__all__ = ["MobileNetV2", "mobilenet_v2"]

# Paper Table 2, first row: conv2d 3×3, c = 32, s = 2.
STEM_CHANNELS = 32

# Paper Table 2, the "bottleneck" rows: expansion t, output channels c, repeats n, stride s of
# the first repeat (the others use stride 1). Every bottleneck uses a 3×3 depthwise conv, ReLU6
# after the expansion and the depthwise, and a linear (no activation) projection.
#   (t, c, n, s)
BOTTLENECKS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)

# Paper Table 2, last rows: conv2d 1×1, c = 1280 → avgpool 7×7 → conv2d 1×1, k (a linear layer
# with bias on the pooled features).
LAST_CHANNELS = 1280

# Classifier dropout used in training by the reference implementations; identity in eval().
DROPOUT = 0.2


def scale_channels(channels: int, width: float) -> int:
    """Width multiplier rule of paper Sec. 6.1 as released (TF-slim/torchvision): every layer,
    stem and first (t = 1) bottleneck included, gets make_divisible(c · width, 8)."""
    return make_divisible(channels * width)


def last_channels(width: float) -> int:
    """Paper Sec. 6.1: "for multipliers less than one, we apply width multiplier to all layers
    except the very last convolutional layer": make_divisible(1280 · max(1, width), 8)."""
    return make_divisible(LAST_CHANNELS * max(1.0, width))


class MobileNetV2(nn.Module):
    """MobileNetV2: ``features`` (stem, 17 bottlenecks, 1×1 conv to 1280) and ``head``."""

    def __init__(self, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        channels = scale_channels(STEM_CHANNELS, width)
        layers: list[nn.Module] = [ConvBnAct(3, channels, 3, 2, act=nn.ReLU6)]
        for expansion, out, repeats, first_stride in BOTTLENECKS:
            out_channels = scale_channels(out, width)
            for i in range(repeats):
                layers.append(
                    InvertedResidual(
                        channels,
                        channels * expansion,
                        out_channels,
                        kernel_size=3,
                        stride=first_stride if i == 0 else 1,
                        act=nn.ReLU6,
                    )
                )
                channels = out_channels
        last = last_channels(width)
        layers.append(ConvBnAct(channels, last, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(last, num_classes, dropout=DROPOUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def mobilenet_v2(width: float = 1.0, num_classes: int = 1000) -> MobileNetV2:
    return MobileNetV2(width=width, num_classes=num_classes)
