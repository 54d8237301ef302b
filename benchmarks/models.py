"""Non-MobileNet models for the accuracy benchmark, used as user models
(``benchmarks/models.py:resnet18``): plain PyTorch, random weights, nothing downloaded.

* ``resnet18`` / ``resnet50``: He et al. 2016 ("Deep Residual Learning"), Table 1, with the
  stride on the 3x3 convolution of the bottleneck as most implementations do. At width 1 they
  have 11,689,512 and 25,557,032 parameters, the published counts.
* ``vit_tiny``: a ViT/DeiT-Tiny-like transformer (Dosovitskiy et al. 2021; Touvron et al.
  2021): 16x16 patches, width 192, depth 12, 3 heads, MLP ratio 4, class token, learned
  position embedding (for 224 px), attention through ``F.scaled_dot_product_attention``.

The comparison networks that the published-latency data (public_latency.csv) also measures;
each docstring says which reference it follows and how its counts compare:

* ``squeezenet`` (= ``squeezenet1_0``) and ``squeezenet1_1``: Iandola et al. 2016.
* ``inception_v1`` (GoogLeNet with batch norm, TF-slim layout), ``inception_v2`` (TF-slim's
  BN-Inception), ``inception_v3``, ``inception_v4``, ``inception_resnet_v2``: Szegedy et al.
  2015, 2016, 2017 and the TF-slim definitions TF-Lite's hosted models were exported from.

Two more that the eager calibration is checked on (neither is a zoo model):

* ``shufflenet_v2`` (1.0x): Ma et al. 2018, Table 5; channel split, concatenation and
  channel shuffle (a copy in eager PyTorch).
* ``efficientnet_b0``: Tan & Le 2019, Table 1; squeeze-excite and SiLU throughout.

``nasnet_mobile`` is not here: its cells (Zoph et al. 2018) are too intricate to write from
memory faithfully, and no reference implementation was at hand to check one against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _ch(channels: int, width: float) -> int:
    return max(8, int(round(channels * width / 8)) * 8)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, c_mid: int, stride: int) -> None:
        super().__init__()
        c_out = c_mid * self.expansion
        self.conv1 = nn.Conv2d(c_in, c_mid, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_mid)
        self.conv2 = nn.Conv2d(c_mid, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                   nn.BatchNorm2d(c_out))
                     if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, c_mid: int, stride: int) -> None:
        super().__init__()
        c_out = c_mid * self.expansion
        self.conv1 = nn.Conv2d(c_in, c_mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_mid)
        self.conv2 = nn.Conv2d(c_mid, c_mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_mid)
        self.conv3 = nn.Conv2d(c_mid, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.down = (nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                   nn.BatchNorm2d(c_out))
                     if stride != 1 or c_in != c_out else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    def __init__(self, block: type[nn.Module], repeats: tuple[int, ...], width: float = 1.0,
                 num_classes: int = 1000) -> None:
        super().__init__()
        stem = _ch(64, width)
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 7, 2, 3, bias=False), nn.BatchNorm2d(stem),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        layers: list[nn.Module] = []
        c_in = stem
        for stage, n in enumerate(repeats):
            c_mid = _ch(64 * 2 ** stage, width)
            for i in range(n):
                layers.append(block(c_in, c_mid, 2 if i == 0 and stage > 0 else 1))
                c_in = c_mid * block.expansion  # type: ignore[attr-defined]
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet18(width: float = 1.0) -> nn.Module:
    return ResNet(BasicBlock, (2, 2, 2, 2), width)


def resnet50(width: float = 1.0) -> nn.Module:
    return ResNet(Bottleneck, (3, 4, 6, 3), width)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, dim: int = 192, depth: int = 12, heads: int = 3, patch: int = 16,
                 image: int = 224, num_classes: int = 1000) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*(EncoderBlock(dim, heads) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def vit_tiny(width: float = 1.0) -> nn.Module:
    """ViT/DeiT-Tiny at 224 px (the position embedding is sized for 224): 3 heads of
    ``width`` x 64 channels."""
    return VisionTransformer(dim=3 * _ch(64, width))


# -- SqueezeNet ----------------------------------------------------------------------------------


class Fire(nn.Module):
    """SqueezeNet Fire module (Iandola et al. 2016, Sec. 3.2): 1×1 squeeze + ReLU, then 1×1 and
    3×3 expand convs (+ ReLU each) concatenated. Every conv has a bias; there is no BN."""

    def __init__(self, c_in: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


# SqueezeNet paper Table 1 (v1.0) and the v1.1 definition of the SqueezeNet repository:
# "pool" is a 3×3 stride-2 max pool (ceil mode, as in Caffe); Fire rows give
# (squeeze s1x1, expand e1x1, expand e3x3).
SQUEEZENET_1_0 = ((7, 96), "pool", (16, 64, 64), (16, 64, 64), (32, 128, 128), "pool",
                  (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256), "pool",
                  (64, 256, 256))
SQUEEZENET_1_1 = ((3, 64), "pool", (16, 64, 64), (16, 64, 64), "pool", (32, 128, 128),
                  (32, 128, 128), "pool", (48, 192, 192), (48, 192, 192), (64, 256, 256),
                  (64, 256, 256))


class SqueezeNet(nn.Module):
    """conv1 (k×k stride 2, bias, ReLU) → Fire modules and max pools → dropout → conv10 (1×1 to
    the classes, bias, ReLU) → global average pool."""

    def __init__(self, table: tuple, num_classes: int = 1000) -> None:
        super().__init__()
        (kernel, stem), *rows = table
        layers: list[nn.Module] = [nn.Conv2d(3, stem, kernel, 2), nn.ReLU()]
        c_in = stem
        for row in rows:
            if row == "pool":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            else:
                layers.append(Fire(c_in, *row))
                c_in = row[1] + row[2]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.5)
        self.conv10 = nn.Conv2d(c_in, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv10(self.dropout(self.features(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def squeezenet1_0() -> nn.Module:
    """SqueezeNet 1.0 (paper Table 1). Counted against torchvision ``squeezenet1_0``: equal,
    1,248,424 parameters and 818,924,576 MACs at 224."""
    return SqueezeNet(SQUEEZENET_1_0)


def squeezenet1_1() -> nn.Module:
    """SqueezeNet 1.1 (the SqueezeNet repository's v1.1: 3×3 64-channel stem, pools moved
    earlier; "2.4x less computation than 1.0"). Counted against torchvision ``squeezenet1_1``:
    equal, 1,235,496 parameters and 349,151,936 MACs at 224."""
    return SqueezeNet(SQUEEZENET_1_1)


def squeezenet() -> nn.Module:
    """The network of TF-Lite's hosted "SqueezeNet" rows, taken to be SqueezeNet 1.0.

    TF-Lite's tables do not say which version they host, and we could not open the file. The
    latencies point to 1.0: on one Pixel 2 core SqueezeNet takes 224 ms against 160 ms for
    float MobileNetV1 1.0/224 (569M MACs) in the same table (TF-Lite models.md; 234 against
    123 ms in benchmarks.md), which fits 1.0's 819M MACs and not 1.1's 349M."""
    return squeezenet1_0()


# -- Inception -----------------------------------------------------------------------------------


class ConvBn(nn.Module):
    """k×k convolution (no bias) → BN (eps 0.001, as TF-slim) → ReLU; ``kernel`` may be a pair
    (1×7, 7×1 …), padding keeps the size ("SAME") unless ``valid``."""

    def __init__(self, c_in: int, c_out: int, kernel: int | tuple[int, int], stride: int = 1,
                 valid: bool = False) -> None:
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (0, 0) if valid else (kh // 2, kw // 2)
        self.conv = nn.Conv2d(c_in, c_out, (kh, kw), stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


# A branch is a chain of convs, each (out channels, kernel[, stride[, "valid"]]), optionally
# after a pool: "avg" (3×3, stride 1, padded, padding excluded from the mean), "max" (3×3,
# stride 1, padded) or a stride-2 pool of POOLS. An empty chain after a pool is the pool alone;
# a last item that is a tuple of convs splits the branch into those parallel convs.
Conv = tuple
Branch = tuple


def _chain(c_in: int, convs: tuple[Conv, ...]) -> tuple[list[nn.Module], int]:
    layers: list[nn.Module] = []
    for conv in convs:
        out, kernel, *rest = conv
        stride = rest[0] if rest else 1
        valid = len(rest) > 1 and rest[1] == "valid"
        layers.append(ConvBn(c_in, out, kernel, stride, valid))
        c_in = out
    return layers, c_in


class Mixed(nn.Module):
    """Parallel branches concatenated on channels. A branch whose last item is a tuple of convs
    splits there into parallel convs (Inception-v3 E / Inception-v4 C: 1×3 and 3×1)."""

    def __init__(self, c_in: int, branches: tuple[Branch, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList()
        self.splits = nn.ModuleList()
        self.out_channels = 0
        for branch in branches:
            pool = branch[0] if branch and isinstance(branch[0], str) else None
            convs = branch[1:] if pool else branch
            split = convs[-1] if convs and isinstance(convs[-1][0], tuple) else None
            if split is not None:
                convs = convs[:-1]
            layers: list[nn.Module] = []
            if pool == "avg":
                layers.append(nn.AvgPool2d(3, 1, 1, count_include_pad=False))
            elif pool == "max":
                layers.append(nn.MaxPool2d(3, 1, 1))
            elif pool is not None:
                layers.append(POOLS[pool]())
            chain, c = _chain(c_in, convs)
            self.branches.append(nn.Sequential(*layers, *chain))
            if split is None:
                self.splits.append(nn.ModuleList())
                self.out_channels += c
            else:
                heads = nn.ModuleList(_chain(c, (conv,))[0][0] for conv in split)
                self.splits.append(heads)
                self.out_channels += sum(conv[0] for conv in split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: list[torch.Tensor] = []
        for branch, split in zip(self.branches, self.splits, strict=True):
            y = branch(x)
            if len(split):
                outs.extend(head(y) for head in split)
            else:
                outs.append(y)
        return torch.cat(outs, 1)


class Residual(nn.Module):
    """Inception-ResNet block: relu?(x + scale · conv1×1(Mixed(x))); the 1×1 "up" conv has a
    bias and no BN (Szegedy et al. 2017, Sec. 3.2 scaling of the residuals)."""

    def __init__(self, c_in: int, branches: tuple[Branch, ...], scale: float,
                 relu: bool = True) -> None:
        super().__init__()
        self.mixed = Mixed(c_in, branches)
        self.up = nn.Conv2d(self.mixed.out_channels, c_in, 1)
        self.scale = scale
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x + self.up(self.mixed(x)) * self.scale
        return F.relu(out) if self.relu else out


class InceptionNet(nn.Module):
    """Stem layers, then Mixed / Residual blocks, global average pool, dropout, linear."""

    def __init__(self, body: list[nn.Module], channels: int, num_classes: int = 1000,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(*body)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.fc(self.dropout(x))


POOLS = {
    "max/2": lambda: nn.MaxPool2d(3, 2),  # 3×3 stride 2, "VALID"
    "max/2same": lambda: nn.MaxPool2d(3, 2, 1),  # 3×3 stride 2, "SAME" for even sizes
}


def _build(stem: tuple, blocks: tuple, c_in: int = 3) -> tuple[list[nn.Module], int]:
    """Stem items are convs (as in a branch) or a pool name of POOLS; blocks are Mixed branch
    tuples, pool names or ("residual", scale, relu, branches)."""
    layers: list[nn.Module] = []
    for item in stem:
        if isinstance(item, str):
            layers.append(POOLS[item]())
        else:
            chain, c_in = _chain(c_in, (item,))
            layers.extend(chain)
    for block in blocks:
        if isinstance(block, str):
            layers.append(POOLS[block]())
        elif block[0] == "residual":
            _, scale, relu, branches = block
            layers.append(Residual(c_in, branches, scale, relu))
        else:
            mixed = Mixed(c_in, block)
            layers.append(mixed)
            c_in = mixed.out_channels
    return layers, c_in


# Inception-v1 as TF-slim's inception_v1 (GoogLeNet, Szegedy et al. 2015 Table 1, with BN): the
# "5×5" branch is a 3×3 conv there (and in torchvision's googlenet). Mixed rows are Table 1's
# columns: #1×1 | #3×3 reduce → #3×3 | #5×5 reduce → #5×5 | pool proj.
def _v1_mixed(c1: int, r3: int, c3: int, r5: int, c5: int, pool: int) -> tuple[Branch, ...]:
    return ((c1, 1),), ((r3, 1), (c3, 3)), ((r5, 1), (c5, 3)), ("max", (pool, 1))


INCEPTION_V1_STEM = ((64, 7, 2), "max/2same", (64, 1), (192, 3), "max/2same")
INCEPTION_V1_BLOCKS = (
    _v1_mixed(64, 96, 128, 16, 32, 32),  # 3a (slim Mixed_3b)
    _v1_mixed(128, 128, 192, 32, 96, 64),  # 3b
    "max/2same",
    _v1_mixed(192, 96, 208, 16, 48, 64),  # 4a
    _v1_mixed(160, 112, 224, 24, 64, 64),  # 4b
    _v1_mixed(128, 128, 256, 24, 64, 64),  # 4c
    _v1_mixed(112, 144, 288, 32, 64, 64),  # 4d
    _v1_mixed(256, 160, 320, 32, 128, 128),  # 4e
    "max/2same",  # slim: 2×2/2; the same 7×7 at 224
    _v1_mixed(256, 160, 320, 32, 128, 128),  # 5a
    _v1_mixed(384, 192, 384, 48, 128, 128),  # 5b
)


def inception_v1() -> nn.Module:
    """Inception-v1 (GoogLeNet) with BN as TF-slim's ``inception_v1`` (TF-Lite hosts it
    quantized), at 224: no auxiliary heads (training only). Counted against torchvision
    ``googlenet(aux_logits=False)``, which has the same layers: equal parameters (6,624,904)
    and MACs (1,498,376,192 at 224). TF-slim's BN has no γ (``scale=False``), so a count of
    its checkpoint is 7,280 parameters (one per BN channel) lower."""
    body, channels = _build(INCEPTION_V1_STEM, INCEPTION_V1_BLOCKS)
    return InceptionNet(body, channels)


# Inception-v2 as TF-slim's inception_v2 (the BN-Inception of Ioffe & Szegedy 2015, Fig. 5 /
# Appendix table, with slim's separable 7×7 stem). Mixed rows: #1×1 | #3×3 reduce → #3×3 |
# double #3×3 reduce → #3×3 → #3×3 | pool → proj; the stride-2 rows have no 1×1 branch and
# pass the max-pooled input through.
def _v2_mixed(c1: int, r3: int, c3: int, rd: int, cd: int, pool: str, proj: int
              ) -> tuple[Branch, ...]:
    return ((c1, 1),), ((r3, 1), (c3, 3)), ((rd, 1), (cd, 3), (cd, 3)), (pool, (proj, 1))


def _v2_reduce(r3: int, c3: int, rd: int, cd: int) -> tuple[Branch, ...]:
    return ((r3, 1), (c3, 3, 2)), ((rd, 1), (cd, 3), (cd, 3, 2)), ("max/2same",)


class SeparableStem(nn.Module):
    """TF-slim inception_v2 Conv2d_1a_7x7: a 7×7 stride-2 depthwise conv with depth multiplier
    8 (3 → 24 channels, no BN between) then a 1×1 conv to 64, BN, ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(3, 24, 7, 2, 3, groups=3, bias=False)
        self.pointwise = ConvBn(24, 64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


INCEPTION_V2_STEM = ("max/2same", (64, 1), (192, 3), "max/2same")
INCEPTION_V2_BLOCKS = (
    _v2_mixed(64, 64, 64, 64, 96, "avg", 32),  # 3a (slim Mixed_3b)
    _v2_mixed(64, 64, 96, 64, 96, "avg", 64),  # 3b
    _v2_reduce(128, 160, 64, 96),  # 3c, stride 2
    _v2_mixed(224, 64, 96, 96, 128, "avg", 128),  # 4a
    _v2_mixed(192, 96, 128, 96, 128, "avg", 128),  # 4b
    _v2_mixed(160, 128, 160, 128, 160, "avg", 96),  # 4c
    _v2_mixed(96, 128, 192, 160, 192, "avg", 96),  # 4d
    _v2_reduce(128, 192, 192, 256),  # 4e, stride 2
    _v2_mixed(352, 192, 320, 160, 224, "avg", 128),  # 5a
    _v2_mixed(352, 192, 320, 192, 224, "max", 128),  # 5b
)


def inception_v2() -> nn.Module:
    """Inception-v2 as TF-slim's ``inception_v2`` at 224 (BN-Inception, Ioffe & Szegedy 2015,
    with slim's separable stem). Written from the published layer table; timm and torchvision
    have no Inception-v2, so no reference count was available: 11,188,288 parameters and
    1,934,857,216 MACs at 224 here (with BN γ; TF-slim's BN has none)."""
    stem = SeparableStem()
    body, channels = _build(INCEPTION_V2_STEM, INCEPTION_V2_BLOCKS, c_in=64)
    return InceptionNet([stem, *body], channels)


# Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture", Table 1 and
# Figs. 5–7; TF-slim inception_v3), 299² input; "valid" convs and pools as the reference.
INCEPTION_V3_STEM = ((32, 3, 2, "valid"), (32, 3, 1, "valid"), (64, 3), "max/2",
                     (80, 1, 1, "valid"), (192, 3, 1, "valid"), "max/2")


def _v3_a(pool: int) -> tuple[Branch, ...]:  # Fig. 5 as released: 5×5 branch kept
    return ((64, 1),), ((48, 1), (64, 5)), ((64, 1), (96, 3), (96, 3)), ("avg", (pool, 1))


def _v3_c(c7: int) -> tuple[Branch, ...]:  # Fig. 6, n = 7
    return (((192, 1),), ((c7, 1), (c7, (1, 7)), (192, (7, 1))),
            ((c7, 1), (c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)), (192, (1, 7))),
            ("avg", (192, 1)))


