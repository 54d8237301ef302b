"""The model-source seam: which source a name belongs to, what a source answers without torch,
and a new kind of source plugged in without touching the rest of the pipeline."""

from __future__ import annotations

import subprocess
import sys

import pytest

from roofline.core.engine import predict
from roofline.core.graph import InputSpec, LayerGraph, Ledger, OpKind, TensorUse
from roofline.errors import UnknownNameError, UsageError
from roofline.sources import register_source, source_for
from roofline.sources.base import ModelSource, TorchSource, files_fingerprint
from roofline.sources.variant import Variant, parse_variant

import kit


@pytest.mark.parametrize("spec, kind", [
    ("mobilenet_v2", "zoo"),
    ("nets.py:build", "python"),
    ("some/dir/nets.py:build", "python"),
    ("package.module:factory", "python"),
])
def test_each_name_belongs_to_one_source(spec, kind):
    assert source_for(spec).kind == kind


def test_the_zoo_source_answers_from_its_catalogue():
    source = source_for("mobilenet_v4_conv_medium")
    assert isinstance(source, TorchSource)
    assert source.family == "MobileNetV4" and source.default_resolution() == 256
    assert source.top1(1.0, 256) == 79.9  # MobileNetV4 paper Table 6 (published_models.csv)
    assert source.published_variants() == [(1.0, 256)]
    assert source.default_inputs(2, 256) == (InputSpec((2, 3, 256, 256)),)
    with pytest.raises(UnknownNameError, match="did you mean mobilenet_v2"):
        source_for("mobilenet_v22").check()


def test_metadata_and_a_warm_compare_never_import_torch(tmp_path):
    """Names, defaults, top-1, cache keys and a compare whose graphs are cached need no torch
    (`import torch` is the largest cost of a warm run)."""
    env_code = (
        "import os, sys; os.environ['ROOFLINE_CACHE_DIR'] = sys.argv[1]; "
        "from roofline.cli import main; "
        "code = main(['compare', '--hw', 'cpu,edgetpu', '--models', "
        "'mobilenet_v2,mobilenet_v3_small@0.75,mobilenet_v4_conv_small', '--out', "
        "sys.argv[2]]); print(code, 'torch' in sys.modules)")
    cold = subprocess.run([sys.executable, "-c", env_code, str(tmp_path / "c"),
                           str(tmp_path / "r.html")], capture_output=True, text=True, check=True)
    assert cold.stdout.split()[-2:] == ["0", "True"]  # the first run traces
    warm = subprocess.run([sys.executable, "-c", env_code, str(tmp_path / "c"),
                           str(tmp_path / "r.html")], capture_output=True, text=True, check=True)
    assert warm.stdout.split()[-2:] == ["0", "False"]


class _Table(ModelSource):
    """A toy model format: a 'file' naming one linear layer as ``table:IN:OUT``."""

    kind = "toy-table"
    takes_width = False

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec.startswith("table=")

    def check(self) -> None:
        fields = self.spec.removeprefix("table=").split("x")
        if len(fields) != 2 or not all(f.isdigit() for f in fields):
            raise UsageError(f"{self.spec!r} is not table=INxOUT")

    def fingerprint(self) -> str:
        return files_fingerprint([], self.spec)

    def frontend_fingerprint(self) -> str:
        return "toy"

    def default_resolution(self) -> None:
        return None

    def default_inputs(self, batch, resolution):
        n_in = int(self.spec.removeprefix("table=").split("x")[0])
        return (InputSpec((batch, n_in)),)

    def graph(self, width, inputs, name) -> LayerGraph:
        from roofline.core.graph import Gemm, Layer

        n_in, n_out = (int(f) for f in self.spec.removeprefix("table=").split("x"))
        batch = inputs[0].shape[0]
        layer = Layer(index=0, name="fc", module="fc", module_type="Table", op="linear",
                      kind=OpKind.LINEAR, input_shapes=((batch, n_in),),
                      output_shapes=((batch, n_out),), macs=batch * n_in * n_out,
                      params=n_in * n_out, weight_elements=n_in * n_out, bias_elements=0,
                      inputs=(TensorUse(0, batch * n_in),),
                      outputs=(TensorUse(1, batch * n_out),),
                      gemms=(Gemm(1, batch, n_out, n_in),))
        return LayerGraph(layers=(layer,), input_specs=inputs, precision=None,
                          ledger=Ledger(counted={"linear": 1}), params=n_in * n_out,
                          inputs=(TensorUse(0, batch * n_in),),
                          outputs=(TensorUse(1, batch * n_out),), model_name=name)


