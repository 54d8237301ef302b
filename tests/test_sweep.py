"""roofline sweep: grids, the array evaluation against predict(), frontiers, interruption."""

from __future__ import annotations

import csv
import html
import json

import numpy as np
import pytest

from roofline.analyses.sweep import evaluate_grid, parse_grid, sweep_variants, trace_all, views_of
from roofline.core.engine import predict
from roofline.core.hardware import load_hardware
from roofline.errors import UsageError
from roofline.sources.variant import Variant

from kit import run_cli

# -- grids ----------------------------------------------------------------------------------------

def test_inclusive_decimal_range():
    widths = parse_grid("0.25:1.5:0.05", "--width")
    # (1.5 - 0.25) / 0.05 + 1 = 26 values, every one a clean decimal
    assert len(widths) == 26
    assert widths[:3] == [0.25, 0.3, 0.35] and widths[-1] == 1.5
    assert 0.30000000000000004 not in widths


def test_stop_off_the_grid_is_not_included():
    assert parse_grid("96:320:64", "--resolution", integer=True) == [96, 160, 224, 288]


def test_lists_and_single_values():
    assert parse_grid("0.5, 0.75,1.0", "--width") == [0.5, 0.75, 1.0]
    assert parse_grid("224", "--resolution", integer=True) == [224]
    assert parse_grid("1,1,0.5", "--width") == [1.0, 0.5]  # duplicates once


@pytest.mark.parametrize("text, integer, message", [
    ("1:0.5:0.1", False, "above stop"),
    ("0.5:1:0", False, "step must be > 0"),
    ("0.5:1:-0.1", False, "step must be > 0"),
    ("a:1:0.1", False, "not a number"),
    ("0.5:1", False, "START:STOP:STEP"),
    ("0,0.5", False, "values must be > 0"),
    ("nan", False, "finite"),
    ("96:400:32.5", True, "whole number"),
    ("4:32:4", True, "outside 8..8192"),
    ("0:100000000:1", True, "at most"),
    ("", False, "empty"),
])
def test_bad_ranges(text, integer, message):
    with pytest.raises(UsageError, match=message):
        parse_grid(text, "--x", integer=integer)


def test_too_many_variants():
    with pytest.raises(UsageError, match="at most"):
        sweep_variants("mobilenet_v2", [1.0] * 1001, list(range(8, 108)))


# -- the array evaluation -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_sweep():
    variants = sweep_variants("mobilenet_v2", [0.35, 0.5, 1.0], [96, 160])
    hardware = [load_hardware(n) for n in ("cpu", "gpu", "dsp")]
    arrays, stats = trace_all(variants, views_of(hardware), workers=1)
    return variants, hardware, evaluate_grid(variants, arrays, hardware, stats=stats)


def test_grid_matches_predict_one_by_one(small_sweep):
    variants, hardware, result = small_sweep
    assert result.latency_s.shape == (3, 6)
    for h, hw in enumerate(hardware):
        for m, v in enumerate(variants):
            expected = predict(v.trace(), hw).latency_ms
            assert result.latency_s[h, m] * 1e3 == pytest.approx(expected, rel=1e-12)
            assert result.macs[m] == v.trace().macs


def test_frontiers_hold_exactly_the_undominated_variants(small_sweep):
    # The definition, checked pair by pair: a variant is on the MACs frontier when no other
    # variant is as fast or faster with as many MACs or more, one of the two strictly.
    _, hardware, result = small_sweep
    macs = list(result.macs)
    for h in range(len(hardware)):
        by_macs, by_top1 = result.frontier(h)
        latency = list(result.latency_s[h])

        undominated = [
            not any(latency[j] <= latency[i] and macs[j] >= macs[i]
                    and (latency[j] < latency[i] or macs[j] > macs[i]) for j in range(len(macs)))
            for i in range(len(macs))]
        assert by_macs == undominated
        assert any(by_macs)
        # mobilenet_v2 has published top-1 figures only at 224, not in this grid.
        assert not any(by_top1)


