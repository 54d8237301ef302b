"""roofline compare: the model set, the table, the frontier, the report's data and the command.

Latency expectations use tiny profiles built here (never the shipped ones, whose fitted
numbers change): with efficiency 1, no on-chip memory and no overhead a kernel takes
max(MACs / peak, bytes / bandwidth).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from roofline.analyses.compare import ROW_FIELDS, compare, short_labels
from roofline.analyses.kernels import kernel_frame, stage_breakdown, stage_of
from roofline.analyses.ridge import ridge_data, ridge_movers
from roofline.analyses.roofs import ridge_point, roofs
from roofline.cli import main
from roofline.cli.compare_cmd import report_name
from roofline.core.hardware import (
    load_hardware,
    profile_to_toml,
    resolve_hardware,
)
from roofline.errors import UnknownNameError, UsageError
from roofline.sources.variant import Variant, default_variants, resolve_models

import kit

# Published top-1 (%) and MACs of published_models.csv used below (V1 paper Table 6/7,
# V2 paper Table 4): V1 0.25@128 41.5% 13.6M, V1 0.5@128 56.3% 49.2M, V1 0.5@160 60.2% 76.5M,
# V2 0.35@224 60.3% 59.3M.
SMALL_SET = ["mobilenet_v1@0.25:128", "mobilenet_v1@0.5:128", "mobilenet_v1@0.5:160",
             "mobilenet_v2@0.35:224"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # One graph cache for this file's tests (they trace the same variants), never ~/.cache.
    folder = tmp_path_factory.getbasetemp() / "compare-graph-cache"
    folder.mkdir(exist_ok=True)
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(folder))


def write_profile(folder: Path, profile) -> str:
    path = folder / f"{profile.name}.toml"
    path.write_text(profile_to_toml(profile))
    return str(path)


def linear_model(folder: Path, outputs: int = 10, name: str = "lin.py") -> str:
    """A user model: flatten (a view, no kernel) then Linear(192 -> outputs); spec at 8 px."""
    path = folder / name
    path.write_text("from torch import nn\n\n\n"
                    "def build():\n"
                    f"    return nn.Sequential(nn.Flatten(), nn.Linear(192, {outputs}))\n")
    return f"{path}:build:8"


# -- the model set -----------------------------------------------------------------------------

def test_default_set_is_every_published_variant_with_a_top1():
    from roofline.zoo import get_model_info, list_models

    expected = {(m, f.width, f.resolution) for m in list_models()
                if get_model_info(m).compare_default
                for f in get_model_info(m).published if f.top1 is not None}
    got = [(v.name, v.effective_width, v.effective_resolution) for v in default_variants()]
    assert len(got) == len(set(got)) == len(expected)
    assert set(got) == expected
    assert all(v.top1() is not None for v in default_variants())


def test_model_list_grammar():
    assert [v.label for v in resolve_models("all")] == [v.label for v in default_variants()]
    assert [v.label for v in resolve_models(None)] == [v.label for v in default_variants()]
    (v2,) = resolve_models("mobilenet_v2")
    assert (v2.effective_width, v2.effective_resolution) == (1.0, 224)
    v2s = resolve_models("mobilenet_v2@*")
    from roofline.zoo import get_model_info

    assert sorted(v.effective_width for v in v2s) == sorted(
        f.width for f in get_model_info("mobilenet_v2").published if f.top1 is not None)
    # Duplicates (the same variant spelled twice) are dropped, order kept.
    labels = [v.label for v in resolve_models("mobilenet_v2@0.5,mobilenet_v2,"
                                              "mobilenet_v2@1.0:224, mobilenet_v2@0.5:224")]
    assert labels == ["mobilenet_v2@0.5:224", "mobilenet_v2:224"]


@pytest.mark.parametrize("spec, error, message", [
    ("", UsageError, "empty model list"),
    (" , ", UsageError, "empty model list"),
    ("mobilenet_v9", UnknownNameError, "did you mean"),
    ("mobilenet_v9@*", UnknownNameError, "unknown model 'mobilenet_v9'"),
    ("mobilenet_v2@0:224", UsageError, "width"),
])
def test_bad_model_lists(spec, error, message):
    with pytest.raises(error, match=message):
        resolve_models(spec)


def test_hardware_list():
    assert [h.name for h in resolve_hardware(["cpu", "pixel6-cpu", "edgetpu"])] == \
        ["pixel6-cpu", "pixel8-edgetpu"]
    with pytest.raises(UsageError, match="empty hardware list"):
        resolve_hardware([])
    with pytest.raises(UnknownNameError, match="did you mean edgetpu"):
        resolve_hardware(["edgetpuu"])
    with pytest.raises(UnknownNameError, match="unknown precision for pixel8-edgetpu 'fp32'"):
        resolve_hardware(["cpu", "edgetpu"], "fp32")


def test_compare_imports_no_plotly():
    import subprocess
    import sys

    code = ("import sys, roofline.analyses.compare, roofline.cli.compare_cmd; "
            "assert 'plotly' not in sys.modules, 'plotly imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_short_labels():
    a = Variant("/x/nets/net.py:build", None, 64)
    b = Variant("/y/nets/net.py:build", None, 64)
    zoo = Variant("mobilenet_v2", 0.5, 160)
    assert short_labels([a, zoo]) == ["net.py:build:64", "mobilenet_v2@0.5:160"]
    # The same short label twice: both keep their full spec.
    assert short_labels([a, b]) == [a.label, b.label]


def test_report_name():
    assert report_name(["cpu", "edgetpu"]) == "compare-cpu-edgetpu.html"
    assert report_name(["my/dev<1>.toml", "gpu"]) == "compare-dev_1_-gpu.html"


@pytest.mark.parametrize("module, stage", [
    ("features.3.conv", "features.3"), ("blocks.11.dw.conv", "blocks.11"),
    ("head.pool", "head"), ("head", "head"), ("", "(root)"), ("1", "1"),
    ("stem.conv", "stem"), ("layers.0", "layers.0"),
])
def test_stage_of(module, stage):
    assert stage_of(module) == stage


# -- the numbers --------------------------------------------------------------------------------

def test_user_model_latency_from_first_principles(tmp_path: Path):
    spec = linear_model(tmp_path)
    memory_bound = kit.profile("mem", peak=1e9, bandwidth=1e9)
    compute_bound = kit.profile("cmp", peak=1e8, bandwidth=1e9)
    c = compare(resolve_models(spec), [memory_bound, compute_bound])
    rows = {r["hardware"]: r for r in c.rows()}
    # Linear(192 -> 10) on a 1x3x8x8 int8 input: 192 * 10 = 1920 MACs. Bytes: weights 1920
    # (int8) + bias 10 * 4 (int32 under int8) + input 192 + output 10 = 2162.
    assert rows["mem"]["macs"] == 1920
    assert rows["mem"]["params"] == 1930
    # 1 GMAC/s, 1 GB/s: compute 1.92 us < memory 2.162 us -> 0.002162 ms, memory-bound.
    assert rows["mem"]["latency_ms"] == pytest.approx(0.002162, rel=1e-9)
    assert rows["mem"]["bound"] == "memory"
    assert rows["mem"]["memory_bound_ms"] == pytest.approx(0.002162, rel=1e-9)
    # 0.1 GMAC/s: compute 19.2 us > memory 2.162 us -> 0.0192 ms, compute-bound.
    assert rows["cmp"]["latency_ms"] == pytest.approx(0.0192, rel=1e-9)
    assert rows["cmp"]["bound"] == "compute"
    for r in rows.values():
        assert r["top1"] is None and r["pareto"] is False and r["rank"] == 1
        assert r["family"] == "user model" and r["short_label"] == "lin.py:build:8"
        assert r["supported"] is True and r["unsupported_kinds"] == []
        assert list(r) == list(ROW_FIELDS)


def test_frontier_on_a_compute_only_device():
    # Bandwidth 1e15 B/s and efficiency 1: latency = MACs / peak (memory adds < 1e-5).
    hw = kit.profile("macs-only", peak=1e9)
    c = compare(resolve_models(SMALL_SET), [hw])
    rows = {r["label"]: r for r in c.rows()}
    for label, r in rows.items():
        assert r["latency_ms"] == pytest.approx(r["macs"] / 1e9 * 1e3, rel=1e-5), label
    # V2 0.35 (59.3M MACs, 60.3%) beats V1 0.5@160 (76.5M, 60.2%) on both: off the frontier.
    assert {label for label, r in rows.items() if r["pareto"]} == {
        "mobilenet_v1@0.25:128", "mobilenet_v1@0.5:128", "mobilenet_v2@0.35:224"}
    assert [r["label"] for r in c.on("macs-only").to_dict("records")] == [
        "mobilenet_v1@0.25:128", "mobilenet_v1@0.5:128", "mobilenet_v2@0.35:224",
        "mobilenet_v1@0.5:160"]
    assert [rows[lbl]["rank"] for lbl in SMALL_SET] == [1, 2, 4, 3]
    # The frontier's latencies are its MACs / 1e9: 13.6, 49.2 and 59.3 µs (V1 0.25@128,
    # V1 0.5@128, V2 0.35); their median is 49.2, so the focus is V1 0.5@128, and says why.
    assert c.default_focus() == "mobilenet_v1@0.5:128"
    rule = c.focus_rule("mobilenet_v1@0.5:128")
    assert rule.startswith("the model nearest the median latency") and "macs-only" in rule
    assert c.focus_rule("mobilenet_v1@0.25:128") is None  # not the default: no rule to state
    picks = c.picks([56.0, 60.0, 99.0]).set_index("target")
    assert picks.loc[56.0, "label"] == "mobilenet_v1@0.5:128"  # 56.3% at 49.2M MACs
    assert picks.loc[60.0, "label"] == "mobilenet_v2@0.35:224"  # 60.3% at 59.3M MACs
    assert picks.loc[99.0, ["label", "top1", "latency_ms"]].isna().all()  # none reaches 99%


def test_unsupported_models_are_listed_not_ranked(tmp_path: Path):
    spec = linear_model(tmp_path)
    no_dw = kit.profile("no-dw", support={"unsupported": ["depthwise_conv"]})
    c = compare(resolve_models(["mobilenet_v1@0.25:128", spec]), [no_dw])
    rows = {r["short_label"]: r for r in c.rows()}
    v1 = rows["mobilenet_v1@0.25:128"]
    assert v1["supported"] is False and v1["latency_ms"] is None and v1["rank"] is None
    assert v1["unsupported_kinds"] == ["depthwise_conv"] and v1["pareto"] is False
    assert v1["bound"] is None and v1["compute_bound_ms"] is None
    assert rows["lin.py:build:8"]["rank"] == 1
    # The unsupported model is last in the device's table; nothing is on the frontier.
    assert list(c.on("no-dw")["short_label"]) == ["lin.py:build:8", "mobilenet_v1@0.25:128"]
    assert c.frontier("no-dw").empty
    assert c.default_focus() == f"{spec.rsplit(':', 1)[0]}:8"


def test_rank_changes_between_devices(tmp_path: Path):
    small, big = linear_model(tmp_path, 10, "a.py"), linear_model(tmp_path, 40, "b.py")
    # 'a' = 1920 MACs, 2162 B; 'b' = 192 * 40 = 7680 MACs, 7680 + 160 + 192 + 40 = 8072 B.
    # A device with free compute ranks by bytes, one with free memory by MACs: both 'a' first.
    c = compare(resolve_models([small, big]), [kit.profile("bytes", peak=1e18, bandwidth=1e9),
                                               kit.profile("macs", peak=1e9, bandwidth=1e18)])
    lat = {(r["hardware"], r["short_label"]): r["latency_ms"] for r in c.rows()}
    assert lat[("bytes", "b.py:build:8")] == pytest.approx(8072 / 1e9 * 1e3, rel=1e-6)
    assert lat[("macs", "b.py:build:8")] == pytest.approx(7680 / 1e9 * 1e3, rel=1e-6)
    changes = c.rank_changes("bytes", "macs")
    assert list(changes["change"]) == [0, 0]
    assert c.rank_correlation("bytes", "macs") == pytest.approx(1.0)


def test_kernel_and_stage_breakdowns_add_up():
    hw = kit.profile("ovh", peak=1e10, bandwidth=1e9,
              overhead={"per_kernel_s": 2e-6, "per_inference_s": 1e-4})
    c = compare(resolve_models("mobilenet_v2@0.35:224"), [hw])
    pred = c.predictions[0][0]
    frame = kernel_frame(pred)
    stages = stage_breakdown(pred)
    # Every millisecond is in some stage; the per-inference 0.1 ms is its own last stage.
    assert stages["latency_ms"].sum() == pytest.approx(pred.latency_ms, rel=1e-9)
    assert stages.iloc[-1].to_dict() == {"stage": "per inference", "bound": "overhead",
                                         "latency_ms": pytest.approx(0.1), "kernels": 0}
    no_fixed = stage_breakdown(pred, per_inference=False)
    assert no_fixed["latency_ms"].sum() == pytest.approx(pred.latency_ms - 0.1, rel=1e-9)
    assert no_fixed["kernels"].sum() == len(frame)
    assert list(dict.fromkeys(no_fixed["stage"])) == [
        "features.0", *[f"features.{i}" for i in range(1, 19)], "head"]
    # A kernel's attained MACs/s is its MACs over its latency; MAC-free kernels have none.
    with_macs = frame[frame["macs"] > 0]
    assert (with_macs["attained_macs_per_s"] == with_macs["macs"]
            / (with_macs["latency_ms"] / 1e3)).all()
    assert frame.loc[frame["macs"] == 0, "attained_macs_per_s"].isna().all()


def test_roofs_from_the_profile():
    hw = kit.profile("roofs", peak=1e12, bandwidth=1e10,
              efficiency={"conv": 0.5, "pointwise_conv": 0.5, "depthwise_conv": 0.25},
              memory=[{"name": "L2", "capacity_bytes": 1e6, "bandwidth_bytes_per_s": 1e11},
                      {"name": "SLC", "capacity_bytes": 8e6}])
    rf = roofs(hw)
    assert rf.peak_macs_per_s == 1e12
    assert [v for _, v in rf.compute] == [1e12, 5e11, 2.5e11]  # peak, x 0.5, x 0.25
    assert rf.compute[1][0].startswith("conv, pointwise conv")
    # DRAM, then the on-chip levels that have a bandwidth; the others are capacity only.
    assert rf.memory == (("DRAM", 1e10), ("L2", 1e11))
    assert rf.capacity_only == (("SLC", 8e6),)
    assert rf.ridge_point == 100.0 == ridge_point(hw)  # 1e12 MACs/s / 1e10 B/s
    # A memory efficiency below 1 lowers the DRAM slope of its kinds: 1e10 x 0.5.
    slow = kit.profile("slow", peak=1e12, bandwidth=1e10,
                       memory_efficiency={"depthwise_conv": 0.5})
    assert roofs(slow).memory == (("DRAM", 1e10), ("DRAM, depthwise conv (50%)", 5e9))
    assert roofs(slow).capacity_only == ()


def test_one_ridge_point_everywhere(capsys):
    """list hardware, the ridge-sweep markers and the roofs give one number per profile."""
    import json

    from roofline.cli import main

    assert main(["list", "hardware", "--json"]) == 0
    listed = {r["name"]: r["ridge_point"] for r in json.loads(capsys.readouterr().out)}
    p6 = load_hardware("pixel6-cpu")
    # 179.2e9 int8 MACs/s / 44.8e9 B/s = 4.0 MACs per byte
    assert listed["pixel6-cpu"] == pytest.approx(4.0) == ridge_point(p6) == roofs(p6).ridge_point
    assert main(["list", "hardware"]) == 0
    assert "4.0" in capsys.readouterr().out


def test_ridge_markers_and_range():
    fp16 = kit.profile("half", peak=2e9, bandwidth=1e9, precision="fp16")
    far = kit.profile("far", peak=8e11, bandwidth=1e9)
    c = compare(resolve_models("mobilenet_v1@0.25:128,mobilenet_v2@0.35:224"), [fp16, far])
    sweep, markers = ridge_data(c)
    by = {m.label: m.ridge_point for m in markers}
    assert by["pixel6-cpu (paper)"] == 31.2  # MobileNetV4 paper, Table 16
    assert by["pixel8-edgetpu (paper)"] == 433.8
    # fp16 moves 2 bytes per element: 2e9 / 1e9 = 2 MACs per fp16 byte = 4 per int8 byte.
    assert by["half (profile)"] == pytest.approx(4.0)
    assert by["far (profile)"] == pytest.approx(800.0)  # 8e11 / 1e9
    # The sweep runs from 0 past the farthest marker: ceil(800 * 1.05 / 50) * 50 = 850.
    assert sweep["ridge_point"].min() == 0 and sweep["ridge_point"].max() == 850
    at_zero = sweep[sweep["ridge_point"] == 0].set_index("model")
    # RP = 0 ranks by MACs: V1 0.25@128 (13.6M) is the cheapest at 1.0.
    assert at_zero.loc["mobilenet_v1@0.25:128", "relative"] == 1.0
    assert at_zero.loc["mobilenet_v2@0.35:224", "relative"] == pytest.approx(
        c.graphs[1].macs / c.graphs[0].macs)
    movers = ridge_movers(sweep)
    assert set(movers["model"]) == set(c.labels)
    assert (movers["ratio"] == movers["relative_high"] / movers["relative_low"]).all()


# -- the command ----------------------------------------------------------------------------------

def test_json_csv_and_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.chdir(tmp_path)
    a = write_profile(tmp_path, kit.profile("mem", peak=1e9, bandwidth=1e9))
    b = write_profile(tmp_path, kit.profile("cmp", peak=1e8, bandwidth=1e9))
    spec = linear_model(tmp_path)
    out_csv = tmp_path / "rows.csv"
    code = main(["compare", "--hw", f"{a},{b}", "--models", f"mobilenet_v1@0.25:128,{spec}",
                 "--json", "--csv", str(out_csv)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = json.loads(captured.out)
    assert len(rows) == 4  # 2 models x 2 devices
    required = {"model", "width", "resolution", "hardware", "precision", "latency_ms", "macs",
                "params", "top1", "pareto", "supported"}
    assert all(required <= set(r) for r in rows)
    lin = next(r for r in rows if r["hardware"] == "cmp" and r["model"].endswith(":build"))
    assert lin["latency_ms"] == pytest.approx(0.0192)  # 1920 MACs / 1e8 MACs/s
    with out_csv.open() as handle:
        written = list(csv.DictReader(handle))
    assert [r["label"] for r in written] == [r["label"] for r in rows]
    assert float(written[0]["latency_ms"]) == pytest.approx(rows[0]["latency_ms"])
    # The CSV spells a list of op kinds as the names joined by commas.
    assert all(r["unsupported_kinds"] == "" for r in written)
    # --json gives the rows: no report unless --out names one, and then its path on stderr.
    assert not (tmp_path / "reports").exists() and captured.err == ""
    assert main(["compare", "--hw", f"{a},{b}", "--models", "mobilenet_v1@0.25:128", "--json",
                 "--out", "r.html"]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "r.html").is_file() and captured.err.strip() == "report: r.html"
    assert json.loads(captured.out)[0]["unsupported_kinds"] == []


def test_tables_mark_the_frontier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.chdir(tmp_path)
    a = write_profile(tmp_path, kit.profile("macs-only", peak=1e9))
    assert main(["compare", "--hw", a, "--models", ",".join(SMALL_SET)]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip().startswith("mobilenet")]
    # Sorted by latency (MACs here); ★ on the three frontier models, not on V1 0.5@160.
    assert [ln.split()[0] for ln in lines] == ["mobilenet_v1", "mobilenet_v1", "mobilenet_v2",
                                               "mobilenet_v1"]
    marks = [ln.rstrip().split()[-1] if "★" in ln else "" for ln in lines]
    # An unfitted profile is unsure of its efficiency by a factor of 3: neighbouring frontier
    # models' ranges overlap, so their order is marked uncertain (★≈).
    assert marks == ["★≈", "★≈", "★≈", ""]
    assert "3 Pareto-optimal" in out
    assert out.strip().splitlines()[-1] == "report: reports/compare-macs-only.html"
    report = (tmp_path / "reports" / "compare-macs-only.html").read_text()
    assert "Only one device was compared" in report


def test_unsupported_rows_in_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys):
    monkeypatch.chdir(tmp_path)
    a = write_profile(tmp_path, kit.profile("no-dw", support={"unsupported": ["depthwise_conv"]}))
    assert main(["compare", "--hw", a, "--models", "mobilenet_v1@0.25:128", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "cannot run depthwise_conv" in out
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("argv, message", [
    (["--hw", ""], "empty hardware list"),
    (["--hw", " , "], "empty hardware list"),
    (["--hw", "edgetpuu"], "unknown hardware 'edgetpuu'; did you mean edgetpu"),
    (["--hw", "cpu,edgetpu", "--precision", "fp16"], "unknown precision for pixel8-edgetpu"),
    (["--hw", "cpu", "--models", ""], "empty model list"),
    (["--hw", "cpu", "--models", "mobilenet_v9"], "unknown model 'mobilenet_v9'"),
    (["--hw", "cpu", "--models", "mobilenet_v2", "--focus", "mobilenet_v3_small"],
     "--focus 'mobilenet_v3_small' is not among the compared models"),
    (["--hw", "cpu", "--out", "x.html", "--no-report"], "contradict"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["compare", *argv])
    except SystemExit as exc:  # argparse rejects a value while parsing
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_report_folder_that_is_a_file_fails_before_tracing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").write_text("not a folder")
    assert main(["compare", "--hw", "cpu", "--models", "mobilenet_v2"]) == 2
    assert "reports" in capsys.readouterr().err


# -- atomic report ---------------------------------------------------------------------------------

def _previous_report(tmp_path: Path) -> Path:
    out = tmp_path / "r.html"
    out.write_text("previous report")
    return out


def _argv(out: Path) -> list[str]:
    return ["compare", "--hw", "cpu,edgetpu", "--models", "mobilenet_v1@0.25:128", "--out",
            str(out)]


def test_failed_rendering_keeps_the_previous_report(tmp_path, monkeypatch):
    out = _previous_report(tmp_path)
    import roofline.report.compare_page

    def broken(*args, **kwargs):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(roofline.report.compare_page, "ridge_figure", broken)
    with pytest.raises(RuntimeError, match="rendering failed"):
        main(_argv(out))
    assert out.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_failed_write_keeps_the_previous_report(tmp_path, monkeypatch, capsys):
    out = _previous_report(tmp_path)
    import roofline.io

    def disk_full(fd: int) -> None:  # the new report is written out but not yet renamed
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(roofline.io.os, "fsync", disk_full)
    assert main(_argv(out)) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


def test_report_is_replaced_on_success(tmp_path):
    out = _previous_report(tmp_path)
    assert main(_argv(out)) == 0
    text = out.read_text()
    assert text.startswith("<!DOCTYPE html>") and "mobilenet_v1@0.25:128" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]


# -- a user's own top-1 ---------------------------------------------------------------------------

def test_top1_puts_a_user_model_on_the_frontier(tmp_path: Path, monkeypatch, capsys):
    """The issue's check: compare --models mobilenet_v2,mynet.py:build --top1
    mynet.py:build=75.0 --json gives the user's model a top-1 of 75.0."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mynet.py").write_text(
        "from torch import nn\n\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))\n")
    hw = write_profile(tmp_path, kit.profile("macs-only", peak=1e9))
    assert main(["compare", "--hw", hw, "--models", "mobilenet_v2,mynet.py:build", "--top1",
                 "mynet.py:build=75.0", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    mine, v2 = rows["mynet.py:build"], rows["mobilenet_v2"]
    assert (mine["top1"], mine["top1_given"]) == (75.0, True)
    assert (v2["top1"], v2["top1_given"]) == (72.0, False)  # V2 paper, Table 4
    # mynet: 3·8·9·112² + 8·10 ≈ 2.7M MACs, far fewer than V2's 300.8M, and more accurate:
    # it is the frontier alone.
    assert mine["pareto"] and not v2["pareto"]


def test_top1_in_the_api_the_verdict_and_the_chart(tmp_path: Path):
    from roofline.report.compare_page import _verdict_html, pareto_figure

    spec = linear_model(tmp_path)  # Linear(192 -> 10): 1,920 MACs
    hw = kit.profile("macs-only", peak=1e9)
    c = compare(resolve_models(f"mobilenet_v1@0.25:128,{spec}"), [hw], top1={spec: 30.0})
    label = c.labels[1]
    assert c.given_top1 == {label: 30.0} and c.top1_source_of(1) == "given"
    rows = {r["label"]: r for r in c.rows()}
    # 1,920 MACs / 1e9 = 1.9 µs beats V1 0.25@128's 13.6 µs; 30% < 41.5%: both on the frontier.
    assert rows[label]["pareto"] and rows["mobilenet_v1@0.25:128"]["pareto"]
    verdict = _verdict_html(c)
    assert "Your model" in verdict and "on the Pareto frontier" in verdict
    fig = pareto_figure(c, "macs-only")
    mine = next(t for t in fig.data if t["name"] == "your models")
    assert list(mine["marker"]["symbol"]) == ["star"] and list(mine["y"]) == [30.0]
    # Without --top1 the verdict says how to give one.
    plain = compare(resolve_models(spec), [hw])
    assert "--top1" in _verdict_html(plain)


def test_the_chart_draws_each_range_and_marks_an_uncertain_order():
    from roofline.report.compare_page import _results_table, pareto_figure

    # V1 0.25 at 128 and 160 px: 13.6M and 21.1M MACs, 1.55x apart; V1 1.0 at 224: 569M, 27x
    # more. An unfitted profile's ranges are wide (its parameters rest on generic priors), so
    # the two small ones overlap and the large one stands apart.
    c = compare(resolve_models("mobilenet_v1@0.25:128,mobilenet_v1@0.25:160,mobilenet_v1"),
                [kit.profile("bare", peak=1e9)])
    rows = {r["label"]: r for r in c.rows()}
    assert all(rows[label]["pareto"] for label in rows)  # faster is less accurate: all optimal
    fig = pareto_figure(c, "bare")
    (family,) = [t for t in fig.data if t["name"] == "MobileNetV1"]
    bars = family["error_x"]
    for x, plus, minus, label in zip(family["x"], bars["array"], bars["arrayminus"], rows,
                                     strict=True):
        low, high = rows[label]["latency_range_ms"]
        assert low < x < high
        assert (x - minus, x + plus) == pytest.approx((low, high))
    small, mid, large = (rows[label] for label in rows)
    assert small["latency_range_ms"][1] >= mid["latency_range_ms"][0]
    assert mid["latency_range_ms"][1] < large["latency_range_ms"][0]
    frontier = next(t for t in fig.data if t["name"] == "Pareto frontier")
    labels = [t for t in frontier["text"] if t]
    assert labels == ["≈ mobilenet_v1@0.25:128", "≈ mobilenet_v1@0.25:160", "mobilenet_v1:224"]
    # The table of numbers: ★≈ and the range beside the latency, as markup, not as text.
    table = _results_table(c)
    assert "&lt;span" not in table
    for r in (small, mid, large):
        low, high = r["latency_range_ms"]
        approx = "≈" if r["order_uncertain"] else ""
        assert (f"★ {approx}{r['latency_ms']:.3g} ({r['rank']}) "
                f'<span class="sub">{low:.3g}–{high:.3g}</span>') in table


@pytest.mark.parametrize("top1, message", [
    ({"mobilenet_v2": 75.0}, "--top1 'mobilenet_v2' names no compared model"),
    ({"mobilenet_v1@0.25:128": 101.0}, "must be a percentage from 0 to 100"),
    ({"mobilenet_v1@0.25:128": float("nan")}, "must be a percentage from 0 to 100"),
    ({"nets.py": 50.0}, "--top1 'nets.py'"),
])
def test_bad_top1_in_the_api(top1, message):
    with pytest.raises(UsageError, match=message):
        compare(resolve_models("mobilenet_v1@0.25:128"), [kit.profile("t")], top1=top1)


@pytest.mark.parametrize("argv, message", [
    (["--top1", "mobilenet_v1@0.25:128"], "must be MODEL=PERCENT"),
    (["--top1", "mobilenet_v1@0.25:128=-1"], "must be a percentage from 0 to 100, got '-1'"),
    (["--top1", "mobilenet_v1@0.25:128=abc"], "must be a percentage from 0 to 100"),
    (["--top1", "mobilenet_v3_small=70"], "names no compared model; add it to --models"),
])
def test_bad_top1_on_the_command_line(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    hw = write_profile(tmp_path, kit.profile("t"))
    try:
        code = main(["compare", "--hw", hw, "--models", "mobilenet_v1@0.25:128", "--no-report",
                     *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_roofline_caption_names_capacity_only_levels():
    """An on-chip level without a bandwidth has no roof; the caption says what that means and
    never claims the drawn roofs bound every kernel."""
    from roofline.report.compare_page import roofline_caption, roofline_figure

    sram = kit.profile("sram", peak=1e12, bandwidth=1e10,
                memory=[{"name": "SRAM", "capacity_bytes": 8 * 2 ** 20}])
    l2 = kit.profile("l2", peak=1e12, bandwidth=1e10,
              memory=[{"name": "L2", "capacity_bytes": 2 ** 20, "bandwidth_bytes_per_s": 1e11}])
    c = compare(resolve_models("mobilenet_v1@0.25:128"), [sram, l2])
    label = c.labels[0]
    text = roofline_caption(c, "sram", label)
    assert "SRAM (8 MiB): no published bandwidth" in text and "above the DRAM slope" in text
    assert "ridge point, peak ÷ DRAM bandwidth = 100 MACs/byte" in text  # 1e12 / 1e10
    assert "Every kernel lies under" not in text
    names = [t["name"] for t in roofline_figure(c, "sram", label).data]
    assert not any("SRAM" in n for n in names)  # no roof without a bandwidth
    text = roofline_caption(c, "l2", label)
    assert "Dotted: L2 100 GB/s" in text and "Every kernel lies under the peak" in text
    assert any("memory: L2 100 GB/s" in t["name"] for t in roofline_figure(c, "l2", label).data)
