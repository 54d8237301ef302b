"""MobileNetV1 (Howard et al., 2017, arXiv:1704.04861) as the layer table of the paper.

Owns the V1 body table, its width-multiplier rule and the registered ``mobilenet_v1`` factory.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ClassifierHead, ConvBnAct

__all__ = ["MobileNetV1", "mobilenet_v1"]

# Paper Table 1, first row: Conv / s2, 3×3×3×32.
STEM = (3, 2, 32)  # (kernel, stride, output channels)

# Paper Table 1, the 13 "Conv dw / s → Conv 1×1 / s1" pairs: each row is a 3×3 depthwise conv
# at `stride` followed by a 1×1 pointwise conv to `out`, both with BN and ReLU6 (the ReLU6 of
# the released TF-slim definition; the paper writes ReLU).
#   (depthwise stride, pointwise output channels, repeats)
DEPTHWISE_SEPARABLE = (
    (1, 64, 1),
    (2, 128, 1),
    (1, 128, 1),
    (2, 256, 1),
    (1, 256, 1),
    (2, 512, 1),
    (1, 512, 5),  # "5×" in Table 1
    (2, 1024, 1),
    # Table 1 prints s2 here, but its own input/output sizes are 7×7 → 7×7: stride 1 (as in the
    # released TF-slim definition). With s1 the count gives the paper's 569M MACs at 224.
    (1, 1024, 1),
)

# Paper Table 1, last rows: Avg Pool 7×7 → FC 1024×1000 (with bias) → softmax (not a layer).

MIN_CHANNELS = 8


def scale_channels(channels: int, width: float) -> int:
    """Width multiplier α of paper Sec. 3.3: α·M channels, truncated to an integer and at
    least 8 (``max(int(c·α), 8)``, the ``depth`` rule of the released TF-slim definition with
    min_depth 8). Every V1 width is a multiple of 32, so widths 0.25/0.5/0.75 give exact
    integers and the rule reproduces the paper's Table 6 sizes exactly.
    """
    return max(int(channels * width), MIN_CHANNELS)


class DepthwiseSeparable(nn.Module):
    """One Table 1 pair: 3×3 depthwise conv + BN + ReLU6 → 1×1 conv + BN + ReLU6 (Fig. 3)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.dw = ConvBnAct(in_channels, in_channels, 3, stride, groups=in_channels, act=nn.ReLU6)
        self.pw = ConvBnAct(in_channels, out_channels, 1, act=nn.ReLU6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class MobileNetV1(nn.Module):
    """MobileNetV1: ``features`` (stem + 13 depthwise-separable blocks) and ``head``."""

    def __init__(self, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        kernel, stride, out = STEM
        channels = scale_channels(out, width)
        layers: list[nn.Module] = [ConvBnAct(3, channels, kernel, stride, act=nn.ReLU6)]
        for dw_stride, out, repeats in DEPTHWISE_SEPARABLE:
            for _ in range(repeats):
                out_channels = scale_channels(out, width)
                layers.append(DepthwiseSeparable(channels, out_channels, dw_stride))
                channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def mobilenet_v1(width: float = 1.0, num_classes: int = 1000) -> MobileNetV1:
    return MobileNetV1(width=width, num_classes=num_classes)
