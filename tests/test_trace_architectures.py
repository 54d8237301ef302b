"""Architectures beyond the zoo, written small: each traces with no unknown op, its MACs equal
an independent count and its params equal ``sum(p.numel() for p in model.parameters())``.

The independent count is PyTorch's FlopCounterMode on real tensors (FLOPs // 2, 1 MAC = 2
FLOPs) where it counts every product; where it cannot (the fused CPU attention and encoder
kernels, the oneDNN LSTM), the arithmetic is written beside the number.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from roofline.core.graph import LayerGraph, OpKind
from roofline.sources.pytorch.tracer import UnknownOpWarning, trace


def flop_counter_macs(model: nn.Module, *args, **kwargs) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(*args, **kwargs)
    return counter.get_total_flops() // 2


def traced(model: nn.Module, inputs, **kwargs) -> LayerGraph:
    """Trace with unknown ops as errors, and check params and the layers' GEMMs."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownOpWarning)
        graph = trace(model, inputs, **kwargs)
    assert graph.unknown_ops == [] and OpKind.UNKNOWN not in graph.kind_counts()
    assert graph.params == sum(p.numel() for p in model.parameters())
    for layer in graph.layers:
        assert layer.macs == sum(g.macs for g in layer.gemms), layer.name
    return graph


def conv_bn_relu(c_in: int, c_out: int, **kwargs) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=kwargs.pop("padding", 1),
                                   bias=False, **kwargs), nn.BatchNorm2d(c_out), nn.ReLU())


# -- U-Net: transposed convs, cat, bilinear upsampling --------------------------------------------

class UNet(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.down1 = nn.Sequential(conv_bn_relu(3, c), conv_bn_relu(c, c))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(c, 2 * c))
        self.bottom = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(2 * c, 4 * c))
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = conv_bn_relu(4 * c, 2 * c)
        self.dec1 = conv_bn_relu(3 * c, c)
        self.out = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(d1)
        b = self.bottom(d2)
        u2 = self.dec2(torch.cat([self.up2(b), d2], dim=1))
        u1 = F.interpolate(u2, scale_factor=2, mode="bilinear", align_corners=False)
        return self.out(self.dec1(torch.cat([u1, d1], dim=1)))


def test_unet():
    model, shape = UNet(), (1, 3, 32, 32)
    graph = traced(model, shape)
    assert graph.macs == flop_counter_macs(model, torch.randn(shape))
    assert graph["up2"].kind is OpKind.CONV and graph["up2"].output_shape == (1, 16, 16, 16)
    assert graph["up2"].macs == 8 * 8 * 32 * 16 * 2 * 2 == 131_072  # each input pixel × 2×2
    assert graph["upsample_bilinear2d"].output_shape == (1, 16, 32, 32)
    assert [layer.op for layer in graph.layers].count("cat") == 2
    assert graph.layers[-1].output_shape == (1, 2, 32, 32)


# -- GPT-style decoder: embeddings, causal mask, layer norm, GELU, tied head ----------------------

class DecoderBlock(nn.Module):
    def __init__(self, dim, heads, context):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc, self.out = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.register_buffer("causal", torch.tril(torch.ones(context, context, dtype=torch.bool)))

    def forward(self, x, mask=None):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        att = att.masked_fill(~self.causal[:t, :t], float("-inf"))
        if mask is not None:  # a padding mask: (b, t) bool, True where a token is real
            att = att.masked_fill(~mask[:, None, None, :], float("-inf"))
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab=97, dim=32, heads=4, layers=2, context=16):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(DecoderBlock(dim, heads, context) for _ in range(layers))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.wte.weight  # tied

    def forward(self, ids, mask=None):
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.wte(ids) + self.wpe(positions)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln(x))


def test_gpt_decoder():
    model = GPT()
    graph = traced(model, [((2, 16), "int64")], kwargs={"mask": ((2, 16), "bool")})
    ids = torch.randint(0, 97, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.bool)
    assert graph.macs == flop_counter_macs(model, ids, mask=mask)
    # per block: qkv 32·32·32·3 + Q·Kᵀ and A·V 2·(2·4·16·16·8) + proj 32·32·32 + MLP 2·32·32·128
    per_block = 98_304 + 32_768 + 32_768 + 262_144
    assert graph.macs == 2 * per_block + 32 * 32 * 97 == 851_968 + 99_328
    # per block: 2 layer norms 128, qkv 3,168, proj 1,056, fc 4,224, out 4,128 = 12,704
    assert graph.params == 97 * 32 + 16 * 32 + 2 * 12_704 + 64 == 29_088  # the head is tied
    assert graph["head"].weight_elements == 97 * 32  # the tied table, read whole
    assert graph["wte"].weight_elements == 32 * 32  # 2·16 rows of 32
    assert graph.inputs[0].element_bytes == 8 and graph.inputs[1].element_bytes == 1
    assert graph.layers[-1].output_shape == (2, 16, 97)


