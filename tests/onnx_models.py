"""Small hand-written PyTorch models of the kinds the ONNX reader is checked on, and helpers to
export them as ``torch.onnx.export(..., dynamo=False, opset_version=17)`` does.

Each model is small (a forward pass in milliseconds) but has the ops of its family: a U-Net
(ConvTranspose, Concat, Resize), a GPT-style decoder (token and position embeddings, causal
attention written out or through scaled_dot_product_attention, LayerNorm, GELU, an output head
tied to the embedding), a Swin-style block (shifted windows, relative position bias), dilated
and grouped convolutions, 1-d and 3-d convolutions and pooling, pixel shuffle, an FPN with
several outputs, LSTM/GRU/RNN and a MobileViT-style block.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["export", "randomize", "HELD_OUT", "IdsFromFloat", "gpt", "Recurrent"]


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random parameters and batch-norm statistics: no two tensors equal, so the exporter
    (which merges initializers of equal value, as it does freshly initialised ones) keeps each
    parameter its own."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for b in model.buffers():
            if b.is_floating_point():
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return model.eval()


def export(model: nn.Module, args: Sequence[torch.Tensor], path: Path, *,
           names: Sequence[str] = ("input",), outputs: Sequence[str] | None = None,
           dynamic: dict[str, dict[int, str]] | None = None,
           preserve_batch_norm: bool = False) -> Path:
    """``torch.onnx.export`` with the legacy (TorchScript) exporter at opset 17.

    In eval mode the exporter folds every batch norm that follows a convolution into it;
    ``preserve_batch_norm`` exports them as BatchNormalization nodes instead
    (``training=TrainingMode.PRESERVE`` on a model in eval mode)."""
    extra = {"training": torch.onnx.TrainingMode.PRESERVE} if preserve_batch_norm else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
        torch.onnx.export(model.eval(), tuple(args), str(path), dynamo=False, opset_version=17,
                          input_names=list(names),
                          output_names=list(outputs) if outputs else None,
                          dynamic_axes=dynamic, **extra)
    return path


def _conv_bn_relu(c_in: int, c_out: int, k: int = 3, **kw) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False, **kw),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class UNet(nn.Module):
    """Two down levels, a bottleneck, up by ConvTranspose and by bilinear Resize, skip
    concatenations."""

    def __init__(self, c: int = 8, classes: int = 3):
        super().__init__()
        self.enc1 = nn.Sequential(_conv_bn_relu(3, c), _conv_bn_relu(c, c))
        self.enc2 = nn.Sequential(_conv_bn_relu(c, 2 * c), _conv_bn_relu(2 * c, 2 * c))
        self.mid = _conv_bn_relu(2 * c, 4 * c)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = _conv_bn_relu(4 * c, 2 * c)
        self.reduce = nn.Conv2d(2 * c, c, 1)
        self.dec1 = _conv_bn_relu(2 * c, c)
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
        up = F.interpolate(self.reduce(d2), scale_factor=2, mode="bilinear", align_corners=False)
        return self.head(self.dec1(torch.cat([up, e1], dim=1)))


class DecoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ctx: int, sdpa: bool):
        super().__init__()
        self.heads, self.sdpa = heads, sdpa
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.register_buffer("mask", torch.tril(torch.ones(ctx, ctx, dtype=torch.bool)))

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.shape[-1]))
            att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(-1)
            y = att @ v
        x = x + self.proj(y.transpose(1, 2).contiguous().view(b, t, c))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """A GPT-2-style decoder over token ids: learned positions, pre-norm blocks, an output
    head tied to the token embedding."""

    def __init__(self, vocab: int = 97, ctx: int = 16, dim: int = 32, heads: int = 4,
                 layers: int = 2, sdpa: bool = False):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Embedding(ctx, dim)
        self.blocks = nn.ModuleList(DecoderBlock(dim, heads, ctx, sdpa) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied

    def forward(self, ids):
        x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


def gpt(sdpa: bool = False) -> GPT:
    return GPT(sdpa=sdpa)


class IdsFromFloat(nn.Module):
    """The torch tracer feeds a float tensor: token ids are that tensor cast to int64."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.long())


