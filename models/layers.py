"""Building blocks shared by the network definitions of the zoo (MobileNet V1–V4, MnasNet,
EfficientNet-Lite, MobilenetEdgeTPU).

Owns make_divisible, conv–BN–activation, squeeze-excite, the inverted residuals (V2/V3/MnasNet/
EfficientNet MBConv, UIB, fused IB), Mobile multi-query attention, layer scale and the
classifier head.

Conventions every block follows so that a tracer sees readable, fusable layers:

* convolution, batch norm and activation are separate submodules (``conv``, ``bn``, ``act``);
* padding is ``kernel // 2`` on both sides. For the odd kernels used here this gives the
  output size ceil(input / stride) of TensorFlow "same" padding (MobileNetV4 paper, released
  code); only where the zero rows sit differs, which changes no shape, MAC or parameter;
* residual adds are written with ``+``, gates with ``*``; no in-place activations;
* nothing depends on the input resolution except reshapes, so every model runs at any size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "ActFactory",
    "ClassifierHead",
    "ConvBnAct",
    "FusedInvertedBottleneck",
    "InvertedResidual",
    "LayerScale",
    "MobileMQA",
    "MultiQueryAttention",
    "SqueezeExcite",
    "UniversalInvertedBottleneck",
    "make_divisible",
]

ActFactory = Callable[[], nn.Module]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never below ``min_value``
    (default ``divisor``) and never more than 10 % below ``value``.

    The rounding of the MobileNet V2/V3/V4 reference code (TF-slim ``_make_divisible``,
    stated in the MobileNetV4 spec as max(8, int(v + 4) // 8 · 8), plus 8 if below 0.9·v).
    """
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBnAct(nn.Module):
    """k×k convolution (no bias) → batch norm → optional activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        act: ActFactory | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = act() if act is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        if self.act is not None:
            x = self.act(x)
        return x


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite: global pool → 1×1 conv → act → 1×1 conv → gate → multiply.

    As in MobileNetV3 (paper Sec. 5.3, Fig. 4): both 1×1 convs carry a bias, the squeeze
    activation is ReLU and the gate hard-sigmoid.
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        act: ActFactory = nn.ReLU,
        gate: ActFactory = nn.Hardsigmoid,
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = act()
        self.expand = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * scale


class InvertedResidual(nn.Module):
    """MobileNet V2/V3 bottleneck: [1×1 expand] → k×k depthwise → [SE] → 1×1 linear projection.

    The expansion conv exists only when the expanded width differs from the input width
    (t = 1 rows of V2 Table 2, first rows of V3 Tables 1–2; the "SepConv" rows of MnasNet and
    the MBConv1 row of EfficientNet). Residual when stride 1, the input and output widths are
    equal and ``residual`` (False for the "noskip" rows of the TensorFlow definitions).
    ``se_gate`` is the SE gate: hard-sigmoid in V3, sigmoid in MnasNet.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        act: ActFactory,
        se_channels: int | None = None,
        se_gate: ActFactory = nn.Hardsigmoid,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.use_residual = residual and stride == 1 and in_channels == out_channels
        self.expand = (
            ConvBnAct(in_channels, hidden_channels, 1, act=act)
            if hidden_channels != in_channels
            else None
        )
        self.dw = ConvBnAct(
            hidden_channels, hidden_channels, kernel_size, stride, groups=hidden_channels, act=act
        )
        self.se = (
            SqueezeExcite(hidden_channels, se_channels, gate=se_gate) if se_channels else None
        )
        self.project = ConvBnAct(hidden_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand is not None:
            out = self.expand(out)
        out = self.dw(out)
        if self.se is not None:
            out = self.se(out)
        out = self.project(out)
        if self.use_residual:
            out = x + out
        return out


class LayerScale(nn.Module):
    """Per-channel learnable scale (CaiT-style), initialised to ``init_value``."""

    def __init__(self, channels: int, init_value: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), init_value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)


