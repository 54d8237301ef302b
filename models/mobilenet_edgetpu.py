"""MobilenetEdgeTPU (Gupta & Akin; released with TF-slim in 2019, described in "Accelerator-aware
Neural Network Design using AutoML") and MobilenetEdgeTPU-V2 (tensorflow/models official/
projects/edgetpu/vision) as their block tables.

Owns the V1 table, the V2 block pattern and per-variant widths, the width rule and the
``mobilenet_edgetpu`` and ``mobilenet_edgetpu_v2_{xs,s,m,l}`` factories.

Sources and checks:

* V1: ``V3_EDGETPU`` of tensorflow/models research/slim/nets/mobilenet/mobilenet_v3.py, as
  copied row for row into the Model Garden's ``MNV3EdgeTPU_BLOCK_SPECS`` (official/vision/
  modeling/backbones/mobilenet.py, tf-models-official 2.20.0, whose comment names the slim
  file as its origin). Counted against timm's ``mobilenet_edgetpu_100``: equal parameters and
  MACs at 224 (4,091,432; 990,669,184; the slim README prints 990M MACs, 4.0M parameters)
  and at width 0.75 (timm's generator at channel multiplier 0.75: 624,486,304 MACs; README
  624M). Widths above 1 (the 1.25, 1.5 and 1.75 of the Pixel 6 rows of the EdgeTPU vision
  README) follow the Model Garden's width rule below; we have no published size to check
  them against, so published_models.csv has no rows for them.
* V2: the block pattern and the widths of timm's ``mobilenet_edgetpu_v2_{xs,s,m,l}``, whose
  docstring says they follow official/projects/edgetpu/vision at tensorflow/models commit
  d2427a56. That project is not in the tf-models-official wheel, so the V2 tables could be
  checked against timm only, not against the TensorFlow source. ``_tiny`` is left out: timm
  has no Tiny and we have no other readable definition of it.

Conventions of these definitions (Model Garden ``InvertedBottleneckBlock``): ReLU everywhere;
an expansion of 1 builds no expansion conv, so the first block (expansion 1, no depthwise) is a
lone 1×1 linear projection; "fused" blocks replace the 1×1 expansion + depthwise by one k×k
full conv at the block's stride; every projection is linear; residual when stride 1, C_in =
C_out and the row allows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import (
    ClassifierHead,
    ConvBnAct,
    FusedInvertedBottleneck,
    InvertedResidual,
    make_divisible,
)

__all__ = [
    "EdgeTPUSpec",
    "MobilenetEdgeTPU",
    "mobilenet_edgetpu",
    "mobilenet_edgetpu_v2_l",
    "mobilenet_edgetpu_v2_m",
    "mobilenet_edgetpu_v2_s",
    "mobilenet_edgetpu_v2_xs",
]

ACT = nn.ReLU

# One block, in the column order of MNV3EdgeTPU_BLOCK_SPECS:
#   (kernel, stride, filters, expand ratio, residual, depthwise, group size)
# depthwise False = fused (k×k full-conv expansion); group size > 0 = group-conv fused IBN (V2).
Block = tuple[int, int, int, float, bool, bool, int]

# V3_EDGETPU / MNV3EdgeTPU_BLOCK_SPECS, the rows between the stem (convbn 3×3, s2, 32) and the
# last convbn 1×1 to 1280. Input resolutions at 224: 112 (rows 1–5), 56, 28, 14, 7.
V1_BLOCKS: tuple[Block, ...] = (
    (3, 1, 16, 1.0, True, False, 0),  # expand 1, no depthwise: a lone 1×1 projection
    (3, 2, 32, 8.0, True, False, 0),  # fused
    (3, 1, 32, 4.0, True, False, 0),
    (3, 1, 32, 4.0, True, False, 0),
    (3, 1, 32, 4.0, True, False, 0),
    (3, 2, 48, 8.0, True, False, 0),  # fused
    (3, 1, 48, 4.0, True, False, 0),
    (3, 1, 48, 4.0, True, False, 0),
    (3, 1, 48, 4.0, True, False, 0),
    (3, 2, 96, 8.0, True, True, 0),  # inverted bottleneck (depthwise) from here on
    (3, 1, 96, 4.0, True, True, 0),
    (3, 1, 96, 4.0, True, True, 0),
    (3, 1, 96, 4.0, True, True, 0),
    (3, 1, 96, 8.0, False, True, 0),  # use_residual False
    (3, 1, 96, 4.0, True, True, 0),
    (3, 1, 96, 4.0, True, True, 0),
    (3, 1, 96, 4.0, True, True, 0),
    (5, 2, 160, 8.0, True, True, 0),
    (5, 1, 160, 4.0, True, True, 0),
    (5, 1, 160, 4.0, True, True, 0),
    (5, 1, 160, 4.0, True, True, 0),
    (3, 1, 192, 8.0, True, True, 0),
)


def v2_blocks(c: tuple[int, ...], group_size: int) -> tuple[Block, ...]:
    """The MobilenetEdgeTPU-V2 pattern (timm ``_gen_mobilenet_edgetpu``, V2 branch): seven
    stages of widths ``c``; stages 1–3 fused, some of them group-conv fused IBNs; stages 3–6
    inverted bottlenecks with 3×3 depthwise."""
    g = group_size
    return (
        (1, 1, c[0], 1.0, True, False, 0),  # stage 0 (112²): a lone 1×1 projection
        (3, 2, c[1], 8.0, True, False, 0),  # stage 1 (112²): fused
        (3, 1, c[1], 4.0, True, False, g),  # group-conv fused
        (3, 2, c[2], 8.0, True, False, 0),  # stage 2 (56²): fused
        (3, 1, c[2], 4.0, True, False, g),
        (3, 1, c[2], 4.0, True, False, 0),
        (3, 1, c[2], 4.0, True, False, g),
        (3, 2, c[3], 8.0, True, False, 0),  # stage 3 (28²): fused, then 3 IBN
        (3, 1, c[3], 4.0, True, True, 0),
        (3, 1, c[3], 4.0, True, True, 0),
        (3, 1, c[3], 4.0, True, True, 0),
        (3, 1, c[4], 8.0, True, True, 0),  # stage 4 (14²)
        (3, 1, c[4], 4.0, True, True, 0),
        (3, 1, c[4], 4.0, True, True, 0),
        (3, 1, c[4], 4.0, True, True, 0),
        (3, 2, c[5], 8.0, True, True, 0),  # stage 5 (14² → 7²)
        (3, 1, c[5], 4.0, True, True, 0),
        (3, 1, c[5], 4.0, True, True, 0),
        (3, 1, c[5], 4.0, True, True, 0),
        (3, 1, c[6], 8.0, True, True, 0),  # stage 6 (7²)
    )


@dataclass(frozen=True)
class EdgeTPUSpec:
    """Stem conv (kernel, channels; stride 2), blocks, last 1×1 conv width before pooling."""

    stem_kernel: int
    stem: int
    blocks: tuple[Block, ...]
    last_conv: int


V1 = EdgeTPUSpec(stem_kernel=3, stem=32, blocks=V1_BLOCKS, last_conv=1280)
# timm mobilenet_edgetpu_v2_*: stem, stage widths, group size, last conv.
V2_XS = EdgeTPUSpec(3, 32, v2_blocks((16, 32, 48, 96, 144, 160, 192), 64), 1280)
V2_S = EdgeTPUSpec(5, 64, v2_blocks((24, 48, 64, 128, 160, 192, 256), 64), 1280)
V2_M = EdgeTPUSpec(5, 64, v2_blocks((32, 64, 80, 160, 192, 240, 320), 64), 1344)
V2_L = EdgeTPUSpec(7, 64, v2_blocks((32, 64, 96, 192, 240, 256, 384), 128), 1408)

DROPOUT = 0.2  # classifier dropout of the reference recipes; identity in eval()


def scale_channels(channels: int, width: float) -> int:
    """Every conv, the stem included, gets make_divisible(c · width, 8) (the Model Garden's
    ``round_filters`` with divisor 8, min depth 8)."""
    return make_divisible(channels * width)


def last_channels(channels: int, width: float) -> int:
    """The last 1×1 conv keeps its width below width 1 (the Model Garden's
    ``finegrain_classification_mode``, on by default) and scales above it:
    make_divisible(c · max(1, width), 8)."""
    return make_divisible(channels * max(1.0, width))


def fused_group_size(in_channels: int, hidden_channels: int, group_size: int) -> int:
    """The group size of a group-conv fused IBN. At the published widths the reference's
    ``hidden // group_size`` groups divide both widths and this returns ``group_size``; at other
    widths it returns the smallest channels-per-group ≥ group_size that makes whole groups of
    both (a full conv if none does)."""
    if not group_size:
        return 0
    for groups in range(max(1, hidden_channels // group_size), 0, -1):
        if hidden_channels % groups == 0 and in_channels % groups == 0:
            return hidden_channels // groups
    return 0  # pragma: no cover - groups = 1 always divides


class MobilenetEdgeTPU(nn.Module):
    """MobilenetEdgeTPU (V1 or V2): ``features`` (stem, blocks, last 1×1 conv) and ``head``."""

    def __init__(self, spec: EdgeTPUSpec, width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        channels = scale_channels(spec.stem, width)
        layers: list[nn.Module] = [ConvBnAct(3, channels, spec.stem_kernel, 2, act=ACT)]
        for kernel, stride, filters, ratio, residual, depthwise, group in spec.blocks:
            out = scale_channels(filters, width)
            hidden = make_divisible(channels * ratio)
            block: nn.Module
            if ratio == 1 and not depthwise:
                block = ConvBnAct(channels, out, 1)  # no expansion, no depthwise
            elif depthwise:
                block = InvertedResidual(channels, hidden, out, kernel, stride, act=ACT,
                                         residual=residual)
            else:
                block = FusedInvertedBottleneck(
                    channels, hidden, out, kernel, stride, act=ACT,
                    group_size=fused_group_size(channels, hidden, group),
                )
            layers.append(block)
            channels = out
        last = last_channels(spec.last_conv, width)
        layers.append(ConvBnAct(channels, last, 1, act=ACT))
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(last, num_classes, dropout=DROPOUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def mobilenet_edgetpu(width: float = 1.0, num_classes: int = 1000) -> MobilenetEdgeTPU:
    return MobilenetEdgeTPU(V1, width=width, num_classes=num_classes)


def mobilenet_edgetpu_v2_xs(width: float = 1.0, num_classes: int = 1000) -> MobilenetEdgeTPU:
    return MobilenetEdgeTPU(V2_XS, width=width, num_classes=num_classes)


def mobilenet_edgetpu_v2_s(width: float = 1.0, num_classes: int = 1000) -> MobilenetEdgeTPU:
    return MobilenetEdgeTPU(V2_S, width=width, num_classes=num_classes)


def mobilenet_edgetpu_v2_m(width: float = 1.0, num_classes: int = 1000) -> MobilenetEdgeTPU:
    return MobilenetEdgeTPU(V2_M, width=width, num_classes=num_classes)


def mobilenet_edgetpu_v2_l(width: float = 1.0, num_classes: int = 1000) -> MobilenetEdgeTPU:
    return MobilenetEdgeTPU(V2_L, width=width, num_classes=num_classes)