def test_rows_have_every_field(small_sweep):
    _, _, result = small_sweep
    rows = result.rows()
    assert len(rows) == 3 * 6
    assert set(rows[0]) == {"model", "label", "width", "resolution", "batch", "hardware",
                            "precision", "macs", "params", "latency_ms", "latency_range_ms",
                            "supported", "top1", "pareto_macs", "pareto_top1"}
    for row in rows:  # every supported latency lies inside its range
        low, high = row["latency_range_ms"]
        assert low < row["latency_ms"] < high


def test_second_sweep_on_other_devices_is_served_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path / "cache"))
    variants = sweep_variants("mobilenet_v3_small", [0.5, 0.75], [96, 128])
    first = [load_hardware("cpu")]
    _, stats = trace_all(variants, views_of(first), workers=2)
    assert (stats.cached, stats.traced) == (0, 4)
    # Same kernel view (TFLite fusion), another device: nothing is traced again.
    second = [load_hardware("pixel4-dsp"), load_hardware("s23-cpu")]
    arrays, stats = trace_all(variants, views_of(second), workers=2)
    assert (stats.cached, stats.traced) == (4, 0)
    # A device with another kernel view re-reads the cached graphs, never the model.
    arrays, stats = trace_all(variants, views_of([load_hardware("gpu")]), workers=1)
    assert stats.traced == 4
    result = evaluate_grid(variants, arrays, [load_hardware("gpu")])
    assert np.all(np.isfinite(result.latency_s))


def test_a_swept_grid_is_cached_as_one_file(tmp_path, monkeypatch):
    import roofline.sources.cache as cache
    from roofline.analyses.sweep import KernelGrid

    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path / "cache"))
    variants = sweep_variants("mobilenet_v3_small", [0.5, 0.75], [96, 128])
    hardware = [load_hardware("cpu"), load_hardware("gpu")]
    arrays, stats = trace_all(variants, views_of(hardware), workers=1)
    first = evaluate_grid(variants, arrays, hardware, stats=stats)
    (grid_file,) = (tmp_path / "cache" / "grids").iterdir()

    def no_per_variant_reads(*args):
        raise AssertionError("a cached grid must be read from its one file")

    monkeypatch.setattr(cache, "load_arrays", no_per_variant_reads)
    grid, stats = trace_all(variants, views_of(hardware), workers=1)
    assert isinstance(grid, KernelGrid) and (stats.cached, stats.traced) == (4, 0)
    again = evaluate_grid(variants, grid, hardware, stats=stats)
    for name in ("latency_s", "latency_low_s", "latency_high_s", "macs", "params"):
        assert np.array_equal(getattr(again, name), getattr(first, name))
    # Another grid (one variant fewer) is not that file.
    monkeypatch.undo()
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path / "cache"))
    part, stats = trace_all(variants[:3], views_of(hardware), workers=1)
    assert not isinstance(part, KernelGrid) and stats.cached == 3
    # A damaged grid file is ignored (and removed), and the variants' own files serve.
    grid_file.write_bytes(b"not a grid")
    arrays, stats = trace_all(variants, views_of(hardware), workers=1)
    assert not isinstance(arrays, KernelGrid) and stats.cached == 4
    assert not grid_file.exists()


def test_interruption_keeps_finished_variants(monkeypatch):
    import roofline.analyses.sweep as sweep

    variants = sweep_variants("mobilenet_v2", [0.3, 0.4, 0.6, 0.7], [64])
    calls = {"n": 0}
    real = sweep._arrays_for

    def interrupt_after_two(variant, views):
        if calls["n"] == 2:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(variant, views)

    monkeypatch.setenv("ROOFLINE_NO_CACHE", "1")
    monkeypatch.setattr(sweep, "_arrays_for", interrupt_after_two)
    hardware = [load_hardware("cpu")]
    arrays, stats = trace_all(variants, views_of(hardware), workers=1)
    assert stats.interrupted
    assert [a is not None for a in arrays] == [True, True, False, False]
    result = evaluate_grid(variants, arrays, hardware, stats=stats)
    assert result.partial and len(result.variants) == 2


# -- the command ----------------------------------------------------------------------------------

