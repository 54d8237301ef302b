"""MobileNetV4 Conv-S/M/L and Hybrid-M/L (Qin et al., 2024, arXiv:2404.10518).

Owns the reader of mnv4_blocks.csv (one row per block of the paper's Tables 11–15), the V4
width rule and the five registered factories; the blocks themselves live in layers.py.

Block semantics (the specification the CSV is written against):

* ``stem_conv`` / ``conv_bn``: k×k conv (no bias) → BN → act, at the row's stride;
* ``fused_ib``: k×k full conv C_in → make_divisible(C_in·e, 8) → BN → act → 1×1 → BN;
* ``uib``: [K1×K1 DW → BN] → 1×1 to make_divisible(C_in·e, 8) → BN → act → [K2×K2 DW → BN →
  act] → 1×1 → BN → [layer scale 1e-5 in hybrids]; K = 0 means absent;
* ``mobile_mqa``: BN → multi-query attention (K/V down-sampled by a k×k DW + BN when
  kv_stride > 1) → layer scale → residual;
* the last row (conv_bn 1×1 to 960) is followed by the head: global average pool → 1×1 conv
  960 → 1280 (no bias) → BN → act → linear 1280 → classes.

Hybrid-M follows the released implementation, whose block list differs from its paper table.
Exact totals of this spec at width 1 equal the released implementation's counts (timm, cited
in published_models.csv; the paper's Table 6 totals are 3–9 % lower for M and L):
Conv-S 3,774,024 params / 186,005,568 MACs @224; Conv-M 9,715,512 / 1,080,244,224 @256;
Conv-L 32,590,864 / 6,376,220,672 @384; Hybrid-M 11,074,648 / 1,271,183,360 @256;
Hybrid-L 37,764,624 / 7,711,877,120 @384.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import torch
from torch import nn

from .layers import (
    ActFactory,
    ClassifierHead,
    ConvBnAct,
    FusedInvertedBottleneck,
    MobileMQA,
    UniversalInvertedBottleneck,
    make_divisible,
)

__all__ = [
    "MobileNetV4",
    "V4Block",
    "block_table",
    "mobilenet_v4_conv_large",
    "mobilenet_v4_conv_medium",
    "mobilenet_v4_conv_small",
    "mobilenet_v4_hybrid_large",
    "mobilenet_v4_hybrid_medium",
]

_CSV_NAME = "mnv4_blocks.csv"

ACTIVATIONS: dict[str, ActFactory] = {"relu": nn.ReLU, "gelu": nn.GELU}

# Head of every V4 model (paper Tables 11–15, last rows): 1×1 conv 960 → 1280 on the pooled map.
HEAD_CHANNELS = 1280


@dataclass(frozen=True)
class V4Block:
    """One row of mnv4_blocks.csv; kernels are 0 and ratios/attention fields None if unused."""

    index: int
    block: str
    kernel: int
    start_dw_kernel: int
    middle_dw_kernel: int
    expand_ratio: float | None
    out_channels: int
    stride: int
    heads: int
    key_dim: int
    kv_stride: int
    kv_dw_kernel: int
    activation: str
    layer_scale: bool


def _int(text: str) -> int:
    return int(text) if text.strip() else 0


def _parse_block(row: dict[str, str]) -> V4Block:
    ratio = row["expand_ratio"].strip()
    return V4Block(
        index=int(row["index"]),
        block=row["block"],
        kernel=_int(row["kernel"]),
        start_dw_kernel=_int(row["start_dw_kernel"]),
        middle_dw_kernel=_int(row["middle_dw_kernel"]),
        expand_ratio=float(ratio) if ratio else None,
        out_channels=int(row["out_channels"]),
        stride=int(row["stride"]),
        heads=_int(row["heads"]),
        key_dim=_int(row["key_dim"]),
        kv_stride=_int(row["kv_stride"]) or 1,
        kv_dw_kernel=_int(row["kv_dw_kernel"]),
        activation=row["activation"],
        layer_scale=row["layer_scale"] == "yes",
    )


@functools.cache
def _load_blocks() -> dict[str, tuple[V4Block, ...]]:
    text = resources.files(__package__).joinpath(_CSV_NAME).read_text(encoding="utf-8")
    tables: dict[str, list[V4Block]] = {}
    for row in csv.DictReader(text.splitlines()):
        block = _parse_block(row)
        rows = tables.setdefault(row["model"], [])
        if block.index != len(rows):
            raise ValueError(f"{_CSV_NAME}: {row['model']} block {block.index} out of order")
        rows.append(block)
    return {model: tuple(rows) for model, rows in tables.items()}


def block_table(model: str) -> tuple[V4Block, ...]:
    """The block list of ``model`` (e.g. "mobilenet_v4_conv_small") from mnv4_blocks.csv."""
    return _load_blocks()[model]


def scale_channels(channels: int, width: float) -> int:
    """V4 width rule (no widths are published for V4): every block's channel count, the stem
    and the final 960 conv included, becomes make_divisible(c · width, 8). Expansions stay
    make_divisible(C_in · e, 8) of the already scaled input. The attention key_dim (64 / 48)
    is a channel count too and becomes make_divisible(key_dim · width, 8); the number of heads
    stays fixed. At width 1 every count is the CSV's."""
    return make_divisible(channels * width)


