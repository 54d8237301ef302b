"""MnasNet (Tan et al., 2019, arXiv:1807.11626): MnasNet-A1 and the TF-Lite-hosted MnasNet-B1.

Owns the A1 and B1 layer tables, the depth-multiplier rule and the ``mnasnet_a1`` and
``mnasnet`` factories.

* ``mnasnet_a1``: the paper's MnasNet-A1 (CVPR version, Figure 7(a)), with squeeze-excite in
  three stages; the "Mnasnet-A1" checkpoints of tensorflow/tpu models/official/mnasnet (depth
  multipliers 0.35, 0.5, 0.75, 1.0, 1.4; README table). Counted against timm's
  ``semnasnet_*`` (timm's port of tensorflow/tpu ``mnasnet_a1``): equal at every published
  size.
* ``mnasnet``: the network behind TF-Lite's hosted "Mnasnet_<dm>_<res>" models (depth
  multipliers 0.5, 0.75, 1.0, 1.3). We take it to be MnasNet-B1 — tensorflow/tpu's
  ``mnasnet_b1``, the searched network without squeeze-excite (the model of the paper's first
  arXiv version, whose abstract gives 74.0 % top-1 at 76 ms on a Pixel phone; SE came with
  A1 in the later version) — not A1. What supports this: the hosted set's depth multipliers
  (0.5, 0.75, 1.0, 1.3) are not those of the A1 checkpoints (0.35, 0.5, 0.75, 1.0, 1.4), and
  its Pixel 1 latencies differ from the A1 README's at equal width and resolution (93 against
  78 ms at 1.0/224; public_latency.csv). What we could not do: read the hosted .tflite graphs
  (no download here), so this identification is an inference, not a count of the hosted
  file. Counted against timm's ``mnasnet_100`` (= ``mnasnet_b1``, timm's
  port of tensorflow/tpu ``mnasnet_b1``; torchvision's ``mnasnet1_0`` is the same network,
  4,383,312 parameters).

Every MBConv has ReLU after its expansion and depthwise convs and a linear projection; the
squeeze-excite (A1) squeezes to int(0.25 · block input channels) with ReLU, gates with a
sigmoid, and both its 1×1 convs have biases (as in timm's port; the exact counts confirm the
squeeze width).
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import ClassifierHead, ConvBnAct, InvertedResidual, make_divisible

__all__ = ["MnasNet", "mnasnet", "mnasnet_a1"]

ACT = nn.ReLU

# One row of the paper's Figure 7 / the reference block strings, in this order:
#   (operator expansion t, kernel, SE, output channels, repeats, stride of the first repeat,
#    residual)
# t = 1 is the "SepConv" row: 3×3 depthwise + BN + ReLU → 1×1 linear projection (no expansion).
# ``residual`` False for the reference's "noskip" rows (only where shapes would allow one).
Row = tuple[int, int, bool, int, int, int, bool]

# Paper Figure 7(a), MnasNet-A1 (224² input): Conv3×3 (32, s2) → these rows → Pooling, FC.
A1_ROWS: tuple[Row, ...] = (
    (1, 3, False, 16, 1, 1, False),  # SepConv (k3×3) ×1
    (6, 3, False, 24, 2, 2, True),  # MBConv6 (k3×3) ×2
    (3, 5, True, 40, 3, 2, True),  # MBConv3 (k5×5), SE ×3
    (6, 3, False, 80, 4, 2, True),  # MBConv6 (k3×3) ×4
    (6, 3, True, 112, 2, 1, True),  # MBConv6 (k3×3), SE ×2
    (6, 5, True, 160, 3, 2, True),  # MBConv6 (k5×5), SE ×3
    (6, 3, False, 320, 1, 1, True),  # MBConv6 (k3×3) ×1
)

# MnasNet-B1 (tensorflow/tpu mnasnet_models.py ``mnasnet_b1``, as ported by timm's
# ``_gen_mnasnet_b1``): Conv3×3 (32, s2) → these rows → Pooling, FC. No SE anywhere.
B1_ROWS: tuple[Row, ...] = (
    (1, 3, False, 16, 1, 1, False),  # SepConv (k3×3) ×1
    (3, 3, False, 24, 3, 2, True),  # MBConv3 (k3×3) ×3
    (3, 5, False, 40, 3, 2, True),  # MBConv3 (k5×5) ×3
    (6, 5, False, 80, 3, 2, True),  # MBConv6 (k5×5) ×3
    (6, 3, False, 96, 2, 1, True),  # MBConv6 (k3×3) ×2
    (6, 5, False, 192, 4, 2, True),  # MBConv6 (k5×5) ×4
    (6, 3, False, 320, 1, 1, False),  # MBConv6 (k3×3) ×1
)

STEM_CHANNELS = 32
# The 1×1 conv to 1280 before pooling is not scaled by the depth multiplier (timm's port of the
# reference, whose counts published_models.csv gives; torchvision's MNASNet alike): 1280 at
# every width.
HEAD_CHANNELS = 1280
SE_RATIO = 0.25
DROPOUT = 0.2  # the reference's classifier dropout; identity in eval()


def scale_channels(channels: int, width: float) -> int:
    """``round_filters`` of the reference: make_divisible(c · depth multiplier, 8), stem
    included."""
    return make_divisible(channels * width)


class MnasNet(nn.Module):
    """MnasNet: ``features`` (stem, MBConv rows, 1×1 conv to 1280) and ``head``."""

    def __init__(self, rows: tuple[Row, ...], width: float = 1.0, num_classes: int = 1000) -> None:
        super().__init__()
        channels = scale_channels(STEM_CHANNELS, width)
        layers: list[nn.Module] = [ConvBnAct(3, channels, 3, 2, act=ACT)]
        for expansion, kernel, se, out, repeats, first_stride, residual in rows:
            out_channels = scale_channels(out, width)
            for i in range(repeats):
                layers.append(
                    InvertedResidual(
                        channels,
                        channels * expansion,
                        out_channels,
                        kernel,
                        first_stride if i == 0 else 1,
                        act=ACT,
                        se_channels=max(1, int(channels * SE_RATIO)) if se else None,
                        se_gate=nn.Sigmoid,
                        residual=residual,
                    )
                )
                channels = out_channels
        layers.append(ConvBnAct(channels, HEAD_CHANNELS, 1, act=ACT))
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(HEAD_CHANNELS, num_classes, dropout=DROPOUT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def mnasnet_a1(width: float = 1.0, num_classes: int = 1000) -> MnasNet:
    return MnasNet(A1_ROWS, width=width, num_classes=num_classes)


def mnasnet(width: float = 1.0, num_classes: int = 1000) -> MnasNet:
    return MnasNet(B1_ROWS, width=width, num_classes=num_classes)