def test_sweep_command_writes_csv_json_and_report(capsys, tmp_path):
    out, table = tmp_path / "sweep.html", tmp_path / "rows.csv"
    code, stdout, err = run_cli(capsys, "sweep", "mobilenet_v2", "--width", "0.5:1.0:0.25",
                            "--resolution", "160,224", "--hw", "cpu,edgetpu", "--out",
                            str(out), "--csv", str(table), "--workers", "1", "--json")
    assert code == 0, err
    rows = json.loads(stdout)
    assert len(rows) == 3 * 2 * 2
    with table.open() as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == 12
    for row, line in zip(rows, written, strict=True):  # every variant runs on both devices
        low, high = row["latency_range_ms"]
        assert low < row["latency_ms"] < high
        assert json.loads(line["latency_range_ms"]) == [low, high]  # the CSV: its JSON text
    page = out.read_text()
    assert "pixel8-edgetpu" in page and "latency–MACs frontier" in page
    assert "latency, 80 % range (ms)" in page and "&lt;span" not in page
    published = [r for r in rows if r["top1"] is not None]
    # published_models.csv has mobilenet_v2 at 224 for widths 0.5, 0.75 and 1.0 (and others
    # outside this grid), none at 160
    assert {(r["width"], r["resolution"]) for r in published} == {(0.5, 224), (0.75, 224),
                                                                  (1.0, 224)}


def test_interrupted_command_writes_what_finished(capsys, tmp_path, monkeypatch):
    import roofline.analyses.sweep as sweep

    real = sweep._arrays_for
    calls = {"n": 0}

    def interrupt_after_one(variant, views):
        if calls["n"] == 1:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(variant, views)

    monkeypatch.setenv("ROOFLINE_NO_CACHE", "1")
    monkeypatch.setattr(sweep, "_arrays_for", interrupt_after_one)
    table, page = tmp_path / "rows.csv", tmp_path / "sweep.html"
    code, _, err = run_cli(capsys, "sweep", "mobilenet_v2", "--width", "0.3,0.4,0.5",
                       "--resolution", "64", "--hw", "cpu", "--workers", "1", "--csv",
                       str(table), "--out", str(page))
    assert code == 130
    assert "Traceback" not in err
    with table.open() as handle:
        assert len(list(csv.DictReader(handle))) == 1
    assert "(partial)" in page.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "sweep.html"]