def head_channels(width: float) -> int:
    """The pooled 1×1 conv (1280) is never thinned below 1280 but grows for widths > 1:
    make_divisible(1280 · max(1, width), 8) — the last-layer rule MobileNetV2 states (V2 paper
    Sec. 6.1) and that the published V3 reduced-width sizes imply."""
    return make_divisible(HEAD_CHANNELS * max(1.0, width))


def _hidden(in_channels: int, row: V4Block) -> int:
    if row.expand_ratio is None:
        raise ValueError(f"{_CSV_NAME}: block {row.index} ({row.block}) needs an expand_ratio")
    return make_divisible(in_channels * row.expand_ratio)


def _conv_bn(row: V4Block, c_in: int, c_out: int, width: float, act: ActFactory) -> nn.Module:
    return ConvBnAct(c_in, c_out, row.kernel, row.stride, act=act)


def _fused_ib(row: V4Block, c_in: int, c_out: int, width: float, act: ActFactory) -> nn.Module:
    return FusedInvertedBottleneck(c_in, _hidden(c_in, row), c_out, row.kernel, row.stride, act)


def _uib(row: V4Block, c_in: int, c_out: int, width: float, act: ActFactory) -> nn.Module:
    return UniversalInvertedBottleneck(
        c_in,
        _hidden(c_in, row),
        c_out,
        row.start_dw_kernel,
        row.middle_dw_kernel,
        row.stride,
        act,
        layer_scale=row.layer_scale,
    )


def _mobile_mqa(row: V4Block, c_in: int, c_out: int, width: float, act: ActFactory) -> nn.Module:
    if row.stride != 1:
        raise ValueError(f"{_CSV_NAME}: block {row.index}: Mobile MQA keeps the query resolution")
    return MobileMQA(
        c_in,
        c_out,
        heads=row.heads,
        key_dim=scale_channels(row.key_dim, width),
        kv_stride=row.kv_stride,
        kv_dw_kernel=row.kv_dw_kernel,
        layer_scale=row.layer_scale,
    )


BlockBuilder = Callable[[V4Block, int, int, float, ActFactory], nn.Module]

BUILDERS: dict[str, BlockBuilder] = {
    "stem_conv": _conv_bn,
    "conv_bn": _conv_bn,
    "fused_ib": _fused_ib,
    "uib": _uib,
    "mobile_mqa": _mobile_mqa,
}


class MobileNetV4(nn.Module):
    """MobileNetV4: ``blocks`` (one per CSV row, ``blocks.<index>``) and ``head``."""

    def __init__(self, table: tuple[V4Block, ...], width: float = 1.0, num_classes: int = 1000):
        super().__init__()
        channels = 3
        layers: list[nn.Module] = []
        for row in table:
            out_channels = scale_channels(row.out_channels, width)
            act = ACTIVATIONS[row.activation]
            layers.append(BUILDERS[row.block](row, channels, out_channels, width, act))
            channels = out_channels
        self.blocks = nn.Sequential(*layers)
        self.head = ClassifierHead(
            channels,
            num_classes,
            hidden_channels=head_channels(width),
            hidden_norm=True,
            act=ACTIVATIONS[table[-1].activation],
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


def mobilenet_v4_conv_small(width: float = 1.0, num_classes: int = 1000) -> MobileNetV4:
    return MobileNetV4(block_table("mobilenet_v4_conv_small"), width, num_classes)


def mobilenet_v4_conv_medium(width: float = 1.0, num_classes: int = 1000) -> MobileNetV4:
    return MobileNetV4(block_table("mobilenet_v4_conv_medium"), width, num_classes)


def mobilenet_v4_conv_large(width: float = 1.0, num_classes: int = 1000) -> MobileNetV4:
    return MobileNetV4(block_table("mobilenet_v4_conv_large"), width, num_classes)


def mobilenet_v4_hybrid_medium(width: float = 1.0, num_classes: int = 1000) -> MobileNetV4:
    return MobileNetV4(block_table("mobilenet_v4_hybrid_medium"), width, num_classes)


def mobilenet_v4_hybrid_large(width: float = 1.0, num_classes: int = 1000) -> MobileNetV4:
    return MobileNetV4(block_table("mobilenet_v4_hybrid_large"), width, num_classes)