class UniversalInvertedBottleneck(nn.Module):
    """MobileNetV4 UIB (paper Sec. 3.2, Fig. 4).

    [K1×K1 depthwise + BN, no activation] → 1×1 expand + BN + act → [K2×K2 depthwise + BN
    + act] → 1×1 projection + BN → [layer scale] → residual when stride 1 and C_in = C_out.
    The stride sits in the middle depthwise when it exists, else in the start depthwise.
    (K1, K2) = (0, k): IB; (k, 0): ConvNext-like; (k, k): ExtraDW; (0, 0): FFN.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        start_dw_kernel: int,
        middle_dw_kernel: int,
        stride: int,
        act: ActFactory,
        layer_scale: bool = False,
    ) -> None:
        super().__init__()
        if stride != 1 and not (start_dw_kernel or middle_dw_kernel):
            raise ValueError("a strided UIB needs a start or middle depthwise convolution")
        start_stride = 1 if middle_dw_kernel else stride
        self.use_residual = stride == 1 and in_channels == out_channels
        self.start_dw = (
            ConvBnAct(in_channels, in_channels, start_dw_kernel, start_stride, groups=in_channels)
            if start_dw_kernel
            else None
        )
        self.expand = ConvBnAct(in_channels, hidden_channels, 1, act=act)
        self.middle_dw = (
            ConvBnAct(
                hidden_channels,
                hidden_channels,
                middle_dw_kernel,
                stride,
                groups=hidden_channels,
                act=act,
            )
            if middle_dw_kernel
            else None
        )
        self.project = ConvBnAct(hidden_channels, out_channels, 1)
        self.layer_scale = LayerScale(out_channels) if layer_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.start_dw is not None:
            out = self.start_dw(out)
        out = self.expand(out)
        if self.middle_dw is not None:
            out = self.middle_dw(out)
        out = self.project(out)
        if self.layer_scale is not None:
            out = self.layer_scale(out)
        if self.use_residual:
            out = x + out
        return out


class FusedInvertedBottleneck(nn.Module):
    """Fused IB (MobileNetV4; the "fused" rows of MobilenetEdgeTPU): k×k full conv expand + BN
    + act → 1×1 projection + BN.

    ``group_size`` > 0 makes the expansion a group convolution of ``hidden_channels //
    group_size`` groups (MobilenetEdgeTPU-V2's group-conv IBN; the expanded width sets the
    group count, as in timm's port). Residual when stride 1 and C_in = C_out.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        act: ActFactory,
        group_size: int = 0,
    ) -> None:
        super().__init__()
        groups = 1
        if group_size:
            if hidden_channels % group_size or in_channels % (hidden_channels // group_size):
                raise ValueError(
                    f"group size {group_size} does not divide {in_channels} → "
                    f"{hidden_channels} channels into whole groups"
                )
            groups = hidden_channels // group_size
        self.use_residual = stride == 1 and in_channels == out_channels
        self.expand = ConvBnAct(
            in_channels, hidden_channels, kernel_size, stride, groups=groups, act=act
        )
        self.project = ConvBnAct(hidden_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.expand(x))
        if self.use_residual:
            out = x + out
        return out


class MultiQueryAttention(nn.Module):
    """Mobile multi-query attention (MobileNetV4 paper Sec. 4): ``heads`` query heads share
    one key head and one value head of width ``key_dim``.

    queries = 1×1 conv to heads·key_dim at full resolution; keys and values = [k×k depthwise
    at ``kv_stride`` + BN, only when kv_stride > 1] → 1×1 conv to key_dim; per head
    softmax(q·kᵀ/√key_dim)·v; 1×1 output conv from heads·key_dim to C_out. No biases and no
    resolution-dependent parameters. Because K and V are a single head, the heads are folded
    into the query rows, so Q·Kᵀ and A·V are one batched matmul each:
    (B, heads·N, d) @ (B, d, M) and (B, heads·N, M) @ (B, M, d), N = H·W, M = H'·W'.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int,
        key_dim: int,
        kv_stride: int = 1,
        kv_dw_kernel: int = 3,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.key_dim = key_dim
        self.scale = 1.0 / math.sqrt(key_dim)
        self.query = nn.Conv2d(in_channels, heads * key_dim, 1, bias=False)
        downsample = kv_stride > 1
        self.key_down = (
            ConvBnAct(in_channels, in_channels, kv_dw_kernel, kv_stride, groups=in_channels)
            if downsample
            else None
        )
        self.key = nn.Conv2d(in_channels, key_dim, 1, bias=False)
        self.value_down = (
            ConvBnAct(in_channels, in_channels, kv_dw_kernel, kv_stride, groups=in_channels)
            if downsample
            else None
        )
        self.value = nn.Conv2d(in_channels, key_dim, 1, bias=False)
        self.output = nn.Conv2d(heads * key_dim, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        heads, dim = self.heads, self.key_dim
        # (B, h·d, H, W) → (B, h, d, N) → (B, h, N, d) → (B, h·N, d)
        q = self.query(x).reshape(batch, heads, dim, height * width).transpose(2, 3)
        q = q.reshape(batch, heads * height * width, dim) * self.scale
        kv_in = x if self.key_down is None else self.key_down(x)
        k = self.key(kv_in).flatten(2)  # (B, d, M)
        kv_in = x if self.value_down is None else self.value_down(x)
        v = self.value(kv_in).flatten(2).transpose(1, 2)  # (B, M, d)
        attn = torch.softmax(q @ k, dim=-1)  # (B, h·N, M)
        out = attn @ v  # (B, h·N, d)
        out = out.reshape(batch, heads, height * width, dim).transpose(2, 3)
        out = out.reshape(batch, heads * dim, height, width)
        return self.output(out)


class MobileMQA(nn.Module):
    """MobileNetV4 Mobile MQA block: BN → multi-query attention → layer scale → residual."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int,
        key_dim: int,
        kv_stride: int,
        kv_dw_kernel: int,
        layer_scale: bool = True,
    ) -> None:
        super().__init__()
        self.use_residual = in_channels == out_channels
        self.norm = nn.BatchNorm2d(in_channels)
        self.attn = MultiQueryAttention(
            in_channels, out_channels, heads, key_dim, kv_stride, kv_dw_kernel
        )
        self.layer_scale = LayerScale(out_channels) if layer_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.attn(self.norm(x))
        if self.layer_scale is not None:
            out = self.layer_scale(out)
        if self.use_residual:
            out = x + out
        return out


class ClassifierHead(nn.Module):
    """Global average pool → [1×1 conv (+ BN) + act] → flatten → [dropout] → linear classifier.

    The optional 1×1 conv on the pooled features is the "conv2d 1×1, NBN" row of the V3
    tables (with bias, no BN) or the 960→1280 head conv of V4 (no bias, with BN).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden_channels: int | None = None,
        hidden_norm: bool = False,
        act: ActFactory | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv: nn.Module | None = None
        self.bn: nn.Module | None = None
        self.act: nn.Module | None = None
        features = in_channels
        if hidden_channels is not None:
            self.conv = nn.Conv2d(in_channels, hidden_channels, 1, bias=not hidden_norm)
            self.bn = nn.BatchNorm2d(hidden_channels) if hidden_norm else None
            self.act = act() if act is not None else None
            features = hidden_channels
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.classifier = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        if self.conv is not None:
            x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        x = self.flatten(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.classifier(x)