V3_E: tuple[Branch, ...] = (  # Fig. 7: the 3×3 split into parallel 1×3 and 3×1
    ((320, 1),),
    ((384, 1), ((384, (1, 3)), (384, (3, 1)))),
    ((448, 1), (384, 3), ((384, (1, 3)), (384, (3, 1)))),
    ("avg", (192, 1)),
)

INCEPTION_V3_BLOCKS = (
    _v3_a(32), _v3_a(64), _v3_a(64),  # Mixed_5b..d: 35×35
    (((384, 3, 2, "valid"),), ((64, 1), (96, 3), (96, 3, 2, "valid")), ("max/2",)),  # 6a
    _v3_c(128), _v3_c(160), _v3_c(160), _v3_c(192),  # Mixed_6b..e: 17×17
    (((192, 1), (320, 3, 2, "valid")),
     ((192, 1), (192, (1, 7)), (192, (7, 1)), (192, 3, 2, "valid")), ("max/2",)),  # 7a
    V3_E, V3_E,  # Mixed_7b, 7c: 8×8
)


def inception_v3() -> nn.Module:
    """Inception-v3 at 299 as TF-slim's ``inception_v3`` (no auxiliary head). Counted against
    timm ``inception_v3`` (no aux head): equal, 23,834,568 parameters and 5,713,216,096 MACs at
    299 (torchvision ``inception_v3(aux_logits=False)`` too)."""
    body, channels = _build(INCEPTION_V3_STEM, INCEPTION_V3_BLOCKS)
    return InceptionNet(body, channels)