# -- Swin-style stage: shifted windows, relative position bias, patch merging ---------------------

class SwinBlock(nn.Module):
    def __init__(self, dim, heads, window, shift, resolution):
        super().__init__()
        self.heads, self.window, self.shift = heads, window, shift
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.table = nn.Parameter(torch.randn((2 * window - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                            indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("index", rel[..., 0] * (2 * window - 1) + rel[..., 1])
        mask = None
        if shift:  # regions of the shifted image that must not attend to each other
            region = torch.zeros(1, resolution, resolution, 1)
            cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
            for i, (h, w) in enumerate((h, w) for h in cuts for w in cuts):
                region[:, h, w, :] = i
            ids = self.partition(region).squeeze(-1)
            mask = (ids[:, None, :] - ids[:, :, None]).ne(0).float() * -100.0
        self.register_buffer("mask", mask)

    def partition(self, x):
        b, h, w, c = x.shape
        ws = self.window
        x = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, ws * ws, c)

    def forward(self, x):  # (B, H, W, C)
        b, h, w, c = x.shape
        ws, n = self.window, self.window ** 2
        shortcut = x
        x = self.norm1(x)
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), (1, 2))
        windows = self.partition(x)
        qkv = self.qkv(windows).reshape(-1, n, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        bias = self.table[self.index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous()
        attn = attn + bias.unsqueeze(0)
        if self.mask is not None:
            nw = self.mask.shape[0]
            attn = attn.view(-1, nw, self.heads, n, n) + self.mask[None, :, None]
            attn = attn.view(-1, self.heads, n, n)
        out = self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(-1, n, c))
        out = out.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        out = out.reshape(b, h, w, c)
        if self.shift:
            out = torch.roll(out, (self.shift, self.shift), (1, 2))
        x = shortcut + out
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]],
                      -1)
        return self.reduction(self.norm(x))


class TinySwin(nn.Module):
    def __init__(self, dim=16, resolution=16):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, stride=4)
        r = resolution // 4
        self.blocks = nn.Sequential(SwinBlock(dim, 2, 2, 0, r), SwinBlock(dim, 2, 2, 1, r))
        self.merge = PatchMerging(dim)
        self.head = nn.Linear(2 * dim, 10)

    def forward(self, x):
        x = self.embed(x).permute(0, 2, 3, 1)
        x = self.merge(self.blocks(x))
        return self.head(x.mean((1, 2)))


def test_swin_stage():
    model, shape = TinySwin(), (1, 3, 16, 16)
    graph = traced(model, shape)
    assert graph.macs == flop_counter_macs(model, torch.randn(shape))
    assert graph.params == 16 * 48 + 16 + 2 * (2 * 32 + 16 * 48 + 48 + 16 * 16 + 16 + 16 * 64
                                              + 64 + 64 * 16 + 16 + 9 * 2) + 128 + 64 * 32 \
        + 32 * 10 + 10
    assert {"roll", "cat"} <= {layer.op for layer in graph.layers}


# -- dilated and grouped convolutions -------------------------------------------------------------

class ASPPNeXt(nn.Module):
    """A ResNeXt block (grouped 3×3) followed by atrous spatial pyramid pooling."""

    def __init__(self, c=32):
        super().__init__()
        self.reduce = nn.Conv2d(c, c, 1, bias=False)
        self.grouped = nn.Conv2d(c, c, 3, padding=1, groups=8, bias=False)
        self.expand = nn.Conv2d(c, c, 1, bias=False)
        self.branches = nn.ModuleList(
            [nn.Conv2d(c, 16, 1)] + [nn.Conv2d(c, 16, 3, padding=d, dilation=d) for d in (2, 4)])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, 16, 1))
        self.fuse = nn.Conv2d(4 * 16, c, 1)

    def forward(self, x):
        x = F.relu(x + self.expand(F.relu(self.grouped(F.relu(self.reduce(x))))))
        pooled = self.pool(x).expand(-1, -1, *x.shape[2:])
        return self.fuse(torch.cat([b(x) for b in self.branches] + [pooled], 1))


