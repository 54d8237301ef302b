"""Tests of ``roofline list`` and ``roofline graph``, run in-process through roofline.cli.main.

Expected sizes come from models/published_models.csv (each row cites its source); the rest is
checked for consistency with the library's own graph of the same variant.
"""

from __future__ import annotations

import csv
import json

import pytest

from roofline import zoo
from roofline.cli._common import fmt_count
from roofline.core.fuse import fuse
from roofline.core.graph import RECORD_COLUMNS
from roofline.core.hardware import list_hardware
from roofline.sources.variant import Variant

from kit import run_cli

ZOO = zoo.list_models()


def ok(capsys, *argv: str) -> str:
    return run_cli(capsys, *argv).ok


def one_line_error(capsys, *argv: str) -> str:
    result = run_cli(capsys, *argv)
    assert result.out == "", result.out
    return result.error_line


def graph_json(capsys, *argv: str) -> dict:
    return json.loads(ok(capsys, "graph", *argv, "--json"))


# -- list -----------------------------------------------------------------------------------------

def test_list_models_json(capsys):
    rows = json.loads(ok(capsys, "list", "models", "--json"))
    assert [r["name"] for r in rows] == ZOO and len(rows) == 23  # 9 MobileNets + 14 others
    for row in rows:
        info = zoo.get_model_info(row["name"])
        figure = info.figure(1.0, info.default_resolution)
        assert row["default_resolution"] == info.default_resolution
        assert row["family"] == info.family and row["description"] == info.description
        assert row["published_variants"] == len(info.published)
        assert (row["top1"], row["top1_source"]) == (figure.top1, figure.source)
        # width 1, default resolution: the reference row, exactly where the row is exact
        params_tol, macs_tol = figure.tolerances
        assert abs(row["params"] - figure.params) <= params_tol * figure.params
        assert abs(row["macs"] - figure.macs) <= macs_tol * figure.macs
        if figure.exactness == "exact":
            assert (row["params"], row["macs"]) == (figure.params, figure.macs)
    exact = sum(zoo.get_model_info(n).figure(1.0, zoo.get_model_info(n).default_resolution)
                .exactness == "exact" for n in ZOO)
    assert exact == 22  # all but V3-Small, whose published MACs are rounded (57M)


def test_list_models_table(capsys):
    out = ok(capsys, "list", "models")
    for name in ZOO:
        assert name in out
    assert "300.8M" in out  # MobileNetV2: 300,774,272 MACs
    assert "multiply-accumulates" in out


def test_list_hardware(capsys):
    names = list_hardware()
    rows = json.loads(ok(capsys, "list", "hardware", "--json"))
    assert [r["name"] for r in rows] == names
    assert {"pixel6-cpu", "pixel4-dsp", "pixel7-gpu", "pixel8-edgetpu", "cpu", "dsp", "gpu",
            "edgetpu"} <= set(names)
    aliases = {r["name"]: r["alias_of"] for r in rows}
    assert aliases["cpu"] and aliases["pixel6-cpu"] is None
    for r in rows:
        assert r["peak_macs_per_s"] > 0 and r["dram_bytes_per_s"] > 0
    table = ok(capsys, "list", "hardware")
    for name in names:
        assert name in table


def test_list_needs_a_valid_subject(capsys):
    line = one_line_error(capsys, "list", "modles")
    assert "invalid choice: 'modles'" in line and "models" in line


# -- graph: every zoo model -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ZOO)
def test_graph_table_for_every_zoo_model(capsys, name):
    out = ok(capsys, "graph", name)
    variant = Variant(name)
    graph = fuse(variant.trace())
    lines = out.splitlines()
    totals = next(line for line in lines if line.startswith(f"{variant.label}  batch 1  fp32"))
    assert f"{len(graph)} kernels" in totals
    assert f"{fmt_count(graph.macs)} MACs ({fmt_count(2 * graph.macs)} FLOPs)" in totals
    assert f"{fmt_count(graph.params)} params" in totals
    ledger = graph.ledger
    ignored = sum(n for n, _ in ledger.ignored.values())
    assert f"ops: {sum(ledger.counted.values())} counted, {ignored} ignored by rule, " \
           f"0 unknown" in out
    for layer in graph.layers:
        assert layer.name in out