# Inception-v4 (Szegedy et al. 2017, Figs. 3–9; TF-slim inception_v4), 299² input.
INCEPTION_V4_STEM = ((32, 3, 2, "valid"), (32, 3, 1, "valid"), (64, 3))
V4_STEM_MIXED: tuple[tuple[Branch, ...], ...] = (
    (("max/2",), ((96, 3, 2, "valid"),)),  # Mixed_3a
    (((64, 1), (96, 3, 1, "valid")),
     ((64, 1), (64, (1, 7)), (64, (7, 1)), (96, 3, 1, "valid"))),  # Mixed_4a
    (((192, 3, 2, "valid"),), ("max/2",)),  # Mixed_5a
)
V4_A: tuple[Branch, ...] = (  # Fig. 4
    ((96, 1),), ((64, 1), (96, 3)), ((64, 1), (96, 3), (96, 3)), ("avg", (96, 1)))
V4_REDUCTION_A: tuple[Branch, ...] = (  # Fig. 7, k, l, m, n = 192, 224, 256, 384
    ((384, 3, 2, "valid"),), ((192, 1), (224, 3), (256, 3, 2, "valid")), ("max/2",))
V4_B: tuple[Branch, ...] = (  # Fig. 5
    ((384, 1),), ((192, 1), (224, (1, 7)), (256, (7, 1))),
    ((192, 1), (192, (7, 1)), (224, (1, 7)), (224, (7, 1)), (256, (1, 7))),
    ("avg", (128, 1)))
