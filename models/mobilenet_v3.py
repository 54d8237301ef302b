"""MobileNetV3-Large and -Small (Howard et al., 2019, arXiv:1905.02244) as the paper's tables,
and their "minimalistic" versions.

Owns the V3 specification tables, the V3 width-multiplier rules and the four factories.

The minimalistic models (``V3_LARGE_MINIMALISTIC`` / ``V3_SMALL_MINIMALISTIC`` of
tensorflow/models research/slim/nets/mobilenet/mobilenet_v3.py; slim README "Minimalistic
checkpoints") keep each table's expansion and output widths and strides but drop the
squeeze-excite, the hard-swish (ReLU everywhere, stem and head included) and the 5×5 kernels
(3×3 everywhere). Counted against timm's ``tf_mobilenetv3_{large,small}_minimal_100``: equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import ActFactory, ClassifierHead, ConvBnAct, InvertedResidual, make_divisible

__all__ = [
    "MobileNetV3",
    "mobilenet_v3_large",
    "mobilenet_v3_large_minimalistic",
    "mobilenet_v3_small",
    "mobilenet_v3_small_minimalistic",
]

RE, HS = nn.ReLU, nn.Hardswish  # the paper's NL column: "RE" ReLU, "HS" h-swish

# One "bneck" row of paper Tables 1–2, in the table's column order:
#   (kernel, exp size, #out, SE, NL, s)
Bneck = tuple[int, int, int, bool, ActFactory, int]

# Paper Table 1: MobileNetV3-Large (input 224²).
LARGE_BNECKS: tuple[Bneck, ...] = (
    (3, 16, 16, False, RE, 1),
    (3, 64, 24, False, RE, 2),
    (3, 72, 24, False, RE, 1),
    (5, 72, 40, True, RE, 2),
    (5, 120, 40, True, RE, 1),
    (5, 120, 40, True, RE, 1),
    (3, 240, 80, False, HS, 2),
    (3, 200, 80, False, HS, 1),
    (3, 184, 80, False, HS, 1),
    (3, 184, 80, False, HS, 1),
    (3, 480, 112, True, HS, 1),
    (3, 672, 112, True, HS, 1),
    (5, 672, 160, True, HS, 2),
    (5, 960, 160, True, HS, 1),
    (5, 960, 160, True, HS, 1),
)

# Paper Table 2: MobileNetV3-Small (input 224²).
SMALL_BNECKS: tuple[Bneck, ...] = (
    (3, 16, 16, True, RE, 2),
    (3, 72, 24, False, RE, 2),
    (3, 88, 24, False, RE, 1),
    (5, 96, 40, True, HS, 2),
    (5, 240, 40, True, HS, 1),
    (5, 240, 40, True, HS, 1),
    (5, 120, 48, True, HS, 1),
    (5, 144, 48, True, HS, 1),
    (5, 288, 96, True, HS, 2),
    (5, 576, 96, True, HS, 1),
    (5, 576, 96, True, HS, 1),
)


# slim V3_LARGE_MINIMALISTIC: Table 1 with k = 3, no SE and RE in every row.
LARGE_MINIMALISTIC_BNECKS: tuple[Bneck, ...] = (
    (3, 16, 16, False, RE, 1),
    (3, 64, 24, False, RE, 2),
    (3, 72, 24, False, RE, 1),
    (3, 72, 40, False, RE, 2),
    (3, 120, 40, False, RE, 1),
    (3, 120, 40, False, RE, 1),
    (3, 240, 80, False, RE, 2),
    (3, 200, 80, False, RE, 1),
    (3, 184, 80, False, RE, 1),
    (3, 184, 80, False, RE, 1),
    (3, 480, 112, False, RE, 1),
    (3, 672, 112, False, RE, 1),
    (3, 672, 160, False, RE, 2),
    (3, 960, 160, False, RE, 1),
    (3, 960, 160, False, RE, 1),
)

# slim V3_SMALL_MINIMALISTIC: Table 2 with k = 3, no SE and RE in every row.
SMALL_MINIMALISTIC_BNECKS: tuple[Bneck, ...] = (
    (3, 16, 16, False, RE, 2),
    (3, 72, 24, False, RE, 2),
    (3, 88, 24, False, RE, 1),
    (3, 96, 40, False, RE, 2),
    (3, 240, 40, False, RE, 1),
    (3, 240, 40, False, RE, 1),
    (3, 120, 48, False, RE, 1),
    (3, 144, 48, False, RE, 1),
    (3, 288, 96, False, RE, 2),
    (3, 576, 96, False, RE, 1),
    (3, 576, 96, False, RE, 1),
)


@dataclass(frozen=True)
class V3Spec:
    """The non-bneck rows of a V3 table: conv2d 3×3 stem (``act``, s2); bnecks; conv2d 1×1
    ``last_conv`` (BN, ``act``); pool; conv2d 1×1 NBN ``head`` (``act``); conv2d 1×1 NBN
    classifier. ``act`` is HS in the paper's tables, RE in the minimalistic models."""

    stem: int
    bnecks: tuple[Bneck, ...]
    last_conv: int
    head: int
    act: ActFactory = HS