def test_dilated_and_grouped_convolutions():
    model, shape = ASPPNeXt(), (2, 32, 12, 12)
    graph = traced(model, shape)
    assert graph.macs == flop_counter_macs(model, torch.randn(shape))
    assert graph["grouped"].macs == 2 * 144 * 32 * 4 * 9 == 331_776  # 32/8 = 4 in per group
    assert graph["branches.2"].macs == 2 * 144 * 16 * 32 * 9 == 1_327_104  # dilation: same MACs
    assert graph["branches.2"].output_shape == (2, 16, 12, 12)


# -- 1-d and 3-d convolutions with their pooling --------------------------------------------------

class AudioNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, 8, 9, stride=2, padding=4), nn.BatchNorm1d(8), nn.ReLU(),
            nn.MaxPool1d(3, stride=2, padding=1),
            nn.Conv1d(8, 16, 5, padding=4, dilation=2, groups=2), nn.ReLU(),
            nn.AvgPool1d(2, ceil_mode=True),
            nn.Conv1d(16, 16, 3, padding=1, groups=16), nn.AdaptiveMaxPool1d(4))
        self.head = nn.Linear(64, 5)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class VideoNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(3, 8, (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2)), nn.BatchNorm3d(8),
            nn.ReLU(), nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.Conv3d(8, 16, 3, padding=1, groups=4), nn.ReLU(),
            nn.AvgPool3d(2, ceil_mode=True), nn.AdaptiveAvgPool3d(1))
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


@pytest.mark.parametrize("model, shape", [(AudioNet(), (2, 1, 400)),
                                          (VideoNet(), (1, 3, 5, 32, 32))],
                         ids=["conv1d", "conv3d"])
def test_1d_and_3d_convolutions_and_pooling(model, shape):
    graph = traced(model, shape)
    x = torch.randn(shape)
    assert graph.macs == flop_counter_macs(model, x)
    eager: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda m, a, out, n=n: eager.__setitem__(n, out.shape))
             for n, m in model.features.named_children()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    for layer in graph.layers:
        if layer.kind is OpKind.POOLING:
            assert layer.output_shape == tuple(eager[layer.module.split(".")[1]]), layer.name


# -- pixel shuffle ------------------------------------------------------------------------------

class ESPCN(nn.Module):
    def __init__(self, scale=3):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.Tanh(),
                                  nn.Conv2d(16, 8, 3, padding=1), nn.Tanh(),
                                  nn.Conv2d(8, scale ** 2, 3, padding=1))
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x):
        return self.shuffle(self.body(x)).clamp(0, 1)


def test_pixel_shuffle():
    model, shape = ESPCN(), (1, 1, 20, 24)
    graph = traced(model, shape)
    assert graph.macs == flop_counter_macs(model, torch.randn(shape))
    assert graph.macs == 480 * (16 * 25 + 8 * 16 * 9 + 9 * 8 * 9) == 1_056_000
    shuffle = graph["shuffle"]
    assert shuffle.kind is OpKind.DATA_MOVEMENT and shuffle.output_shape == (1, 1, 60, 72)
    assert shuffle.input_bytes == shuffle.output_bytes == 9 * 480 * 4


# -- FPN detector with several outputs ------------------------------------------------------------

class FPNDetector(nn.Module):
    def __init__(self, c=16, anchors=3, classes=4):
        super().__init__()
        self.stages = nn.ModuleList([conv_bn_relu(3, c, stride=2), conv_bn_relu(c, 2 * c, stride=2),
                                     conv_bn_relu(2 * c, 4 * c, stride=2)])
        self.lateral = nn.ModuleList(nn.Conv2d(k * c, c, 1) for k in (1, 2, 4))
        self.smooth = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1) for _ in range(3))
        self.cls = nn.Conv2d(c, anchors * classes, 3, padding=1)  # shared across levels
        self.box = nn.Conv2d(c, anchors * 4, 3, padding=1)

    def forward(self, x):
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        top = self.lateral[2](feats[2])
        pyramid = [top]
        for i in (1, 0):
            top = self.lateral[i](feats[i]) + F.interpolate(top, size=feats[i].shape[-2:],
                                                            mode="nearest")
            pyramid.insert(0, top)
        pyramid = [s(p) for s, p in zip(self.smooth, pyramid, strict=True)]
        return {"cls": [self.cls(p) for p in pyramid], "box": [self.box(p) for p in pyramid]}