V4_REDUCTION_B: tuple[Branch, ...] = (  # Fig. 8
    ((192, 1), (192, 3, 2, "valid")),
    ((256, 1), (256, (1, 7)), (320, (7, 1)), (320, 3, 2, "valid")), ("max/2",))
V4_C: tuple[Branch, ...] = (  # Fig. 6
    ((256, 1),), ((384, 1), ((256, (1, 3)), (256, (3, 1)))),
    ((384, 1), (448, (3, 1)), (512, (1, 3)), ((256, (1, 3)), (256, (3, 1)))),
    ("avg", (256, 1)))

INCEPTION_V4_BLOCKS = (*V4_STEM_MIXED, *[V4_A] * 4, V4_REDUCTION_A, *[V4_B] * 7,
                       V4_REDUCTION_B, *[V4_C] * 3)


def inception_v4() -> nn.Module:
    """Inception-v4 at 299 as TF-slim's ``inception_v4`` (no auxiliary head). Counted against
    timm ``inception_v4``: equal, 42,679,816 parameters and 12,253,974,624 MACs at 299."""
    body, channels = _build(INCEPTION_V4_STEM, INCEPTION_V4_BLOCKS)
    return InceptionNet(body, channels)


# Inception-ResNet-v2 (Szegedy et al. 2017, Figs. 3 and 16–18 as released in TF-slim
# inception_resnet_v2), 299² input.
IRV2_STEM = ((32, 3, 2, "valid"), (32, 3, 1, "valid"), (64, 3), "max/2",
             (80, 1, 1, "valid"), (192, 3, 1, "valid"), "max/2")