LARGE = V3Spec(stem=16, bnecks=LARGE_BNECKS, last_conv=960, head=1280)
# Table 2 marks SE on the final conv2d 1×1 (576) row; the published 2,542,856 parameters
# (torchvision's count, exact in published_models.csv) are matched only without it: an SE there
# would add 576·144·2 + 144 + 576 = 166,608 parameters.
SMALL = V3Spec(stem=16, bnecks=SMALL_BNECKS, last_conv=576, head=1024)
LARGE_MINIMALISTIC = V3Spec(stem=16, bnecks=LARGE_MINIMALISTIC_BNECKS, last_conv=960, head=1280,
                            act=RE)
SMALL_MINIMALISTIC = V3Spec(stem=16, bnecks=SMALL_MINIMALISTIC_BNECKS, last_conv=576, head=1024,
                            act=RE)

# SE squeeze width = make_divisible(expanded channels / 4, 8) (paper Sec. 5.3: "we replace them
# all to fixed to be 1/4 of the number of channels in expansion layer"; rounded to 8 as in the
# released code — e.g. 72 / 4 = 18 → 24, which the exact parameter count of V3-Large requires).
SE_RATIO = 4

# Classifier dropout of the reference training recipes; identity in eval().
DROPOUT = 0.2


def scale_channels(channels: int, width: float) -> int:
    """Block outputs and the last 1×1 conv (960 / 576) become make_divisible(c · width, 8)."""
    return make_divisible(channels * width)


def expanded_channels(in_channels: int, ratio: float) -> int:
    """The tables give "exp size" at width 1. At other widths it is an expansion ratio of the
    block's input (exp size / nominal input, e.g. 184 / 80 = 2.3) applied to the already
    rounded input: make_divisible(C_in · ratio, 8). Scaling the exp sizes directly instead,
    make_divisible(exp · width, 8), gives V3-Large 0.75 140.6M MACs and V3-Small 0.75 39.5M,
    9.3 % and 10.3 % below the V3 paper's Table 3 (155M, 44M); the ratio rule gives 154.6M
    and 43.4M. Identical at width 1."""
    return make_divisible(in_channels * ratio)


def unthinned_channels(channels: int, width: float) -> int:
    """The stem (16) and the pooled 1×1 "NBN" conv (1280 Large, 1024 Small) are never made
    narrower than at width 1: make_divisible(c · max(1, width), 8), MobileNetV2's rule for its
    last layer (V2 paper Sec. 6.1). Evidence (published_models.csv): thinning the head puts
    V3-Large 0.75 at 3.44M parameters, 14 % below the published 3.99M; thinning the stem to 8
    at width 0.5 puts V3-Large 0.5 at 69.2M MACs, 6.0 % below the CSV's 73.7M, which the
    unthinned stem reproduces exactly. For 0.56 ≤ width < 1 the stem rounds to 16 either way,
    so the stem part of the rule only matters below width 0.56."""
    return make_divisible(channels * max(1.0, width))


class MobileNetV3(nn.Module):
    """MobileNetV3: ``features`` (stem, bnecks, last 1×1 conv) and ``head``."""

    def __init__(self, spec: V3Spec, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        channels = unthinned_channels(spec.stem, width)
        layers: list[nn.Module] = [ConvBnAct(3, channels, 3, 2, act=spec.act)]
        nominal = spec.stem
        for kernel, exp, out, se, act, stride in spec.bnecks:
            hidden = expanded_channels(channels, exp / nominal)
            nominal = out
            out_channels = scale_channels(out, width)
            layers.append(
                InvertedResidual(
                    channels,
                    hidden,
                    out_channels,
                    kernel,
                    stride,
                    act=act,
                    se_channels=make_divisible(hidden / SE_RATIO) if se else None,
                )
            )
            channels = out_channels
        last = scale_channels(spec.last_conv, width)
        layers.append(ConvBnAct(channels, last, 1, act=spec.act))
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(
            last,
            num_classes,
            hidden_channels=unthinned_channels(spec.head, width),
            act=spec.act,
            dropout=DROPOUT,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def mobilenet_v3_large(width: float = 1.0, num_classes: int = 1000) -> MobileNetV3:
    return MobileNetV3(LARGE, width=width, num_classes=num_classes)


def mobilenet_v3_small(width: float = 1.0, num_classes: int = 1000) -> MobileNetV3:
    return MobileNetV3(SMALL, width=width, num_classes=num_classes)


def mobilenet_v3_large_minimalistic(width: float = 1.0, num_classes: int = 1000) -> MobileNetV3:
    return MobileNetV3(LARGE_MINIMALISTIC, width=width, num_classes=num_classes)


def mobilenet_v3_small_minimalistic(width: float = 1.0, num_classes: int = 1000) -> MobileNetV3:
    return MobileNetV3(SMALL_MINIMALISTIC, width=width, num_classes=num_classes)
