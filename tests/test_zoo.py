"""Tests of the model zoo (roofline.zoo): registry, published sizes, widths and resolutions.

Expected numbers come from models/published_models.csv (each row cites its source) or from
arithmetic written next to them; MACs are FlopCounterMode FLOPs // 2, counted on the meta
device (checked against a real-tensor count in test_meta_mac_count_equals_real_count).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from roofline import zoo
from roofline.errors import UnknownNameError, UsageError
from roofline.zoo.layers import (
    MultiQueryAttention,  # noqa: E402
    make_divisible,  # noqa: E402
)

import kit

# The MobileNets V1–V4: the default comparison set (zoo.toml compare_default, default true).
MOBILENETS = [
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "mobilenet_v4_conv_small",
    "mobilenet_v4_conv_medium",
    "mobilenet_v4_conv_large",
    "mobilenet_v4_hybrid_medium",
    "mobilenet_v4_hybrid_large",
]

# The other networks of public_latency.csv (compare_default = false), in catalogue order.
OTHERS = [
    "mobilenet_v3_large_minimalistic",
    "mobilenet_v3_small_minimalistic",
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "efficientnet_lite3",
    "efficientnet_lite4",
    "mnasnet_a1",
    "mnasnet",
    "mobilenet_edgetpu",
    "mobilenet_edgetpu_v2_xs",
    "mobilenet_edgetpu_v2_s",
    "mobilenet_edgetpu_v2_m",
    "mobilenet_edgetpu_v2_l",
]

ZOO_ORDER = MOBILENETS[:4] + OTHERS[:2] + MOBILENETS[4:] + OTHERS[2:]

FAMILIES = {"MobileNetV1", "MobileNetV2", "MobileNetV3", "MobileNetV4", "EfficientNet-Lite",
            "MnasNet", "MobilenetEdgeTPU"}


def build(name: str, width: float = 1.0, meta: bool = True) -> nn.Module:
    if meta:
        with torch.device("meta"):
            return zoo.create_model(name, width).eval()
    return zoo.create_model(name, width).eval()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(module: nn.Module, shape: tuple[int, ...], meta: bool = True) -> int:
    x = torch.empty(shape, device="meta") if meta else torch.randn(shape)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    return counter.get_total_flops() // 2


# --- registry -------------------------------------------------------------------------------


def test_list_models_in_zoo_order():
    assert zoo.list_models() == ZOO_ORDER


def test_model_info_fields():
    expected_resolution = {
        "mobilenet_v4_conv_medium": 256,
        "mobilenet_v4_hybrid_medium": 256,
        "mobilenet_v4_conv_large": 384,
        "mobilenet_v4_hybrid_large": 384,
        # EfficientNet-Lite README: the models' input sizes.
        "efficientnet_lite1": 240,
        "efficientnet_lite2": 260,
        "efficientnet_lite3": 280,
        "efficientnet_lite4": 300,
    }
    for name in ZOO_ORDER:
        info = zoo.get_model_info(name)
        assert info.name == name
        assert info.family in FAMILIES
        assert info.compare_default == (name in MOBILENETS)
        assert info.default_resolution == expected_resolution.get(name, 224)
        assert info.description and "\n" not in info.description
        rows = [fig for model, fig in zoo.published_figures() if model == name]
        assert list(info.published) == rows and rows


def test_published_lookup():
    v2 = zoo.get_model_info("mobilenet_v2")
    assert v2.top1(1.0, 224) == 72.0  # V2 paper Table 4
    assert v2.top1(0.75 + 1e-12, 224) == 69.8  # float widths compare with tolerance 1e-9
    assert v2.top1(0.75 + 1e-6, 224) is None
    assert v2.top1(1.0, 192) is None
    assert "torchvision" in v2.top1_source(1.0, 224)
    assert v2.top1_source(3.0, 224) is None
    v1 = zoo.get_model_info("mobilenet_v1")
    assert v1.figure(0.5, 160).macs == 76_524_800  # V1 paper Table 9: 76M


def test_catalogue_names_a_factory_for_every_model():
    # Each zoo.toml entry names the module whose function of the same name builds it.
    import importlib

    for name in zoo.list_models():
        info = zoo.get_model_info(name)
        module = importlib.import_module(f"roofline.zoo.{info.module}")
        assert callable(getattr(module, name)), name
    assert zoo.list_models() == ZOO_ORDER


def test_metadata_needs_no_torch():
    # Names, families, default resolutions and published top-1 are data: reading them imports
    # neither torch nor any network (a warm `compare` never pays for `import torch`).
    import subprocess
    import sys

    code = ("import sys; from roofline import zoo; "
            "[zoo.get_model_info(n).top1(1.0, 224) for n in zoo.list_models()]; "
            "print(sorted(m for m in sys.modules "
            "if m == 'torch' or m.startswith('roofline.zoo.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['roofline.zoo.registry']"


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError) as info:
        zoo.get_model_info("mobilenet_v5")
    assert "mobilenet_v" in str(info.value)
    assert info.value.suggestions and all(
        s.startswith("mobilenet_v") for s in info.value.suggestions
    )
    with pytest.raises(UnknownNameError):
        zoo.create_model("resnet50")


@pytest.mark.parametrize("width", [0, -1, 0.0, float("nan"), float("inf"), -float("inf"), "x"])
def test_bad_width_is_a_usage_error(width):
    with pytest.raises(UsageError, match="width must be a finite number > 0, got"):
        zoo.create_model("mobilenet_v1", width)


# --- every model builds and runs ---------------------------------------------------------------


@pytest.mark.parametrize("name", kit.zoo_params(ZOO_ORDER))
def test_forward_at_default_resolution(name):
    torch.manual_seed(0)
    model = build(name, meta=False)
    size = zoo.get_model_info(name).default_resolution
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        first, second = model(x), model(x)
    assert first.shape == (1, 1000)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)  # eval(): running-stat BN, identity dropout


@pytest.mark.parametrize("name", ZOO_ORDER)
def test_meta_construction(name):
    model = build(name, 1.37)
    assert all(p.is_meta for p in model.parameters())
    assert all(b.is_meta for b in model.buffers())


@pytest.mark.parametrize("name", kit.zoo_params(ZOO_ORDER))
def test_widths_and_resolutions(name):
    for width in (0.3, 1.37, 2.5):
        model = build(name, width)
        for size in (97, 160, 320):
            out = model(torch.empty(1, 3, size, size, device="meta"))
            assert out.shape == (1, 1000)
    small = build(name, 0.3, meta=False)  # a small real run at an odd size
    with torch.no_grad():
        out = small(torch.randn(1, 3, 97, 97))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", ZOO_ORDER[1:])
def test_v2_to_v4_channels_are_multiples_of_8(name):
    for path, module in build(name, 1.37).named_modules():
        # MnasNet's SE squeezes to int(0.25 · C_in) unrounded, as its reference does.
        if name == "mnasnet_a1" and ".se." in path:
            continue
        if isinstance(module, nn.Conv2d):
            assert module.in_channels % 8 == 0 or module.in_channels == 3
            assert module.out_channels % 8 == 0


def test_num_classes():
    with torch.device("meta"):
        model = zoo.create_model("mobilenet_v4_hybrid_medium", num_classes=10)
    assert model(torch.empty(2, 3, 64, 64, device="meta")).shape == (2, 10)


# --- published sizes ---------------------------------------------------------------------------


def _row_id(row) -> str:
    name, fig = row
    return f"{name}-{fig.width}-{fig.resolution}"


def _first_of_each_model_fast(items, ids) -> list:
    """Parameters with the first item of each model in the fast lane, the others marked slow
    (every model's published size is checked in both lanes)."""
    seen: set[str] = set()
    out = []
    for item, name in zip(items, ids, strict=True):
        model = item[0]
        out.append(pytest.param(item, id=name, marks=pytest.mark.slow if model in seen else ()))
        seen.add(model)
    return out


@pytest.mark.parametrize("row", _first_of_each_model_fast(
    zoo.published_figures(), [_row_id(r) for r in zoo.published_figures()]))
def test_published_params_and_macs(row):
    name, fig = row
    model = build(name, fig.width)
    params = count_params(model)
    macs = count_macs(model, (1, 3, fig.resolution, fig.resolution))
    params_tol, macs_tol = fig.tolerances
    if params_tol == 0:
        assert params == fig.params
    else:
        assert abs(params - fig.params) <= params_tol * fig.params
    if macs_tol == 0:
        assert macs == fig.macs
    else:
        assert abs(macs - fig.macs) <= macs_tol * fig.macs


def test_meta_mac_count_equals_real_count():
    model = build("mobilenet_v3_small", meta=False)
    shape = (1, 3, 224, 224)
    assert count_macs(model, shape, meta=False) == count_macs(build("mobilenet_v3_small"), shape)


# --- closed-form checks ------------------------------------------------------------------------


def test_v1_first_layer():
    stem = build("mobilenet_v1").features[0]
    # 3×3×3×32 conv, no bias + BN γ, β on 32 channels (V1 paper Table 1, row 1).
    assert count_params(stem) == 3 * 3 * 3 * 32 + 2 * 32 == 928
    # 112×112 outputs × 27 MACs each × 32 filters.
    assert count_macs(stem, (1, 3, 224, 224)) == 112 * 112 * 27 * 32 == 10_838_016


def test_v2_inverted_residual():
    # features.2: first block of the (t=6, c=24, n=2, s=2) row: 16 → 96 → 24, 112² → 56².
    block = build("mobilenet_v2").features[2]
    expand = 16 * 96 + 2 * 96  # 1×1 conv + BN
    depthwise = 9 * 96 + 2 * 96
    project = 96 * 24 + 2 * 24
    assert count_params(block) == expand + depthwise + project == 5_136
    macs = 112 * 112 * 16 * 96 + 56 * 56 * 9 * 96 + 56 * 56 * 96 * 24
    assert macs == 19_267_584 + 2_709_504 + 7_225_344 == 29_202_432
    assert count_macs(block, (1, 16, 112, 112)) == macs


def test_mobile_mqa_block():
    # Hybrid-M blocks.8: Mobile MQA at 16×16 (256 / 2⁴) on 160 channels, 4 heads, key_dim 64,
    # K/V down-sampled by a 3×3 stride-2 depthwise to 8×8.
    model = build("mobilenet_v4_hybrid_medium")
    block = model.blocks[8]
    assert isinstance(block.attn.query, nn.Conv2d)  # qualified name blocks.8.attn.query
    heads, key_dim, n, m, c = 4, 64, 16 * 16, 8 * 8, 160
    params = (
        2 * c  # input BN
        + c * heads * key_dim  # query
        + 2 * (9 * c + 2 * c + c * key_dim)  # key and value: DW + BN + 1×1
        + heads * key_dim * c  # output
        + c  # layer scale
    )
    assert count_params(block) == params == 106_400
    attention = heads * n * m * key_dim * 2  # Q·Kᵀ and A·V
    assert attention == 8_388_608
    convs = 2 * n * c * heads * key_dim + 2 * (m * 9 * c + m * c * key_dim)
    assert convs == 22_466_560
    x = torch.empty(1, c, 16, 16, device="meta")
    counter = FlopCounterMode(display=False)
    with counter:
        block(x)
    counts = counter.get_flop_counts()["Global"]
    assert counts[torch.ops.aten.bmm] // 2 == attention  # one bmm for Q·Kᵀ, one for A·V
    assert counter.get_total_flops() // 2 == attention + convs


def test_multi_query_attention_matches_per_head_reference():
    torch.manual_seed(0)
    attn = MultiQueryAttention(16, 24, heads=3, key_dim=8, kv_stride=2, kv_dw_kernel=3).eval()
    x = torch.randn(2, 16, 5, 7)
    with torch.no_grad():
        ours = attn(x)
        q = attn.query(x).flatten(2)  # (B, h·d, N)
        k = attn.key(attn.key_down(x)).flatten(2)  # (B, d, M)
        v = attn.value(attn.value_down(x)).flatten(2)
        heads = []
        for h in range(3):
            qh = q[:, h * 8 : (h + 1) * 8]  # (B, d, N)
            weights = torch.softmax(qh.transpose(1, 2) @ k / math.sqrt(8), dim=-1)  # (B, N, M)
            heads.append((weights @ v.transpose(1, 2)).transpose(1, 2))  # (B, d, N)
        reference = attn.output(torch.cat(heads, 1).reshape(2, 24, 5, 7))
    assert torch.allclose(ours, reference, atol=1e-5)


def test_make_divisible():
    # max(8, int(v + 4) // 8 · 8), plus 8 if that is below 0.9·v (V4 spec).
    assert make_divisible(18) == 24  # 16 < 16.2
    assert make_divisible(11.2) == 16  # 8 < 10.08
    assert make_divisible(5.6) == 8
    assert make_divisible(134.4) == 136
    assert make_divisible(1280 * 1.4) == 1792


def test_block_naming_and_activations():
    names = {n for n, _ in build("mobilenet_v4_hybrid_large").named_modules()}
    assert {"blocks.11.attn.query", "blocks.11.attn.key_down.conv", "head.classifier"} <= names
    hybrid_large = build("mobilenet_v4_hybrid_large")
    acts = {type(m) for m in hybrid_large.modules() if isinstance(m, (nn.ReLU, nn.GELU))}
    assert acts == {nn.GELU}
    v3 = build("mobilenet_v3_large")
    assert {type(m) for m in v3.features[4].modules()} >= {nn.ReLU, nn.Hardsigmoid}
    assert "features.1.dw.conv" in {n for n, _ in build("mobilenet_v1").named_modules()}
    assert len(build("mobilenet_v4_conv_small").blocks) == 18  # rows of paper Table 11


# --- the networks of public_latency.csv ----------------------------------------------------------

# Every (model, width, resolution) of the zoo's new families that the published-latency data
# (shared reference public_latency.csv) measures; EfficientNet-Lite rows there give no
# resolution, their own input sizes apply (tensorflow/tpu EfficientNet-Lite README).
PUBLIC_LATENCY_VARIANTS = (
    [("mnasnet_a1", w, r) for w in (0.35, 0.5, 0.75, 1.0, 1.4) for r in (96, 128, 160, 192, 224)]
    + [("mnasnet", w, 224) for w in (0.5, 0.75, 1.3)]
    + [("mnasnet", 1.0, r) for r in (96, 128, 160, 192, 224)]
    + [("mobilenet_edgetpu", w, 224) for w in (0.75, 1.0, 1.25, 1.5, 1.75)]
    + [(f"mobilenet_edgetpu_v2_{v}", 1.0, 224) for v in ("xs", "s", "m", "l")]
    + [(f"efficientnet_lite{i}", 1.0, r) for i, r in enumerate((224, 240, 260, 280, 300))]
    + [("mobilenet_v3_large_minimalistic", 1.0, 224), ("mobilenet_v3_small_minimalistic", 1.0, 224)]
)


@pytest.mark.parametrize("variant", _first_of_each_model_fast(
    PUBLIC_LATENCY_VARIANTS, [f"{m}-{w}-{r}" for m, w, r in PUBLIC_LATENCY_VARIANTS]))
def test_public_latency_variants_build_and_run(variant):
    name, width, size = variant
    out = build(name, width)(torch.empty(1, 3, size, size, device="meta"))
    assert out.shape == (1, 1000)


def test_compare_default_stays_the_published_mobilenets():
    from roofline.sources.variant import default_variants

    variants = default_variants()
    assert len(variants) == 33  # MobileNet V1 16 + V2 7 + V3 5 + V4 5 rows with a top-1
    assert {v.name for v in variants} == set(MOBILENETS)
    for name in OTHERS:  # named explicitly, their published variants with a top-1 resolve
        assert not zoo.get_model_info(name).compare_default


def test_edgetpu_first_blocks():
    model = build("mobilenet_edgetpu")
    # V3_EDGETPU row 1: expansion 1, no depthwise → a lone 1×1 linear projection 32 → 16.
    first = model.features[1]
    assert count_params(first) == 32 * 16 + 2 * 16 == 544
    assert first.act is None
    assert count_macs(first, (1, 32, 112, 112)) == 112 * 112 * 32 * 16 == 6_422_528
    # Row 2: fused, 3×3 s2 full conv 16 → make_divisible(16·8) = 128, 1×1 projection → 32.
    fused = model.features[2]
    assert count_params(fused) == 9 * 16 * 128 + 2 * 128 + 128 * 32 + 2 * 32 == 22_848
    macs = 56 * 56 * (9 * 16 * 128 + 128 * 32)
    assert macs == 3136 * 22_528 == 70_647_808
    assert count_macs(fused, (1, 16, 112, 112)) == macs
    # Row 14 (96 → 96, stride 1, use_residual False) has no shortcut; row 13 has one.
    assert not model.features[14].use_residual and model.features[13].use_residual


def test_edgetpu_v2_group_conv():
    # V2-S stage 1, second block: 48 → 4·48 = 192 channels in groups of 64 = 3 groups.
    block = build("mobilenet_edgetpu_v2_s").features[3]
    assert block.expand.conv.groups == 3
    assert count_params(block) == 192 * 16 * 9 + 2 * 192 + 192 * 48 + 2 * 48 == 37_344
    for width in (0.3, 1.37, 2.5):  # other widths still make whole groups
        build("mobilenet_edgetpu_v2_l", width)


def test_mnasnet_a1_squeeze_excite_block():
    # features.4: first MBConv3 k5×5 SE row: 24 → 72 → 40, 56² → 28², SE squeeze int(24/4) = 6.
    block = build("mnasnet_a1").features[4]
    assert block.se.reduce.out_channels == 6
    assert isinstance(block.se.gate, nn.Sigmoid) and isinstance(block.se.act, nn.ReLU)
    expand = 24 * 72 + 2 * 72
    depthwise = 25 * 72 + 2 * 72
    se = 72 * 6 + 6 + 6 * 72 + 72  # both 1×1 convs with bias
    project = 72 * 40 + 2 * 40
    assert count_params(block) == expand + depthwise + se + project == 7_718
    macs = 56 * 56 * 24 * 72 + 28 * 28 * 25 * 72 + 2 * 72 * 6 + 28 * 28 * 72 * 40
    assert macs == 5_419_008 + 1_411_200 + 864 + 2_257_920 == 9_088_992
    assert count_macs(block, (1, 24, 56, 56)) == macs
    assert not any(isinstance(m, nn.Hardswish) for m in build("mnasnet").modules())
    assert not any(isinstance(m, nn.Sigmoid) for m in build("mnasnet").modules())  # B1: no SE


def test_efficientnet_lite_scaling():
    # B0 repeats (1, 2, 2, 3, 3, 4, 1); Lite keeps the first and last stage at 1 and rounds
    # the others up: lite4 (depth 1.8) → 1 + 4 + 4 + 6 + 6 + 8 + 1 = 30 MBConv blocks.
    lite0, lite4 = build("efficientnet_lite0"), build("efficientnet_lite4")
    assert len(lite0.features) == 1 + 16 + 1  # stem + blocks + 1×1 head conv
    assert len(lite4.features) == 1 + 30 + 1
    # Fixed stem and head: 32 and 1280 at width coefficient 1.4.
    assert lite4.features[0].conv.out_channels == 32
    assert lite4.features[-1].conv.out_channels == 1280
    assert lite4.features[1].project.conv.out_channels == 24  # make_divisible(16 · 1.4) = 24
    acts = {type(m) for m in lite4.modules() if isinstance(m, (nn.ReLU, nn.ReLU6, nn.SiLU))}
    assert acts == {nn.ReLU6}
    assert not any(hasattr(m, "se") and m.se is not None for m in lite4.modules())


def test_minimalistic_has_no_se_hardswish_or_5x5():
    for name in ("mobilenet_v3_large_minimalistic", "mobilenet_v3_small_minimalistic"):
        model = build(name)
        kinds = {type(m) for m in model.modules()}
        assert nn.Hardswish not in kinds and nn.Hardsigmoid not in kinds
        kernels = {m.kernel_size for m in model.modules() if isinstance(m, nn.Conv2d)}
        assert kernels == {(1, 1), (3, 3)}