IRV2_MIXED_5B: tuple[Branch, ...] = (
    ((96, 1),), ((48, 1), (64, 5)), ((64, 1), (96, 3), (96, 3)), ("avg", (64, 1)))
IRV2_BLOCK35: tuple[Branch, ...] = (  # Fig. 16, 35×35
    ((32, 1),), ((32, 1), (32, 3)), ((32, 1), (48, 3), (64, 3)))
IRV2_MIXED_6A: tuple[Branch, ...] = (  # Reduction-A with k, l, m, n = 256, 256, 384, 384
    ((384, 3, 2, "valid"),), ((256, 1), (256, 3), (384, 3, 2, "valid")), ("max/2",))
IRV2_BLOCK17: tuple[Branch, ...] = (  # Fig. 17, 17×17
    ((192, 1),), ((128, 1), (160, (1, 7)), (192, (7, 1))))
IRV2_MIXED_7A: tuple[Branch, ...] = (  # Fig. 18
    ((256, 1), (384, 3, 2, "valid")), ((256, 1), (288, 3, 2, "valid")),
    ((256, 1), (288, 3), (320, 3, 2, "valid")), ("max/2",))
IRV2_BLOCK8: tuple[Branch, ...] = (  # Fig. 19, 8×8
    ((192, 1),), ((192, 1), (224, (1, 3)), (256, (3, 1))))