def test_sweep_of_a_user_model(capsys, tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(
        "from torch import nn\n"
        "def build(width=1.0):\n"
        "    c = max(1, int(16 * width))\n"
        "    return nn.Sequential(nn.Conv2d(3, c, 3), nn.ReLU(), nn.Conv2d(c, c, 1))\n")
    code, stdout, err = run_cli(capsys, "sweep", f"{path}:build", "--width", "1,2",
                            "--resolution", "32", "--hw", "cpu", "--no-report", "--json",
                            "--workers", "1")
    assert code == 0, err
    rows = json.loads(stdout)
    # conv 3->16 3x3 on 32x32 -> 30x30: 900*16*27 = 388,800; 1x1 16->16: 900*256 = 230,400
    assert rows[0]["macs"] == 388_800 + 230_400
    # width 2: 900*32*27 = 777,600; 900*32*32 = 921,600
    assert rows[1]["macs"] == 777_600 + 921_600


@pytest.mark.parametrize("argv, message", [
    (["sweep"], "give MODEL"),
    (["sweep", "mobilenet_v2", "--width", "2:1:0.1"], "above stop"),
    (["sweep", "mobilenet_v2", "--resolution", "96:320:0"], "step must be > 0"),
    (["sweep", "mobilenet_v2", "--hw", ","], "empty hardware list"),
    (["sweep", "mobilenet_v2", "--hw", "cpuu"], "unknown hardware"),
    (["sweep", "mobilenet_v9"], "unknown model"),
    (["sweep", "mobilenet_v2", "--workers", "0"], "--workers"),
    (["sweep", "mobilenet_v2", "--batch", "0"], "batch"),
    (["sweep", "--ridge", "500:0"], "above stop"),
    (["sweep", "mobilenet_v2", "--ridge", "0:500"], "drop MODEL"),
])
def test_bad_input(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err


def test_ridge_sweep(capsys, tmp_path):
    code, stdout, err = run_cli(capsys, "sweep", "--ridge", "0:500:100", "--models",
                            "mobilenet_v1,mobilenet_v2,mobilenet_v4_conv_small", "--hw", "cpu",
                            "--json", "--out", str(tmp_path / "ridge.html"))
    assert code == 0, err
    rows = json.loads(stdout)
    assert len(rows) == 3 * 6  # 3 models x ridge points 0, 100, ..., 500
    at_zero = {r["model"]: r["cost_macs"] for r in rows if r["ridge_point"] == 0}
    # At ridge point 0 the cost is the MACs.
    assert at_zero["mobilenet_v2:224"] == Variant("mobilenet_v2").trace().macs
    assert min(r["relative"] for r in rows) == 1.0
    assert "Figure 2" in (tmp_path / "ridge.html").read_text()


def test_sweep_top1_for_one_variant(capsys, tmp_path):
    """--top1 names one variant of the grid (as its label says it); that variant then counts on
    the latency-top-1 frontier like a published one."""
    csv_path = tmp_path / "rows.csv"
    code, out, err = run_cli(capsys, "sweep", "mobilenet_v2", "--width", "0.3,0.5",
                         "--resolution", "224", "--hw", "cpu", "--workers", "1", "--no-report",
                         "--top1", "mobilenet_v2@0.3=55", "--csv", str(csv_path))
    assert code == 0, err
    with csv_path.open() as handle:
        rows = {r["width"]: r for r in csv.DictReader(handle)}
    assert rows["0.3"]["top1"] == "55.0" and rows["0.3"]["pareto_top1"] == "True"
    assert rows["0.5"]["top1"] == "65.4"  # published, V2 paper Table 4
    code, out, err = run_cli(capsys, "sweep", "mobilenet_v2", "--width", "0.3", "--hw", "cpu",
                         "--no-report", "--top1", "mobilenet_v2@0.4=55")
    assert code == 2 and "names no compared model" in err


def test_heatmap_colour_bar_has_ticks_within_one_decade():
    from roofline.report.page import log_ticks

    assert log_ticks(0.69, 0.97) == [0.7, 0.8, 0.9]  # the range: 1, 2, 5 give none
    assert log_ticks(0.3, 80) == [0.5, 1, 2, 5, 10, 20, 50]
    assert log_ticks(1.0, 1.0) == [1.0]
    assert log_ticks(1e-3, 1e5) == [1e-3, 1e-2, 0.1, 1, 10, 100, 1e3, 1e4, 1e5]  # decades


def test_every_heatmap_colour_bar_has_ticks(small_sweep):
    """Whatever the range of a device's latencies, its colour bar has ticks, and each tick is
    labelled with the latency it marks (the heatmap's z is log10 of ms)."""
    from roofline.report.page import log_ticks
    from roofline.report.sweep_page import heatmap_figure

    _, hardware, result = small_sweep
    for h in range(len(hardware)):
        ms = result.latency_s[h] * 1e3
        bar = heatmap_figure(result, h).data[0]["colorbar"]
        expected = log_ticks(float(np.nanmin(ms)), float(np.nanmax(ms)))
        assert len(expected) >= 2
        assert list(bar["ticktext"]) == [f"{t:g}" for t in expected]
        assert list(bar["tickvals"]) == pytest.approx([np.log10(t) for t in expected])


def _variants_trace(fig):
    (trace,) = [t for t in fig.data if t["name"] == "variants"]
    return trace


def test_frontier_error_bars_are_each_rows_range(small_sweep):
    """The bars of every plotted variant: right arm high − latency, left arm latency − low,
    from the rows (and from the engine's arrays behind them), so each bar spans the range."""
    from roofline.report.sweep_page import frontier_figure

    _, hardware, result = small_sweep
    rows = result.rows()
    for h, hw in enumerate(hardware):
        mine = [r for r in rows if r["hardware"] == hw.name]
        trace = _variants_trace(frontier_figure(result, h))
        bars = trace["error_x"]
        assert bars["symmetric"] is False and bars["type"] == "data"
        assert len(bars["array"]) == len(bars["arrayminus"]) == len(mine) == 6
        for m, (row, x, plus, minus) in enumerate(zip(mine, trace["x"], bars["array"],
                                                      bars["arrayminus"], strict=True)):
            low, high = row["latency_range_ms"]
            assert x == row["latency_ms"]
            assert plus == pytest.approx(high - row["latency_ms"], rel=1e-12)
            assert minus == pytest.approx(row["latency_ms"] - low, rel=1e-12)
            assert plus > 0 and minus > 0
            assert (x - minus, x + plus) == pytest.approx((low, high), rel=1e-12)
            ms = 1e3 * np.array([result.latency_low_s[h, m], result.latency_s[h, m],
                                 result.latency_high_s[h, m]])
            assert (minus, plus) == pytest.approx((ms[1] - ms[0], ms[2] - ms[1]), rel=1e-12)
            assert f"80% range: {low:.3g} ms – {high:.3g} ms" in trace["customdata"][m]
        # The x axis holds every bar (log10 of ms).
        lo, hi = frontier_figure(result, h).layout["xaxis"]["range"]
        assert lo < np.log10(min(r["latency_range_ms"][0] for r in mine))
        assert hi > np.log10(max(r["latency_range_ms"][1] for r in mine))


def test_an_absent_range_draws_no_bar_never_a_zero_one(small_sweep):
    """A variant without a range is drawn without an error bar. Not with a NaN arm either:
    the page writes NaN as null, which plotly reads as 0, a capped bar of no width."""
    import dataclasses

    from roofline.report.page import _json
    from roofline.report.sweep_page import frontier_figure

    _, _, result = small_sweep
    latency, low, high = (a.copy() for a in (result.latency_s, result.latency_low_s,
                                             result.latency_high_s))
    latency[0, 1] = np.nan  # variant 1 unsupported: no latency, no range
    low[0, 2] = np.nan  # variant 2: a range with an end that is no number is none
    high[0, 3] = np.inf  # variant 3: nor is an infinite one
    gaps = dataclasses.replace(result, latency_s=latency, latency_low_s=low,
                               latency_high_s=high)
    assert [gaps.latency_range_ms(0, m) is None for m in range(6)] == \
        [False, True, True, True, False, False]
    rows = [r for r in gaps.rows() if r["hardware"] == result.hardware[0].name]
    assert [r["latency_range_ms"] is None for r in rows] == [False, True, True, True, False,
                                                            False]
    json.dumps(rows, allow_nan=False)  # what --json prints: no NaN, no infinity

    fig = frontier_figure(gaps, 0)
    ms = latency[0] * 1e3
    with_bars = _variants_trace(fig)
    assert list(with_bars["x"]) == [ms[0], ms[4], ms[5]]
    bars = with_bars["error_x"]
    for m, plus, minus in zip((0, 4, 5), bars["array"], bars["arrayminus"], strict=True):
        assert plus == pytest.approx(high[0, m] * 1e3 - ms[m])
        assert minus == pytest.approx(ms[m] - low[0, m] * 1e3)
        assert plus > 0 and minus > 0
    (without,) = [t for t in fig.data if t["name"] == "variants (no range)"]
    assert list(without["x"]) == [ms[2], ms[3]] and "error_x" not in without
    assert without["customdata"] == ["", ""]  # no range in the hover either
    # Nothing else carries bars, and the page's JSON has no null (a zero bar) in any.
    drawn = json.loads(_json(fig.to_plotly_json()))["data"]
    assert [t["name"] for t in drawn if "error_x" in t] == ["variants"]
    assert None not in drawn[0]["error_x"]["array"] + drawn[0]["error_x"]["arrayminus"]

    # A sweep priced without ranges at all: no bar anywhere, every variant still drawn.
    bare = dataclasses.replace(result, latency_low_s=None, latency_high_s=None)
    fig = frontier_figure(bare, 0)
    assert list(_variants_trace(fig)["x"]) == []
    assert _variants_trace(fig)["error_x"]["array"] == []
    (without,) = [t for t in fig.data if t["name"] == "variants (no range)"]
    assert list(without["x"]) == list(result.latency_s[0] * 1e3)
    assert bare.order_uncertain(0) == [False] * 6


def _made_up_sweep(latency_ms, low_ms, high_ms, macs):
    """A one-device sweep result with latencies and ranges chosen by hand (96 px: no
    mobilenet_v2 variant there has a published top-1)."""
    from roofline.analyses.sweep import SweepResult

    import kit

    n = len(latency_ms)
    variants = [Variant("mobilenet_v2", w, 96) for w in (0.35, 0.5, 0.75, 1.0, 1.4)[:n]]
    return SweepResult(variants=variants, macs=np.array(macs, dtype=float),
                       params=np.full(n, 1e6), hardware=[kit.profile("made-up")],
                       precisions=["int8"], latency_s=np.array([latency_ms]) / 1e3,
                       latency_low_s=np.array([low_ms]) / 1e3,
                       latency_high_s=np.array([high_ms]) / 1e3, total_variants=n)


def test_frontier_variants_whose_ranges_overlap_are_marked(capsys):
    """By hand: on the frontier, fastest first, a (1.0 ms, 0.8–1.3) and b (1.2 ms, 1.1–1.4)
    overlap (1.3 >= 1.1); b and c (2.0 ms, 1.5–2.5) do not (1.4 < 1.5), nor c and d (3.0 ms,
    2.6–3.5: 2.5 < 2.6). e (1.5 ms with 15M MACs) is beaten by b (faster, 20M MACs): off the
    frontier, its range 0.1–9 overlaps all of them yet marks none."""
    from roofline.cli.sweep_cmd import _print_frontiers
    from roofline.report.sweep_page import _frontier_table, frontier_figure

    result = _made_up_sweep(latency_ms=[1.0, 1.2, 2.0, 3.0, 1.5],
                            low_ms=[0.8, 1.1, 1.5, 2.6, 0.1],
                            high_ms=[1.3, 1.4, 2.5, 3.5, 9.0],
                            macs=[10e6, 20e6, 30e6, 40e6, 15e6])
    assert result.frontier(0)[0] == [True, True, True, True, False]
    assert result.order_uncertain(0) == [True, True, False, False, False]

    # The page's table: ≈ before the latency of a and b only, each range beside its latency.
    table = _frontier_table(result, 0)
    for latency, low, high, mark in [("1", "0.8", "1.3", "≈"), ("1.2", "1.1", "1.4", "≈"),
                                     ("2", "1.5", "2.5", ""), ("3", "2.6", "3.5", "")]:
        assert f'<td class="num">{mark}{latency} ms <span class="sub">{low}–{high}</span>' \
            in table
    assert html.escape("≈: the variant's range overlaps the next frontier variant's") in table
    # The chart: the uncertain frontier points say so in their hover, the others do not.
    front = next(t for t in frontier_figure(result, 0).data
                 if t["name"] == "latency–MACs frontier")
    notes = ["overlaps the next frontier variant's" in c for c in front["customdata"]]
    assert list(front["x"]) == pytest.approx([1.0, 1.2, 2.0, 3.0])
    assert notes == [True, True, False, False]

    # The terminal: the same marks and ranges as low–high.
    capsys.readouterr()
    _print_frontiers(result)
    lines = {line.split()[0] + "@" + line.split()[1]: line.split()
             for line in capsys.readouterr().out.splitlines()
             if line.strip()[:1].isdigit()}
    assert [lines[k][4:6] for k in ("0.35@96", "0.5@96", "0.75@96", "1@96")] == \
        [["≈1.00", "0.80–1.30"], ["≈1.20", "1.10–1.40"], ["2.00", "1.50–2.50"],
         ["3.00", "2.60–3.50"]]
    assert "1.4@96" not in lines  # e is off the frontier


def test_a_datasheet_profile_shows_its_wide_range():
    """A profile with no fit rests on generic priors: its ranges are wide, and drawn."""
    from roofline.report.sweep_page import frontier_figure

    import kit

    variants = sweep_variants("mobilenet_v1", [0.25], [128, 160])
    hardware = [kit.profile("bare", peak=1e9)]
    arrays, stats = trace_all(variants, views_of(hardware), workers=1)
    result = evaluate_grid(variants, arrays, hardware, stats=stats)
    bars = _variants_trace(frontier_figure(result, 0))["error_x"]
    for m in range(2):
        low, high = result.latency_range_ms(0, m)
        assert high / low > 1.5  # a wide range, not a false point
        x = result.latency_s[0, m] * 1e3
        assert (x - bars["arrayminus"][m], x + bars["array"][m]) == pytest.approx((low, high))
    # 13.6M and 21.1M MACs, 1.55x apart: their wide ranges overlap, so both are marked.
    assert result.order_uncertain(0) == [True, True]


# -- resolutions derived from two traces ---------------------------------------------------------

@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small",
                                  "mobilenet_v4_hybrid_medium"])