def test_fpn_detector_with_several_outputs():
    model, shape = FPNDetector(), (1, 3, 64, 48)
    graph = traced(model, shape)
    assert graph.macs == flop_counter_macs(model, torch.randn(shape))
    assert len(graph.outputs) == 6  # classes and boxes at three levels
    out_ids = {t.id for t in graph.outputs}
    heads = [layer for layer in graph.layers if layer.module in ("cls", "box")]
    assert {layer.outputs[0].id for layer in heads} == out_ids
    assert sorted(layer.output_shape for layer in heads if layer.module == "cls") == [
        (1, 12, 8, 6), (1, 12, 16, 12), (1, 12, 32, 24)]
    assert [layer.op for layer in graph.layers].count("upsample_nearest2d") == 2


# -- an LSTM over token ids -----------------------------------------------------------------------

class LSTMClassifier(nn.Module):
    def __init__(self, vocab=200, dim=24, hidden=32, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, ids):
        out, (h, _) = self.lstm(self.embed(ids))
        return self.head(torch.cat([h[-2], h[-1]], dim=1)), out


def test_lstm_classifier():
    model = LSTMClassifier()
    graph = traced(model, ((4, 10), "int64"))
    # oneDNN's LSTM kernel has no FlopCounterMode formula: arithmetic. B·T = 40 steps;
    # layer 1: 2 directions · 4·32·(24 + 32); layer 2 reads 2·32 = 64: 2 · 4·32·(64 + 32)
    lstm = 40 * 2 * 4 * 32 * (24 + 32) + 40 * 2 * 4 * 32 * (64 + 32)
    assert graph["lstm"].macs == lstm == 1_556_480
    assert graph.macs == lstm + 4 * 64 * 3
    assert graph["embed"].weight_elements == 40 * 24 and graph["embed"].macs == 0
    assert graph["cat"].output_shape == (4, 64)


# -- MobileViT-style block: unfold/fold patches around a transformer -----------------------------

class MobileViTBlock(nn.Module):
    def __init__(self, c=16, d=24, patch=2, layers=2):
        super().__init__()
        self.patch = patch
        self.local = nn.Sequential(conv_bn_relu(c, c), nn.Conv2d(c, d, 1, bias=False))
        layer = nn.TransformerEncoderLayer(d, 4, 2 * d, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.project = nn.Conv2d(d, c, 1, bias=False)
        self.fuse = conv_bn_relu(2 * c, c)

    def forward(self, x):
        b, _, h, w = x.shape
        p = self.patch
        y = self.local(x)
        d = y.shape[1]
        # unfold: (B, d·p·p, N) → (B·p·p, N, d): one sequence of N patches per pixel offset
        patches = F.unfold(y, p, stride=p).view(b, d, p * p, -1).permute(0, 2, 3, 1)
        n = patches.shape[2]
        z = self.transformer(patches.reshape(b * p * p, n, d))
        z = z.view(b, p * p, n, d).permute(0, 3, 1, 2).reshape(b, d * p * p, n)
        y = F.fold(z, (h, w), p, stride=p)
        return self.fuse(torch.cat([x, self.project(y)], 1))


def test_mobilevit_block():
    model, shape = MobileViTBlock(), (2, 16, 8, 8)
    graph = traced(model, shape)
    assert {"im2col", "col2im", "scaled_dot_product_attention"} <= {
        layer.op for layer in graph.layers}
    # arithmetic (FlopCounterMode has no formula for the fused CPU encoder kernel):
    pixels = 2 * 64
    convs = pixels * 16 * 16 * 9 + pixels * 24 * 16 + pixels * 16 * 24 + pixels * 16 * 32 * 9
    tokens, seq = 2 * 4 * 16, 16  # B·p·p = 8 sequences of N = 16 patches
    per_layer = (tokens * 24 * 72  # in_proj: Q, K, V
                 + 2 * 8 * 4 * seq * seq * 6  # Q·Kᵀ and A·V over 4 heads of 6
                 + tokens * 24 * 24  # out_proj
                 + 2 * tokens * 24 * 48)  # the feed-forward
    assert graph.macs == convs + 2 * per_layer