IRV2_BLOCKS = (
    IRV2_MIXED_5B,
    *[("residual", 0.17, True, IRV2_BLOCK35)] * 10,
    IRV2_MIXED_6A,
    *[("residual", 0.10, True, IRV2_BLOCK17)] * 20,
    IRV2_MIXED_7A,
    *[("residual", 0.20, True, IRV2_BLOCK8)] * 9,
    ("residual", 1.0, False, IRV2_BLOCK8),  # the last block: no ReLU
)


def inception_resnet_v2() -> nn.Module:
    """Inception-ResNet-v2 at 299 as TF-slim's ``inception_resnet_v2`` (no auxiliary head):
    the blocks above, then a 1×1 conv to 1536 (Conv2d_7b_1x1). Counted against timm
    ``inception_resnet_v2``: equal, 55,843,464 parameters and 13,155,794,016 MACs at 299."""
    body, channels = _build(IRV2_STEM, IRV2_BLOCKS)
    body.append(ConvBn(channels, 1536, 1))
    return InceptionNet(body, 1536)


# -- ShuffleNetV2 --------------------------------------------------------------------------------


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle (Zhang et al. 2018, Sec. 3.1): split the channels into
    ``groups``, transpose, flatten; a copy in eager PyTorch (``contiguous``)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit (Ma et al. 2018, Fig. 3 (c) and (d)). Stride 1: the channels are split
    in two halves, one passes through, the other goes 1×1 → BN ReLU → 3×3 depthwise → BN →
    1×1 → BN ReLU. Stride 2: both branches see the whole input, the left one 3×3 depthwise
    stride 2 → BN → 1×1 → BN ReLU. Concatenate, then shuffle the two groups."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        half = c_out // 2
        self.stride = stride

        def dw(c: int) -> list[nn.Module]:
            return [nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(c)]

        def pw(a: int, b: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

        self.left = nn.Sequential(*dw(c_in), *pw(c_in, half)) if stride == 2 else None
        right_in = c_in if stride == 2 else half
        self.right = nn.Sequential(*pw(right_in, half), *dw(half), *pw(half, half))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.left is None:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.right(b)), 1)
        else:
            out = torch.cat((self.left(x), self.right(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    """Paper Table 5: conv1 3×3 stride 2 (24, BN ReLU) → 3×3 stride-2 max pool → stages 2-4
    of 4, 8, 4 units (the first of stride 2) → conv5 1×1 (BN ReLU) → global pool → FC."""

    def __init__(self, channels: tuple[int, int, int, int], num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24),
                                   nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        c_in = 24
        for repeats, c_out in zip((4, 8, 4), channels[:3], strict=True):
            for i in range(repeats):
                layers.append(ShuffleUnit(c_in, c_out, 2 if i == 0 else 1))
                c_in = c_out
        layers += [nn.Conv2d(c_in, channels[3], 1, bias=False), nn.BatchNorm2d(channels[3]),
                   nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def shufflenet_v2() -> nn.Module:
    """ShuffleNetV2 1.0× (paper Table 5: 116, 232, 464 channels, conv5 1024; 2.3M parameters,
    146M FLOPs, which the paper counts as multiply-adds). Counted against torchvision
    ``shufflenet_v2_x1_0``: 2,278,604 parameters."""
    return ShuffleNetV2((116, 232, 464, 1024))


# -- EfficientNet-B0 -----------------------------------------------------------------------------


class MBConv(nn.Module):
    """EfficientNet's MBConv (Tan & Le 2019, Sec. 4, after MnasNet): [1×1 expand → BN SiLU] →
    k×k depthwise → BN SiLU → squeeze-excite (pool → 1×1 to a quarter of the block's *input*
    channels, SiLU → 1×1, sigmoid → multiply) → 1×1 project → BN, residual at stride 1 when the
    widths match (drop-connect is identity in eval)."""

    def __init__(self, c_in: int, c_out: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = c_in * expand
        squeeze = max(1, c_in // 4)
        expand_layers: list[nn.Module] = ([nn.Conv2d(c_in, hidden, 1, bias=False),
                                           nn.BatchNorm2d(hidden), nn.SiLU()]
                                          if expand != 1 else [])
        self.body = nn.Sequential(
            *expand_layers,
            nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.SiLU())
        self.se_reduce = nn.Conv2d(hidden, squeeze, 1)
        self.se_expand = nn.Conv2d(squeeze, hidden, 1)
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False),
                                     nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        gate = torch.sigmoid(self.se_expand(F.silu(self.se_reduce(y.mean((2, 3), True)))))
        y = self.project(y * gate)
        return x + y if self.residual else y


# EfficientNet paper Table 1 (B0), stages 2-8: (expansion, kernel, channels, layers, stride).
EFFICIENTNET_B0 = ((1, 3, 16, 1, 1), (6, 3, 24, 2, 2), (6, 5, 40, 2, 2), (6, 3, 80, 3, 2),
                   (6, 5, 112, 3, 1), (6, 5, 192, 4, 2), (6, 3, 320, 1, 1))


class EfficientNet(nn.Module):
    """Stem 3×3 stride 2 (32, BN SiLU) → MBConv stages → 1×1 conv to 1280 (BN SiLU) → global
    pool → FC (dropout is identity in eval)."""

    def __init__(self, stages: tuple, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32),
                                   nn.SiLU()]
        c_in = 32
        for expand, kernel, c_out, repeats, stride in stages:
            for i in range(repeats):
                layers.append(MBConv(c_in, c_out, expand, kernel, stride if i == 0 else 1))
                c_in = c_out
        layers += [nn.Conv2d(c_in, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def efficientnet_b0() -> nn.Module:
    """EfficientNet-B0 (paper Table 1; 5.3M parameters, 0.39B FLOPs, which the paper counts
    as multiply-adds). Counted against torchvision ``efficientnet_b0``: 5,288,548
    parameters."""
    return EfficientNet(EFFICIENTNET_B0)