def test_a_derived_resolution_is_the_traced_graph(name):
    from roofline.core.rescale import at_resolution

    a, b = Variant(name, 0.5, 96).trace_uncached(), Variant(name, 0.5, 320).trace_uncached()
    for r in (128, 224, 256):  # multiples of the largest stride (32): every size scales
        v = Variant(name, 0.5, r)
        derived = at_resolution(a, b, r, v.label)
        assert derived is not None and derived.to_dict() == v.trace_uncached().to_dict()
    # At 112 px the last stage is 112 / 32 = 3.5 pixels: the network rounds, and how cannot be
    # known from 96 and 320 px, so nothing is derived.
    assert at_resolution(a, b, 112, "x") is None


def _user_model(tmp_path, body: str) -> str:
    path = tmp_path / "net.py"
    path.write_text("import torch\nfrom torch import nn\n\n" + body)
    return f"{path}:Net"


def test_a_graph_whose_structure_changes_with_the_size_is_not_derived(tmp_path):
    from roofline.core.rescale import at_resolution
    from roofline.sources.variant import parse_variant

    branchy = _user_model(tmp_path, (
        "class Net(nn.Module):\n"
        "    def __init__(self, width=1.0):\n"
        "        super().__init__()\n"
        "        self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)\n"
        "    def forward(self, x):\n"
        "        x = self.a(x)\n"
        "        return self.b(x) if x.shape[-1] > 128 else x\n"))
    small, large = (parse_variant(f"{branchy}:{r}").trace_uncached() for r in (96, 320))
    assert at_resolution(small, large, 160, "x") is None