def test_a_new_model_format_is_one_class(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path))
    register_source(_Table)
    with pytest.raises(ValueError, match="already registered"):
        register_source(_Table)
    variant = parse_variant("table=64x10")
    assert variant.source.kind == "toy-table" and variant.label == "table=64x10"
    graph = variant.trace()
    assert graph.macs == 640  # 1 x 64 x 10
    assert variant.trace() == graph  # the second from the cache
    # Priced like any other graph: 640 MACs / 1e9 = 0.64 us against (640 + 64 + 10) int8 bytes
    # / 1e9 B/s = 0.714 us: memory-bound.
    hw = kit.profile(peak=1e9, bandwidth=1e9)
    assert predict(graph, hw).latency_ms == pytest.approx(0.714e-3)
    with pytest.raises(UsageError, match="cannot apply"):
        parse_variant("table=64x10@2")
    with pytest.raises(UsageError, match="not table=INxOUT"):
        Variant("table=64").validate()


@pytest.fixture(autouse=True)
def _forget_registered_sources():
    import roofline.sources as sources

    yield
    sources._registered.clear()
    sources.source_classes.cache_clear()
    sources.source_for.cache_clear()


def test_a_user_op_rule_bypasses_the_graph_cache(tmp_path, monkeypatch):
    """A rule registered at run time is code the cache key cannot see: graphs traced under a
    changed op table are neither served from nor written to the cache."""
    import roofline
    from roofline.sources.pytorch import ops

    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path))
    variant = Variant("mobilenet_v3_small", 0.5, 96)
    variant.trace()  # cached under the shipped table
    stored = sorted((tmp_path / "graphs").iterdir())
    assert len(stored) == 1 and variant.source.cacheable()
    original = ops.RULES["hardswish"]
    # Price hard-swish as a data copy instead: the cache must not answer with the old graph.
    roofline.register_op_rule("hardswish", "data_movement", replace=True)
    try:
        assert not variant.source.cacheable()
        kinds = {layer.op: layer.kind.value for layer in variant.trace().layers}
        assert kinds["hardswish"] == "data_movement"
        assert sorted((tmp_path / "graphs").iterdir()) == stored  # nothing written
    finally:
        ops.RULES["hardswish"] = original
    assert variant.source.cacheable()


IMAGE_AND_TOKENS = '''
from torch import nn


class ImageText(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.embed = nn.Embedding(1000, 8)
        self.head = nn.Linear(8, 4)

    def forward(self, image, tokens):
        return self.head(self.conv(image).mean(dim=(2, 3)) + self.embed(tokens).mean(dim=1))


def build():
    return ImageText()
'''


def test_an_image_and_int64_tokens_from_the_command_line(tmp_path, cli):
    path = tmp_path / "two.py"
    path.write_text(IMAGE_AND_TOKENS)
    out = cli("graph", f"{path}:build", "--input", "1x3x64x64", "--input", "1x16:int64",
              "--ops", "--json").json()
    assert out["inputs"] == [{"shape": [1, 3, 64, 64], "dtype": "float32", "name": ""},
                             {"shape": [1, 16], "dtype": "int64", "name": ""}]
    layers = {layer["name"]: layer for layer in out["layers"]}
    # conv 3 -> 8, 3x3, stride 2 on 64x64: 32*32*8 outputs x 27 MACs = 221,184; head 8 x 4.
    assert out["macs"] == 32 * 32 * 8 * 27 + 8 * 4
    # The lookup reads 16 rows of 8 fp32 weights (512 B, not the 1000-row table) and the ids
    # are 16 int64 elements (128 B), whatever precision the graph is shown at.
    assert layers["embed"]["weight_bytes"] == 16 * 8 * 4
    assert layers["embed"]["input_bytes"] == 16 * 8
    assert out["params"] == (8 * 27 + 8) + 1000 * 8 + (8 * 4 + 4)
    # A model with two inputs given one: the model's own error, on one line.
    assert "forward" in cli("graph", f"{path}:build", "--input", "1x3x64x64").error_line
    assert "SHAPE[:DTYPE]" in cli("graph", "mobilenet_v2", "--input", "1x3x2x").error_line


def test_a_meta_build_skips_initialisation_and_puts_it_back():
    import torch
    from torch import nn
    from torch.nn import init

    from roofline.sources.base import build_on_meta

    real = init.kaiming_uniform_
    seen = []

    def make() -> nn.Module:
        seen.append(init.kaiming_uniform_ is real)
        return nn.Conv2d(3, 8, 3)

    conv = build_on_meta(make)
    assert seen == [False] and init.kaiming_uniform_ is real
    assert conv.weight.device.type == "meta" and conv.weight.requires_grad

    def broken() -> nn.Module:
        raise RuntimeError("factory failed")

    with pytest.raises(RuntimeError, match="factory failed"):
        build_on_meta(broken)
    assert init.kaiming_uniform_ is real and torch.is_grad_enabled()


def test_a_model_built_without_initialisation_traces_to_the_same_graph():
    import torch

    from roofline.sources.pytorch.tracer import trace
    from roofline.zoo import create_model

    for name in ("mobilenet_v3_small", "mobilenet_v4_hybrid_medium"):
        with torch.device("meta"):
            initialised = create_model(name, width=0.75)
        fast = source_for(name).build(0.75, meta=True)
        assert trace(fast, (1, 3, 160, 160)).to_dict() == \
            trace(initialised, (1, 3, 160, 160)).to_dict()