def test_ops_and_kernel_views(capsys):
    ops = graph_json(capsys, "mobilenet_v3_large", "--ops")
    kernels = graph_json(capsys, "mobilenet_v3_large", "--fused")
    default = graph_json(capsys, "mobilenet_v3_large")
    assert (ops["view"], kernels["view"]) == ("ops", "kernels") and default == kernels
    assert len(ops["layers"]) > len(kernels["layers"])
    assert ops["macs"] == kernels["macs"] == 216_589_760  # V3-Large: published_models.csv
    assert ops["params"] == kernels["params"] == 5_483_032
    assert all(r["fused_ops"] == [] for r in ops["layers"])
    op_table = ok(capsys, "graph", "mobilenet_v3_large", "--ops")
    assert f"{len(ops['layers'])} ops" in op_table
    line = one_line_error(capsys, "graph", "mobilenet_v2", "--ops", "--fused")
    assert "not allowed with argument" in line


@pytest.mark.parametrize("view", ["--ops", "--fused"])
def test_graph_json_totals_are_sums_of_layers(capsys, view):
    data = graph_json(capsys, "mobilenet_v4_hybrid_medium", view)
    assert {"model", "width", "resolution", "batch", "precision", "view", "input_shape", "macs",
            "params", "weight_bytes", "input_bytes", "output_bytes", "unknown_ops", "ledger",
            "layers"} <= set(data)
    assert (data["model"], data["width"], data["resolution"], data["batch"]) == (
        "mobilenet_v4_hybrid_medium", 1.0, 256, 1)
    assert data["input_shape"] == [1, 3, 256, 256] and data["precision"] == "fp32"
    layers = data["layers"]
    assert set(layers[0]) == set(RECORD_COLUMNS)
    for total in ("macs", "weight_bytes", "input_bytes", "output_bytes"):
        assert data[total] == sum(r[total] for r in layers), total
    assert data["macs"] == 1_271_183_360  # published_models.csv, exact
    assert data["unknown_ops"] == [] and data["ledger"]["unknown"] == {}
    assert sum(data["ledger"]["counted"].values()) == len(Variant(data["model"]).trace())
    assert data["ledger"]["ignored"]["transpose"]["rule"].startswith("views and reshapes")


def test_graph_csv(capsys, tmp_path):
    path = tmp_path / "out" / "v2.csv"
    path.parent.mkdir()
    out = ok(capsys, "graph", "mobilenet_v2", "--csv", str(path))
    assert "mobilenet_v2:224  batch 1" in out  # the table is still printed
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    data = graph_json(capsys, "mobilenet_v2")
    assert len(rows) == len(data["layers"]) == 54  # 52 convolutions, the pool, the classifier
    assert list(rows[0]) == list(RECORD_COLUMNS)
    assert [r["name"] for r in rows] == [r["name"] for r in data["layers"]]
    assert sum(int(r["macs"]) for r in rows) == 300_774_272  # published_models.csv, exact
    assert sum(int(r["weight_bytes"]) for r in rows) == data["weight_bytes"]
    assert [p.name for p in path.parent.iterdir()] == ["v2.csv"]  # no temporary file left