def test_sizes_that_do_not_scale_with_the_resolution_are_not_derived(tmp_path):
    from roofline.core.rescale import at_resolution
    from roofline.sources.variant import parse_variant

    # An unpadded 3x3 convolution: H - 2 pixels, not a power law of H.
    valid = _user_model(tmp_path, (
        "class Net(nn.Module):\n"
        "    def __init__(self, width=1.0):\n"
        "        super().__init__()\n"
        "        self.a = nn.Conv2d(3, 8, 3)\n"
        "    def forward(self, x):\n"
        "        return self.a(x)\n"))
    small, large = (parse_variant(f"{valid}:{r}").trace_uncached() for r in (96, 320))
    assert at_resolution(small, large, 160, "x") is None


def test_a_sweep_that_derives_resolutions_prices_what_tracing_each_would(tmp_path,
                                                                          monkeypatch):
    import roofline.core.rescale as rescale

    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path / "cache"))
    derived = []
    real = rescale.at_resolution

    def counting(*args):
        graph = real(*args)
        derived.append((args[2], graph is not None))  # (resolution, derived)
        return graph

    monkeypatch.setattr(rescale, "at_resolution", counting)
    # 96 and 224 are traced; 128 and 160 derived (multiples of 32); 144 (4.5 px at stride 32)
    # is traced after all.
    variants = sweep_variants("mobilenet_v3_small", [0.75], [96, 128, 144, 160, 224])
    hardware = [load_hardware("cpu"), load_hardware("gpu")]
    arrays, stats = trace_all(variants, views_of(hardware), workers=1)
    assert stats.traced == 5
    assert {r for r, ok in derived if ok} == {128, 160}
    assert {r for r, ok in derived if not ok} == {144}
    result = evaluate_grid(variants, arrays, hardware)
    for h, hw in enumerate(hardware):
        for m, v in enumerate(variants):
            expected = predict(v.trace_uncached(), hw)
            assert result.latency_s[h, m] * 1e3 == pytest.approx(expected.latency_ms, rel=1e-12)
            assert result.macs[m] == v.trace_uncached().macs