class WindowAttention(nn.Module):
    """Swin-style (shifted) window attention with a relative position bias table."""

    def __init__(self, dim: int = 16, heads: int = 2, window: int = 4, shift: int = 2):
        super().__init__()
        self.dim, self.heads, self.window, self.shift = dim, heads, window, shift
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                            indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + window - 1
        self.register_buffer("index", rel[..., 0] * (2 * window - 1) + rel[..., 1])
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(),
                                 nn.Linear(2 * dim, dim))

    def forward(self, x):  # x: (B, H, W, C)
        b, h, w, c = x.shape
        ws, n = self.window, self.window * self.window
        y = torch.roll(self.norm(x), shifts=(-self.shift, -self.shift), dims=(1, 2))
        y = y.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        y = y.reshape(-1, n, c)  # (B·windows, N, C)
        qkv = self.qkv(y).reshape(-1, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        bias = self.table[self.index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        att = (att + bias.unsqueeze(0)).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(-1, n, c)
        y = self.proj(y).view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
        y = torch.roll(y.reshape(b, h, w, c), shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + y
        return x + self.mlp(x)


class SwinStage(nn.Module):
    """Patch embedding, a regular and a shifted window block, patch merging."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.embed = nn.Conv2d(3, dim, 4, stride=4)
        self.blocks = nn.Sequential(WindowAttention(dim, shift=0), WindowAttention(dim, shift=2))
        self.merge = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        x = self.blocks(self.embed(x).permute(0, 2, 3, 1))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]],
                      dim=-1)
        return self.merge(x)


class DilatedGrouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=2, dilation=2)
        self.b = nn.Conv2d(16, 32, 3, padding=1, groups=4, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.c = nn.Conv2d(32, 32, 5, padding=4, dilation=2, groups=32)  # depthwise, dilated
        self.d = nn.Conv2d(32, 64, 3, stride=2, groups=16)  # depth multiplier 2 per group pair

    def forward(self, x):
        return self.d(F.relu(self.c(F.relu(self.bn(self.b(F.relu(self.a(x))))))))


class Conv1d3d(nn.Module):
    """A 1-d branch (conv, max pool, avg pool) and a 3-d one (conv, pool) on one input."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 5, stride=2, padding=2)
        self.conv1b = nn.Conv1d(8, 8, 3, padding=1, groups=8)
        self.conv3 = nn.Conv3d(1, 4, 3, padding=1)
        self.bn3 = nn.BatchNorm3d(4)
        self.conv3b = nn.Conv3d(4, 8, (1, 3, 3), stride=(1, 2, 2))

    def forward(self, x):  # x: (B, 3, H, W)
        s = x.flatten(2)  # (B, 3, H·W): a 1-d signal per channel
        s = F.avg_pool1d(F.max_pool1d(F.relu(self.conv1b(F.relu(self.conv1(s)))), 2), 2)
        v = F.relu(self.bn3(self.conv3(x.unsqueeze(1))))  # (B, 1, 3, H, W) volume
        v = F.avg_pool3d(F.max_pool3d(v, (1, 2, 2)), (1, 2, 2))
        v = self.conv3b(v).mean((2, 3, 4))
        return torch.cat([s.mean(-1), v], dim=1)


class PixelShuffleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12 * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.out = nn.Conv2d(12, 3, 3, padding=1)

    def forward(self, x):
        return self.out(self.shuffle(F.relu(self.conv(x))))


class FPN(nn.Module):
    """A three-level backbone, lateral 1×1s, nearest-neighbour top-down path, 3×3 outputs and
    a shared class/box head: six outputs."""

    def __init__(self, c: int = 8, width: int = 16):
        super().__init__()
        self.c1 = _conv_bn_relu(3, c, stride=2)
        self.c2 = _conv_bn_relu(c, 2 * c, stride=2)
        self.c3 = _conv_bn_relu(2 * c, 4 * c, stride=2)
        self.lat = nn.ModuleList(nn.Conv2d(k * c, width, 1) for k in (1, 2, 4))
        self.smooth = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(3))
        self.cls = nn.Conv2d(width, 4, 3, padding=1)
        self.box = nn.Conv2d(width, 4, 3, padding=1)

    def forward(self, x):
        f1 = self.c1(x)
        f2 = self.c2(f1)
        f3 = self.c3(f2)
        p3 = self.lat[2](f3)
        p2 = self.lat[1](f2) + F.interpolate(p3, scale_factor=2.0, mode="nearest")
        p1 = self.lat[0](f1) + F.interpolate(p2, scale_factor=2.0, mode="nearest")
        maps = [s(p) for s, p in zip(self.smooth, (p1, p2, p3), strict=True)]
        return (*(self.cls(m) for m in maps), *(self.box(m).sigmoid() for m in maps))


class Recurrent(nn.Module):
    """A two-layer bidirectional LSTM, a GRU and a tanh RNN over a (B, T, C) sequence."""

    def __init__(self, features: int = 8, hidden: int = 16):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=2, bidirectional=True,
                            batch_first=True)
        self.gru = nn.GRU(2 * hidden, hidden, batch_first=True)
        self.rnn = nn.RNN(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 4)

    def forward(self, x):
        y, _ = self.lstm(x)
        y, _ = self.gru(y)
        y, _ = self.rnn(y)
        return self.head(y[:, -1])


class MobileViTBlock(nn.Module):
    """MobileViT (Mehta & Rastegari 2022): local 3×3 and 1×1 convs, unfold into 2×2 patches,
    a transformer over the patches (SDPA, SiLU MLP), fold back, 1×1 projection, concatenation
    with the input and a 3×3 fusion conv."""

    def __init__(self, c: int = 16, d: int = 24, patch: int = 2, heads: int = 2):
        super().__init__()
        self.stem = _conv_bn_relu(3, c, stride=2)
        self.local = nn.Sequential(_conv_bn_relu(c, c), nn.Conv2d(c, d, 1, bias=False))
        self.patch, self.heads = patch, heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, 2 * d), nn.SiLU(), nn.Linear(2 * d, d))
        self.project = _conv_bn_relu(d, c, 1)
        self.fuse = _conv_bn_relu(2 * c, c)
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        y = self.local(x)
        b, d, h, w = y.shape
        p = self.patch
        # unfold: (B, d, H, W) → (B·p·p, H·W/p², d)
        t = y.reshape(b, d, h // p, p, w // p, p).permute(0, 3, 5, 2, 4, 1)
        t = t.reshape(b * p * p, (h // p) * (w // p), d)
        n = t.shape[1]
        qkv = self.qkv(self.norm1(t)).reshape(-1, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(-1, n, d)
        t = t + self.out(a)
        t = t + self.ffn(self.norm2(t))
        # fold back
        y = t.reshape(b, p, p, h // p, w // p, d).permute(0, 5, 3, 1, 4, 2).reshape(b, d, h, w)
        y = self.fuse(torch.cat([x, self.project(y)], dim=1))
        return self.head(y.mean((2, 3)))


#: name → (model factory, image input (N, C, H, W) to export with, input to read back at).
HELD_OUT: dict[str, tuple] = {
    "unet": (UNet, (1, 3, 32, 32), (2, 3, 48, 48)),
    "swin": (SwinStage, (1, 3, 32, 32), (1, 3, 32, 32)),
    "dilated_grouped": (DilatedGrouped, (1, 3, 24, 24), (2, 3, 40, 40)),
    "conv1d_conv3d": (Conv1d3d, (1, 3, 16, 16), (2, 3, 24, 24)),
    "pixel_shuffle": (PixelShuffleNet, (1, 3, 16, 16), (1, 3, 24, 24)),
    "fpn": (FPN, (1, 3, 32, 32), (2, 3, 64, 64)),
    "mobilevit": (MobileViTBlock, (1, 3, 32, 32), (1, 3, 48, 48)),
}