def test_graph_csv_to_an_unwritable_place(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = one_line_error(capsys, "graph", "mobilenet_v2", "--csv", str(blocker / "x.csv"))
    assert line.startswith("roofline graph: error:")


def test_precision_changes_bytes_not_macs(capsys):
    fp32 = graph_json(capsys, "mobilenet_v2")
    int8 = graph_json(capsys, "mobilenet_v2", "--precision", "int8")
    fp16 = graph_json(capsys, "mobilenet_v2", "--precision", "fp16")
    assert int8["precision"] == "int8"
    assert fp32["macs"] == int8["macs"] == fp16["macs"] and fp32["params"] == int8["params"]
    assert int8["input_bytes"] * 4 == fp32["input_bytes"] == fp16["input_bytes"] * 2
    assert int8["output_bytes"] * 4 == fp32["output_bytes"]
    graph = fuse(Variant("mobilenet_v2").trace())
    weights = sum(layer.weight_elements for layer in graph.layers)
    biases = sum(layer.bias_elements for layer in graph.layers)
    assert fp32["weight_bytes"] == 4 * (weights + biases)
    assert fp16["weight_bytes"] == 2 * (weights + biases)
    assert int8["weight_bytes"] == weights + 4 * biases  # int32 biases under int8


def test_width_resolution_and_batch(capsys):
    data = graph_json(capsys, "mobilenet_v1", "--width", "0.5", "--resolution", "160",
                      "--batch", "2")
    assert (data["width"], data["resolution"], data["batch"]) == (0.5, 160, 2)
    assert data["macs"] == 2 * 76_524_800  # V1 paper Table 9: 76M at 0.5 / 160, per image
    assert data["params"] == 1_331_592
    assert graph_json(capsys, "mobilenet_v1@0.5:160", "--batch", "2") == data


USER_MODEL = """
import torch
from torch import nn


class Sorts(nn.Module):
    def __init__(self, width=1.0):
        super().__init__()
        self.conv = nn.Conv2d(3, round(8 * width), 3, padding=1)

    def forward(self, x):
        return torch.sort(self.conv(x), dim=1)[0].mean((2, 3))


def plain(width=1.0):
    return nn.Sequential(nn.Conv2d(3, round(8 * width), 1), nn.ReLU())
"""


def test_user_model_file(capsys, tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(USER_MODEL)
    data = graph_json(capsys, f"{path}:plain", "--width", "2", "--resolution", "16")
    assert data["model"] == f"{path}:plain" and data["width"] == 2.0
    (kernel,) = data["layers"]
    assert kernel["fused_ops"] == ["1"] and kernel["output_shape"] == [1, 16, 16, 16]
    assert data["macs"] == 16 * 16 * 16 * 3 == 12_288  # round(8 · 2) = 16 channels
    out = ok(capsys, "graph", f"{path}:plain:16")
    assert f"{path}:plain:16  batch 1  fp32  1 kernel  " in out  # one kernel, not "1 kernels"


def test_unknown_ops_are_reported_on_the_command_line(capsys, tmp_path):
    path = tmp_path / "sorts.py"
    path.write_text(USER_MODEL)
    code, out, err = run_cli(capsys, "graph", f"{path}:Sorts:8")
    assert code == 0
    assert err.strip().splitlines() == [
        "roofline: warning: 1 op type(s) have no cost rule and count 0 MACs (their bytes are "
        "still counted): sort ×1"]
    assert "ops: 2 counted, 0 ignored by rule, 1 unknown (sort)" in out  # conv2d, mean
    data = graph_json(capsys, f"{path}:Sorts:8")  # from the cache: no second warning
    assert data["unknown_ops"] == ["sort"] and data["ledger"]["unknown"] == {"sort": 1}
    sort = next(r for r in data["layers"] if r["op"] == "sort")
    assert sort["kind"] == "unknown" and sort["macs"] == 0
    assert sort["input_bytes"] == 8 * 8 * 8 * 4  # its bytes still count


# -- bad input: one line, exit code 2 -------------------------------------------------------------

def test_unknown_model(capsys):
    line = one_line_error(capsys, "graph", "mobilenet_v22")
    assert line == ("roofline graph: error: unknown model 'mobilenet_v22'; did you mean "
                    "mobilenet_v2, mobilenet_v1, mobilenet_v3_small?")


@pytest.mark.parametrize("argv, what", [
    (["--width", "0"], "width must be a finite number > 0, got '0'"),
    (["--resolution", "4"], "resolution must be from 8 to 8192 pixels, got 4"),
    (["--batch", "0"], "batch must be a whole number >= 1, got 0"),
    (["--precision", "fp8"], "unknown precision 'fp8'; valid: fp32, fp16, int8"),
    (["--width", "0.5", "--json", "--csv", "x.csv"], "not allowed with argument"),
])
def test_bad_options(capsys, argv, what):
    line = one_line_error(capsys, "graph", "mobilenet_v2", *argv)
    assert line.startswith("roofline graph: error:") and what in line


@pytest.mark.parametrize("spec, what", [
    ("mobilenet_v2@0", "width must be a finite number > 0, got '0'"),
    ("mobilenet_v2:4", "resolution must be from 8 to 8192 pixels, got 4"),
    ("mobilenet_v2@0.75", "'mobilenet_v2@0.75' names width 0.75 but --width is 0.5"),
])
def test_bad_specs(capsys, spec, what):
    extra = ["--width", "0.5"] if "0.75" in spec else []
    line = one_line_error(capsys, "graph", spec, *extra)
    assert what in line


def test_bad_user_models(capsys, tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(USER_MODEL + "\n\ndef peeks():\n    return Peeks()\n\n\n"
                    "class Peeks(nn.Module):\n    def forward(self, x):\n"
                    "        return x * float(x.sum())\n")
    assert "does not exist" in one_line_error(capsys, "graph", f"{tmp_path}/nope.py:plain")
    assert "did you mean plain?" in one_line_error(capsys, "graph", f"{path}:plian")
    line = one_line_error(capsys, "graph", f"{path}:peeks:8")
    assert "cannot trace op" in line and "module <root>" in line
