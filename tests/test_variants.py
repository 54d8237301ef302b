"""Tests of model specs (roofline.sources.variant): the NAME[@WIDTH][:RESOLUTION] grammar, zoo
variants, and user models loaded from ``path/to/file.py:callable`` or ``package.module:callable``.
"""

from __future__ import annotations

import os
import sys
import textwrap
import uuid

import pytest

from roofline import zoo
from roofline.core.graph import OpKind
from roofline.errors import ModelLoadError, TraceError, UnknownNameError, UsageError
from roofline.sources.variant import (
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    Variant,
    check_batch,
    check_resolution,
    check_width,
    parse_variant,
)

# -- the grammar ----------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, kwargs, expected", [
    ("mobilenet_v2@0.75:160", {}, Variant("mobilenet_v2", 0.75, 160, 1)),
    ("mobilenet_v2", {}, Variant("mobilenet_v2", None, None, 1)),
    ("mobilenet_v2@0.75", {}, Variant("mobilenet_v2", 0.75, None, 1)),
    ("mobilenet_v2:160", {}, Variant("mobilenet_v2", None, 160, 1)),
    ("  mobilenet_v2@1:0224 ", {}, Variant("mobilenet_v2", 1.0, 224, 1)),
    # keywords fill what the spec leaves out, and may repeat what it says
    ("mobilenet_v2", {"width": 0.5, "resolution": 128, "batch": 4},
     Variant("mobilenet_v2", 0.5, 128, 4)),
    ("mobilenet_v2@0.75:160", {"width": 0.75, "resolution": 160},
     Variant("mobilenet_v2", 0.75, 160, 1)),
    ("mobilenet_v2", {"width": "0.5", "resolution": "96", "batch": "2"},
     Variant("mobilenet_v2", 0.5, 96, 2)),
])
def test_parse_variant(spec, kwargs, expected):
    assert parse_variant(spec, **kwargs) == expected


def test_defaults_come_from_the_zoo():
    v = parse_variant("mobilenet_v4_conv_medium")
    assert (v.width, v.resolution, v.batch) == (None, None, 1)
    assert (v.effective_width, v.effective_resolution) == (1.0, 256)  # the model's own size
    assert v.input_shape == (1, 3, 256, 256)
    assert v.label == "mobilenet_v4_conv_medium:256"
    assert v.display_name == "mobilenet_v4_conv_medium 1× 256px"
    assert v.source.kind == "zoo"
    assert v.top1() == 79.9  # MNv4 paper Table 6 (published_models.csv)


@pytest.mark.parametrize("spec, label, display, top1", [
    ("mobilenet_v2@0.75", "mobilenet_v2@0.75:224", "mobilenet_v2 0.75× 224px", 69.8),
    ("mobilenet_v1@0.5:160", "mobilenet_v1@0.5:160", "mobilenet_v1 0.5× 160px", 60.2),
    ("mobilenet_v2@1.0:224", "mobilenet_v2:224", "mobilenet_v2 1× 224px", 72.0),
    ("mobilenet_v2@0.75:160", "mobilenet_v2@0.75:160", "mobilenet_v2 0.75× 160px", None),
    ("mobilenet_v3_large@1.37", "mobilenet_v3_large@1.37:224", "mobilenet_v3_large 1.37× 224px",
     None),
])
def test_label_display_name_and_top1(spec, label, display, top1):
    v = parse_variant(spec)
    assert v.label == label and v.display_name == display and v.top1() == top1


def test_label_round_trips():
    for spec in ("mobilenet_v2@0.75:160", "mobilenet_v4_hybrid_large@1.5:320"):
        v = parse_variant(spec)
        assert parse_variant(v.label) == v


@pytest.mark.parametrize("spec, kwargs, message", [
    ("mobilenet_v2@0.75", {"width": 0.5}, "names width 0.75 but --width is 0.5"),
    ("mobilenet_v2:160", {"resolution": 192}, "names resolution 160 but --resolution is 192"),
])
def test_spec_and_keywords_must_agree(spec, kwargs, message):
    with pytest.raises(UsageError, match=message):
        parse_variant(spec, **kwargs)


@pytest.mark.parametrize("spec, kwargs, message", [
    ("mobilenet_v2@0", {}, "width must be a finite number > 0, got '0'"),
    ("mobilenet_v2@-1", {}, "width must be a finite number > 0, got '-1'"),
    ("mobilenet_v2@nan", {}, "width must be a finite number > 0, got 'nan'"),
    ("mobilenet_v2@inf", {}, "width must be a finite number > 0, got 'inf'"),
    ("mobilenet_v2@wide", {}, "width must be a finite number > 0, got 'wide'"),
    ("mobilenet_v2", {"width": 0}, "width must be a finite number > 0, got 0"),
    ("mobilenet_v2:4", {}, f"resolution must be from {MIN_RESOLUTION} to {MAX_RESOLUTION} "
                           "pixels, got 4"),
    ("mobilenet_v2:8193", {}, "resolution must be from 8 to 8192 pixels, got 8193"),
    ("mobilenet_v2", {"resolution": 7}, "resolution must be from 8 to 8192 pixels, got 7"),
    ("mobilenet_v2", {"resolution": 7.5}, "resolution must be a whole number of pixels"),
    ("mobilenet_v2", {"resolution": "big"}, "resolution must be a whole number of pixels"),
    ("mobilenet_v2", {"batch": 0}, "batch must be a whole number >= 1, got 0"),
    ("mobilenet_v2", {"batch": -2}, "batch must be a whole number >= 1, got -2"),
    ("mobilenet_v2", {"batch": 1.5}, "batch must be a whole number >= 1, got 1.5"),
    ("", {}, "empty or malformed model spec ''"),
    ("   ", {}, "empty or malformed model spec ''"),
])
def test_bad_numbers_are_usage_errors(spec, kwargs, message):
    with pytest.raises(UsageError) as info:
        parse_variant(spec, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_checks_accept_the_edges():
    assert check_width("0.001") == 0.001
    assert check_resolution(MIN_RESOLUTION) == 8 and check_resolution("8192") == 8192
    assert check_resolution(224.0) == 224
    assert check_batch("64") == 64


def test_unknown_zoo_name_suggests_close_ones():
    with pytest.raises(UnknownNameError) as info:
        parse_variant("mobilenet_v22@0.5")
    assert str(info.value).startswith("unknown model 'mobilenet_v22'; did you mean mobilenet_v2")
    with pytest.raises(UnknownNameError, match=r"valid: efficientnet_lite0, .* \(23 in all\)"):
        parse_variant("vgg16")  # close to no zoo name ("resnet50" is to mnasnet)


def test_zoo_variant_traces_at_its_width_and_resolution():
    v = parse_variant("mobilenet_v1@0.5:160")
    graph = v.trace()
    figure = zoo.get_model_info("mobilenet_v1").figure(0.5, 160)
    assert (graph.params, graph.macs) == (figure.params, figure.macs)  # V1 paper Table 9
    assert graph.input_shape == (1, 3, 160, 160)
    assert v.trace("int8").weight_bytes < graph.weight_bytes
    assert v.trace(cache=False) == graph
    batch = parse_variant("mobilenet_v1@0.5:160", batch=3).trace()
    assert batch.macs == 3 * graph.macs and batch.input_shape == (3, 3, 160, 160)


# -- user models ----------------------------------------------------------------------------------

NETS = """
import torch
from torch import nn


def build(width=1.0):
    c = max(1, round(8 * width))
    return nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(c, 10))


def fixed():
    return build()


def flexible(**options):
    return build(**options)


class Net(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        self.body = build(width)

    def forward(self, x):
        return self.body(x)


instance = nn.Conv2d(3, 5, 1)
CONSTANT = 3


def broken():
    raise RuntimeError("no weights here\\nsecond line")


def not_a_module():
    return 42


def valued():
    # reads a tensor value while building: impossible on the meta device
    channels = int(torch.ones(6).sum().item())
    return nn.Conv2d(3, channels, 1)


class Peeks(nn.Module):
    def forward(self, x):
        return x * x.mean().item()


def peeks():
    return Peeks()
"""


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(NETS)
    return path


def test_user_file_model(nets):
    v = parse_variant(f"{nets}:build@0.5:32")
    assert v == Variant(f"{nets}:build", 0.5, 32, 1)
    assert v.source.kind == "python" and v.top1() is None
    assert v.label == f"{nets}:build@0.5:32"
    assert v.display_name == "build 0.5× 32px"
    graph = v.trace()
    conv = graph["0"]
    # width 0.5: round(8 · 0.5) = 4 channels
    assert conv.output_shape == (1, 4, 32, 32)
    assert conv.macs == 4 * 32 * 32 * 3 * 3 * 3 == 110_592
    assert graph["4"].macs == 4 * 10 == 40
    assert graph.params == (4 * 27 + 4) + (4 * 10 + 10) == 162
    assert graph.model_name == v.label


def test_user_model_defaults(nets):
    v = parse_variant(f"{nets}:fixed")
    assert (v.width, v.effective_width, v.effective_resolution) == (None, 1.0, 224)
    assert v.label == f"{nets}:fixed:224" and v.display_name == "fixed 1× 224px"
    assert v.trace()["0"].output_shape == (1, 8, 224, 224)


@pytest.mark.parametrize("factory, channels", [("flexible", 12), ("Net", 12)])
def test_factories_taking_width(nets, factory, channels):
    graph = parse_variant(f"{nets}:{factory}@1.5:16").trace()
    conv = next(layer for layer in graph.layers if layer.kind is OpKind.CONV)
    assert conv.output_shape == (1, channels, 16, 16)  # round(8 · 1.5) = 12


def test_module_instance(nets):
    graph = parse_variant(f"{nets}:instance:8").trace()
    assert graph.macs == 5 * 8 * 8 * 3 == 960
    with pytest.raises(ModelLoadError, match="is a module instance; it cannot take a width"):
        parse_variant(f"{nets}:instance@0.5").build()


def test_factory_that_reads_values_is_built_for_real(nets):
    # it cannot be built on the meta device; the tracer never needs its values anyway
    graph = parse_variant(f"{nets}:valued:8").trace()
    assert graph.layers[0].output_shape == (1, 6, 8, 8)


@pytest.mark.parametrize("attr, message", [
    ("broken", "raised RuntimeError: no weights here"),
    ("not_a_module", "returned a int, not a torch.nn.Module"),
    ("CONSTANT", "is not callable (it is a int)"),
    ("buld", "has no attribute 'buld'; did you mean build?"),
])
def test_bad_factories(nets, attr, message):
    with pytest.raises(ModelLoadError) as info:
        parse_variant(f"{nets}:{attr}").build()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_width_for_a_factory_without_one(nets):
    with pytest.raises(ModelLoadError, match="takes no 'width' argument; drop --width"):
        parse_variant(f"{nets}:fixed@0.5").build()


def test_model_reading_values_while_running(nets):
    with pytest.raises(TraceError, match="cannot trace op 'item' in module <root>"):
        parse_variant(f"{nets}:peeks:8").trace()


@pytest.mark.parametrize("text, message", [
    ("def build(:\n", "importing .* failed: SyntaxError"),
    ("import no_such_module_for_roofline_tests\n",
     "importing .* failed: ModuleNotFoundError: No module named"),
])
def test_user_files_that_do_not_import(tmp_path, text, message):
    path = tmp_path / "bad.py"
    path.write_text(text)
    with pytest.raises(ModelLoadError, match=message):
        parse_variant(f"{path}:build").build()


def test_user_specs_checked_up_front(tmp_path):
    with pytest.raises(ModelLoadError, match="needs a callable"):
        parse_variant(str(tmp_path / "nets.py"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        parse_variant(f"{tmp_path / 'missing.py'}:build")
    with pytest.raises(ModelLoadError, match="'3x' in .* is not a Python name"):
        parse_variant(f"{tmp_path / 'nets.py'}:3x")


def test_editing_a_user_file_retraces_it(nets):
    first = parse_variant(f"{nets}:fixed:8").trace()
    nets.write_text(NETS.replace("round(8 * width)", "round(24 * width)"))
    stat = nets.stat()
    os.utime(nets, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = parse_variant(f"{nets}:fixed:8").trace()
    assert first.layers[0].output_shape == (1, 8, 8, 8)
    assert second.layers[0].output_shape == (1, 24, 8, 8)


@pytest.fixture
def package(tmp_path, monkeypatch):
    name = f"roofline_user_pkg_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "nets.py").write_text(textwrap.dedent(NETS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_package_module_model(package):
    v = parse_variant(f"{package}.nets:build@2:16")
    assert v.source.kind == "python" and v.display_name == "build 2× 16px"
    graph = v.trace()
    assert graph.layers[0].output_shape == (1, 16, 16, 16)  # round(8 · 2) = 16 channels
    with pytest.raises(ModelLoadError, match="has no attribute 'Nett'; did you mean Net?"):
        parse_variant(f"{package}.nets:Nett").build()
    with pytest.raises(ModelLoadError, match=f"cannot import module '{package}.missing'"):
        parse_variant(f"{package}.missing:build").build()
