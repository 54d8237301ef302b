"""roofline search: spaces as data, genomes, block-graph pricing against tracing the whole
network, frontiers, evolution, lookup tables, the command line and interruption."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roofline.analyses.backends import LocalBackend
from roofline.analyses.pareto import pareto_mask
from roofline.analyses.search.blocks import UnitBank
from roofline.analyses.search.candidates import Genome
from roofline.analyses.search.lut import build_lut
from roofline.analyses.search.pricing import (
    ComposedKernels,
    compose,
    price_rows,
    trace_network,
)
from roofline.analyses.search.search import SearchConfig, frontier_mask, run_search
from roofline.analyses.search.space import list_spaces, load_space, space_from_dict
from roofline.analyses.sweep import views_of
from roofline.cli import main
from roofline.core.engine import KernelTable, kernel_arrays, kernel_graph, predict, price
from roofline.core.hardware import list_hardware, load_hardware
from roofline.errors import UnknownNameError, UsageError

from kit import run_cli

FOUR = ("cpu", "dsp", "gpu", "edgetpu")


@pytest.fixture(scope="module")
def every_profile():
    return [load_hardware(name) for name in list_hardware()]


def genome_for(space, hardware):
    return Genome(load_space(space), UnitBank(views_of(hardware)))


# -- spaces ---------------------------------------------------------------------------------------

def test_shipped_spaces_are_listed_and_cite_their_papers():
    assert set(list_spaces()) >= {"mobilenet_v4", "mobilenet_v3"}
    v4, v3 = load_space("mobilenet_v4"), load_space("mobilenet_v3")
    assert "Qin et al. 2024" in " ".join(v4.sources.values())
    assert "MnasNet" in " ".join(v3.sources.values())
    assert v4.choices and v3.choices  # what was chosen where the papers are open
    # MobileNetV4: the four UIB instantiations with 3x3/5x5 depthwise kernels and e = 4
    # (Sec. 4.1's fine search), Mobile MQA offered in the last stage only.
    uib = {"ib", "convnext", "extradw", "ffn"}
    assert all(uib <= set(s.blocks) and s.kernel == [3, 5] and s.expand == [4.0]
               for s in v4.stage[2:])
    assert [("mqa" in s.blocks) for s in v4.stage] == [False] * 4 + [True]
    # MnasNet's factorised space: one op per stage; kernels 3/5/7, e 3/6, SE on/off.
    assert v3.share == "stage"
    assert all(s.kernel == [3, 5, 7] and s.expand == [3.0, 6.0] and s.se == [False, True]
               for s in v3.stage[2:])


def test_stage_ops_follow_the_block_rules():
    space = load_space("mobilenet_v4")
    first, rest = space.stage_ops(2)
    tokens = [op.token for op in rest]
    # IB and ConvNext-like: 2 kernels each; ExtraDW: 2 x 2; FFN: 1 → 9 options at e = 4.
    assert len(rest) == 9 and "xd35e4" in tokens and "ffne4" in tokens
    # The first block of a strided stage cannot be an FFN (no depthwise to carry the stride).
    assert "ffne4" not in [op.token for op in first] and len(first) == 8
    assert "mqa4x64s1" in [op.token for op in space.stage_ops(4)[1]]


def test_unknown_space_suggests_close_names():
    with pytest.raises(UnknownNameError, match="did you mean mobilenet_v4"):
        load_space("mobilenet_v44")


@pytest.mark.parametrize("change, field", [
    ({"resolution": [224], "stage": []}, "(top level)"),
    ({"bogus": 1}, "bogus"),
    ({"stage": [{"name": "s", "blocks": ["ib"], "channels": [16], "kernel": [4]}]},
     "stage.0.kernel"),
    ({"stage": [{"name": "s", "blocks": ["ffn"], "channels": [16], "stride": 2}]},
     "(top level)"),
    ({"stage": [{"name": "s", "blocks": ["warp"], "channels": [16]}]}, "stage.0.blocks.0"),
    ({"stage": [{"name": "s", "blocks": ["ib"], "channels": [0]}]}, "stage.0.channels"),
    ({"stage": [{"name": "s", "blocks": ["ib"], "channels": [8], "expand": [float("nan")]}]},
     "stage.0.expand"),
])
def test_bad_space_fields_are_named(change, field):
    data = {"name": "x", "resolution": [224],
            "stage": [{"name": "s", "blocks": ["conv"], "channels": [16]}]}
    data.update(change)
    with pytest.raises(UsageError, match=re.escape(f"field '{field}'")):
        space_from_dict(data, "x.toml")


_values = st.one_of(st.none(), st.booleans(), st.integers(-3, 3000), st.floats(allow_nan=True),
                    st.text(max_size=8), st.lists(st.integers(-2, 9), max_size=4),
                    st.lists(st.floats(allow_nan=True), max_size=3),
                    st.lists(st.text(max_size=8), max_size=3))


@settings(max_examples=200, deadline=None)
@given(top=st.dictionaries(st.sampled_from(["name", "resolution", "share", "activation",
                                            "batch", "stage", "head", "bogus"]), _values,
                           max_size=4),
       stage=st.dictionaries(st.sampled_from(["name", "blocks", "channels", "depth", "stride",
                                              "kernel", "expand", "se", "activation",
                                              "heads", "kv_stride", "bogus"]), _values,
                             max_size=6))
def test_space_loader_never_crashes(top, stage):
    data = {"name": "x", "resolution": [224],
            "stage": [{"name": "s", "blocks": ["ib"], "channels": [16], **stage}], **top}
    try:
        space = space_from_dict(data, "x.toml")
    except UsageError as exc:
        assert str(exc).startswith("x.toml") and "\n" not in str(exc)
    else:
        Genome(space).sample(3, np.random.default_rng(0))  # a valid space can be sampled


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=200))
def test_space_file_never_crashes(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("space") / "s.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError):
        load_space(str(path))


# -- genomes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("space", ["mobilenet_v4", "mobilenet_v3"])
def test_encoding_round_trips_and_rows_are_canonical(space):
    genome = Genome(load_space(space))
    rng = np.random.default_rng(3)
    rows = genome.sample(300, rng)
    assert (genome.decode(genome.encode(rows)) == rows).all()
    children = genome.mutate(rows, rng)
    assert (genome.decode(genome.encode(children)) == children).all()
    assert (children != rows).any(axis=1).mean() > 0.8  # nearly every child changed
    for stage in genome.stages:
        depth = stage.depths[rows[:, stage.column + 1]]
        slots = rows[:, stage.column + 2:stage.column + 2 + int(stage.depths.max())]
        assert ((slots >= 0).sum(axis=1) == depth).all()
        if genome.space.share == "stage":
            used = slots[:, :1]
            assert ((slots == used) | (slots < 0)).all()


def test_decode_names_what_does_not_fit():
    genome = Genome(load_space("mobilenet_v4"))
    good = genome.encode(genome.sample(1, np.random.default_rng(0)))[0]
    with pytest.raises(UsageError, match="resolution"):
        genome.decode(["123" + good[3:]])
    with pytest.raises(UsageError, match="not one of"):
        genome.decode([good.replace("fib3e4", "fib7e4")])


# -- pricing from block graphs = pricing the built network ----------------------------------------

# Hand-written candidates with the cases that need care: a Mobile MQA after a strided block,
# two MQA in a row (one unit of three blocks), an FFN, ExtraDW 5x5 at the stage start.
MQA_CASES = [
    "224/32:conv3/48:fib3e4/80:xd55e4,ffne4/160:xd35e4,ib3e4,cn5e4/256:ib5e4,mqa4x64s1,"
    "mqa4x64s1,ffne4",
    "256/24:conv3/32:fib3e4/64:cn3e4/96:ib3e4,ffne4,ffne4/128:xd33e4,ffne4,cn3e4,mqa4x64s1",
]


def _candidates(genome, n, seed, extra=()):
    rows = genome.sample(n, np.random.default_rng(seed))
    return np.concatenate([rows, genome.decode(list(extra))]) if extra else rows


@pytest.mark.parametrize("space, extra", [("mobilenet_v4", MQA_CASES), ("mobilenet_v3", ())])
def test_composed_pricing_equals_tracing_the_built_network(space, extra, every_profile):
    genome = genome_for(space, every_profile)
    rows = _candidates(genome, 10, seed=11, extra=extra)
    composed = price_rows(genome, rows, every_profile)
    graphs = [trace_network(genome, row) for row in rows]
    whole = price(graphs, every_profile)
    assert [g.macs for g in graphs] == composed.macs.astype(int).tolist()
    assert [g.params for g in graphs] == composed.params.astype(int).tolist()
    assert (np.isnan(whole.latency_s) == np.isnan(composed.latency_s)).all()
    ok = np.isfinite(whole.latency_s)
    assert ok.any(axis=1).all()  # every profile priced something
    np.testing.assert_allclose(composed.latency_s[ok], whole.latency_s[ok], rtol=1e-9, atol=0)
    # The engine's range of each prediction comes through as well.
    for name in ("latency_low_s", "latency_high_s"):
        expected = getattr(whole, name, whole.latency_s)
        np.testing.assert_allclose(getattr(composed, name)[ok], expected[ok], rtol=1e-9, atol=0)
    # The same through the per-model entry point, for a few (model, device) pairs.
    for g in (0, len(rows) - 1):
        for h in (0, len(every_profile) - 1):
            p = predict(graphs[g], every_profile[h])
            if p.supported:
                assert p.latency_ms == pytest.approx(composed.latency_s[h, g] * 1e3, rel=1e-9)


def test_composed_arrays_equal_the_whole_networks_kernel_arrays():
    hardware = [load_hardware(h) for h in FOUR]
    genome = genome_for("mobilenet_v4", hardware)
    rows = _candidates(genome, 3, seed=5, extra=MQA_CASES[:1])
    units = genome.units(rows)
    genome.bank.fill(units)
    kernels = ComposedKernels(genome.bank, units)
    for view in genome.bank.views:
        for g, row in enumerate(rows):
            expected = kernel_arrays(kernel_graph(trace_network(genome, row), *view))
            got = kernels.kernel_arrays_of(g, view)
            for name, value in expected.items():
                np.testing.assert_array_equal(got[name], value, err_msg=name)
        # compose() builds the table directly; it must be what from_arrays would build.
        direct, _ = compose(genome.bank, units, view)
        reference = KernelTable.from_arrays([kernels.kernel_arrays_of(g, view)
                                             for g in range(len(rows))])
        for name in ("graph", "kind", "macs", "weight_elements", "bias_elements", "gemm",
                     "edge_kernel", "edge_distance", "write_kernel", "write_distance",
                     "graph_weight_elements", "graph_bias_elements", "graph_kernels",
                     "graph_precision"):
            np.testing.assert_array_equal(getattr(direct, name), getattr(reference, name),
                                          err_msg=name)


def test_pricing_by_context_gives_the_engines_numbers(every_profile):
    from roofline.analyses.search.pricing import price_contexts, price_units

    hardware = [hw for hw in every_profile if not hw.support.fallback]
    genome = genome_for("mobilenet_v4", hardware)
    rows = _candidates(genome, 600, seed=21, extra=MQA_CASES)
    units = genome.units(rows)
    genome.bank.fill(units)
    engine = price_units(genome.bank, units, hardware)  # price() on the composed tables
    fast, parts = price_contexts(genome.bank, units, hardware, parts=True)
    assert len(parts) == len(hardware)
    for name in ("latency_s", "latency_low_s", "latency_high_s"):
        a, b = getattr(engine, name), getattr(fast, name)
        assert (np.isnan(a) == np.isnan(b)).all()
        ok = np.isfinite(a)
        np.testing.assert_allclose(b[ok], a[ok], rtol=1e-9, atol=0, err_msg=name)
    assert (fast.macs == engine.macs).all() and (fast.params == engine.params).all()


def test_block_totals_by_context_equal_the_composed_ones(four):
    from roofline.analyses.search.search import (
        _price_chunk,
        _price_chunk_composed,
        unit_block_table,
    )

    genome = genome_for("mobilenet_v4", four)
    rows = _candidates(genome, 300, seed=8, extra=MQA_CASES)
    units = genome.units(rows)
    genome.bank.fill(units)
    n_blocks = len(genome.blocks) + len(genome.head_keys)
    context = (genome.bank, four, None, n_blocks)
    item = (units, unit_block_table(genome))
    (_, fast), (_, composed) = _price_chunk(context, item), _price_chunk_composed(context, item)
    for name in ("latency_s", "count", "unsupported", "weight_bytes", "clean"):
        np.testing.assert_allclose(getattr(fast, name), getattr(composed, name), rtol=1e-9,
                                   err_msg=name)


def test_a_device_with_a_fallback_is_priced_whole(four):
    from roofline.analyses.search.pricing import price_contexts

    base = load_hardware("dsp")
    dsp = base.with_changes(
        support={"unsupported": ["matmul"], "fallback": "pixel6-cpu",
                 "fallback_transfer_s": 1e-4},
        sources={**base.sources, "support.fallback_transfer_s": "a test's assumption"})
    hardware = [four[0], dsp]
    genome = genome_for("mobilenet_v4", hardware)
    rows = genome.decode(MQA_CASES)
    assert price_contexts(genome.bank, genome.units(rows), hardware) is None
    composed = price_rows(genome, rows, hardware)
    whole = price([trace_network(genome, row) for row in rows], hardware).latency_s
    assert np.isfinite(whole).all()  # the attention runs on the fallback CPU
    np.testing.assert_allclose(composed.latency_s, whole, rtol=1e-9)


# -- frontiers, targets, search -------------------------------------------------------------------

def test_frontier_mask_is_pareto_mask():
    rng = np.random.default_rng(0)
    for _ in range(300):
        cost = rng.integers(0, 6, 25).astype(float)
        gain = rng.integers(0, 6, 25).astype(float)
        cost[rng.random(25) < 0.1] = np.nan
        gain[rng.random(25) < 0.1] = np.nan
        assert frontier_mask(cost, gain).tolist() == pareto_mask(list(cost), list(gain))


@pytest.fixture(scope="module")
def four():
    return tuple(load_hardware(h) for h in FOUR)


@pytest.fixture(scope="module")
def v4_search(four):
    config = SearchConfig(load_space("mobilenet_v4"), four, 3000, seed=1,
                          targets=((0, 0.008), (3, 0.001)))
    return run_search(config, LocalBackend(1))


def test_random_search_prices_distinct_candidates(v4_search):
    r = v4_search
    assert r.count == 3000 and not r.partial
    assert len({row.tobytes() for row in r.rows}) == 3000
    # Mobile MQA cannot run on the DSP, which has no fallback: exactly the MQA candidates fail.
    has_mqa = np.array(["mqa" in e for e in r.encodings])
    assert (np.isnan(r.prices.latency_s[1]) == has_mqa).all()
    assert np.isfinite(r.prices.latency_s[[0, 2, 3]]).all()
    expected = np.isfinite(r.prices.latency_s).all(axis=0) & \
        (r.prices.latency_s[0] <= 0.008) & (r.prices.latency_s[3] <= 0.001)
    assert (r.meets == expected).all() and 0 < r.meets.sum() < r.count


def test_frontiers_and_targets_match_the_built_networks_on_a_sample(v4_search, four):
    r = v4_search
    rng = np.random.default_rng(2)
    # A sample holding some frontier points of the first device, and random others.
    front = np.flatnonzero(r.frontier(0, "macs"))[:6]
    picks = np.unique(np.concatenate([front, rng.choice(r.count, 24, replace=False)]))
    graphs = [trace_network(r.genome, r.rows[i]) for i in picks]
    whole = price(graphs, four).latency_s
    macs = np.array([g.macs for g in graphs], dtype=float)
    params = np.array([g.params for g in graphs], dtype=float)
    composed = r.prices.latency_s[:, picks]
    for h in range(len(four)):
        for gain_whole, gain_composed in ((macs, r.prices.macs[picks]),
                                          (params, r.prices.params[picks])):
            assert (frontier_mask(whole[h], gain_whole) ==
                    frontier_mask(composed[h], gain_composed)).all()
    meets_whole = np.isfinite(whole).all(axis=0) & (whole[0] <= 0.008) & (whole[3] <= 0.001)
    assert (meets_whole == r.meets[picks]).all()


@pytest.mark.slow
def test_evolution_is_seeded_and_finds_larger_feasible_networks(four):
    space = load_space("mobilenet_v4")
    targets = ((0, 0.004), (3, 0.0008))

    def best(strategy, seed):
        r = run_search(SearchConfig(space, four, 1500, strategy=strategy, seed=seed,
                                    targets=targets), LocalBackend(1))
        return r, float(r.prices.macs[r.meets].max()) if r.meets.any() else 0.0

    evo, evo_best = best("evolution", 4)
    again, _ = best("evolution", 4)
    assert (evo.rows == again.rows).all()  # the seed fixes the search
    assert evo.count == 1500 and (evo.origin == 1).sum() > 1000
    _, random_best = best("random", 4)
    assert evo_best > random_best  # same budget: evolution climbs the feasible set
    assert evo.meets.mean() > 2 * np.mean(evo.meets[evo.generation == 0])


def test_lookup_table_sum_is_within_5_percent(v4_search):
    lut = build_lut(v4_search, check=400)
    for device, e in lut.error_pct.items():
        assert e["candidates"] > 100, device
        assert e["max_abs_pct"] <= 5.0, (device, e)
    rows = lut.rows()
    assert {r["device"] for r in rows} == {hw.name for hw in v4_search.hardware}
    assert any(r["block"] == "(per inference)" for r in rows)
    # An EdgeTPU keeps the weights on chip when the whole model fits: both places appear.
    edgetpu = {r["weights_in"] for r in rows if r["device"] == "pixel8-edgetpu"
               and r["block"] != "(per inference)"}
    assert len(edgetpu) == 2


# -- the command line -----------------------------------------------------------------------------

def test_search_command_writes_rows_lut_and_page(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    csv_path, lut_path, page = tmp_path / "rows.csv", tmp_path / "lut.json", tmp_path / "s.html"
    code, out, err = run_cli(capsys, "search", "mobilenet_v3", "--hw", "cpu,edgetpu",
                         "--samples", "400", "--latency-ms", "cpu=12,edgetpu=1.5",
                         "--csv", str(csv_path), "--lut", str(lut_path), "--lut-check", "100",
                         "--check", "3", "--out", str(page))
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "universally fast" in out and "check: 3 candidates" in out
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 400
    assert {"candidate", "macs", "params", "pixel6-cpu.latency_ms",
            "pixel6-cpu.latency_low_ms", "pixel8-edgetpu.latency_high_ms",
            "pixel8-edgetpu.pareto_params", "meets_targets"} <= set(rows[0])
    lut = json.loads(lut_path.read_text())
    assert lut["error"]["pixel6-cpu"]["candidates"] == 100 and lut["entries"]
    html = page.read_text()
    assert "Fast on every device at once" in html and "Latency lookup table" in html


def test_search_json_rows_and_user_space_file(capsys, tmp_path):
    space = tmp_path / "tiny.toml"
    space.write_text('name = "tiny"\nresolution = [96, 128]\n'
                     '[[stage]]\nname = "stem"\nblocks = ["conv"]\nchannels = [8, 16]\n'
                     'stride = 2\n'
                     '[[stage]]\nname = "body"\nblocks = ["ib", "extradw"]\nkernel = [3]\n'
                     'expand = [2, 4]\nchannels = [16, 24]\ndepth = [1, 2]\nstride = 2\n')
    code, out, err = run_cli(capsys, "search", str(space), "--hw", "gpu", "--samples", "1000",
                         "--json", "--no-report")
    assert code == 0, err
    rows = json.loads(out)
    # 2 resolutions x stem 2 widths x body 2 widths x (4 + 4^2 ops for depth 1, 2) = 160.
    assert len(rows) == 160 == len({r["candidate"] for r in rows})
    assert all(r["s23-gpu.latency_ms"] > 0 for r in rows)
    assert "160 candidates" in err


@pytest.mark.parametrize("argv, message", [
    (["mobilenet_v44"], "unknown search space 'mobilenet_v44'; did you mean mobilenet_v4"),
    (["mobilenet_v4", "--latency-ms", "cpu"], "is not HW=MS"),
    (["mobilenet_v4", "--latency-ms", "tpu=1"], "not in --hw"),
    (["mobilenet_v4", "--latency-ms", "cpu=-1"], "finite number > 0"),
    (["mobilenet_v4", "--latency-ms", "cpu=fast"], "not a number"),
    (["mobilenet_v4", "--samples", "0"], "--samples"),
    (["mobilenet_v4", "--samples", "20000000"], "at most"),
    (["mobilenet_v4", "--strategy", "evolution"], "give --latency-ms"),
    (["mobilenet_v4", "--lut", "table.xlsx"], ".csv or .json"),
    (["mobilenet_v4", "--address", "host:6379"], "--address goes with --backend ray"),
    (["no/such/space.toml"], "does not exist"),
])
def test_bad_search_input_is_one_line_and_exit_2(capsys, argv, message):
    code, out, err = run_cli(capsys, "search", *argv, "--no-report")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_space_file_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\nresolution = [224]\n[[stage]]\nname = "s"\nblocks = ["ib"]\n'
                   'channels = [16]\nkernel = [2]\n')
    code, _, err = run_cli(capsys, "search", str(bad), "--no-report")
    assert code == 2 and "field 'stage.0.kernel'" in err and "odd" in err


def test_list_spaces(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(capsys, "list", "spaces")
    assert code == 0 and "mobilenet_v4" in out and "mobilenet_v3" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    code, out, _ = run_cli(capsys, "list", "spaces", "--json")
    assert {r["name"] for r in json.loads(out)} >= {"mobilenet_v4", "mobilenet_v3"}


def _interrupt_on_call(monkeypatch, n):
    from roofline.analyses.search import search as search_module

    real = search_module._price_chunk
    calls = {"n": 0}

    def flaky(context, item):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real(context, item)

    monkeypatch.setattr(search_module, "_price_chunk", flaky)


def test_interrupt_keeps_the_priced_candidates(monkeypatch):
    _interrupt_on_call(monkeypatch, 2)
    config = SearchConfig(load_space("mobilenet_v3"), (load_hardware("cpu"),), 300, chunk=100)
    result = run_search(config, LocalBackend(1))
    assert result.partial and result.stats.interrupted
    assert result.count == 100 and len(result.rows_out()) == 100  # the chunk that finished


def test_interrupted_command_exits_130_and_writes_what_finished(capsys, tmp_path,
                                                                monkeypatch):
    _interrupt_on_call(monkeypatch, 1)
    csv_path = tmp_path / "rows.csv"
    code, out, err = run_cli(capsys, "search", "mobilenet_v3", "--hw", "cpu", "--samples", "300",
                         "--workers", "1", "--csv", str(csv_path), "--no-report")
    assert code == 130, err
    assert "interrupted" in out
    with csv_path.open() as handle:
        assert list(csv.DictReader(handle)) == []


@pytest.mark.slow
@pytest.mark.browser
def test_search_page_renders_offline_in_chromium(tmp_path):
    from test_report_browser import ARTIFACTS, _open_in_chromium

    page = tmp_path / "search.html"
    assert main(["search", "mobilenet_v4", "--hw", "cpu,dsp,gpu,edgetpu", "--samples", "1500",
                 "--latency-ms", "cpu=8,gpu=3,edgetpu=1", "--lut", str(tmp_path / "lut.csv"),
                 "--lut-check", "200", "--out", str(page)]) == 0
    seen = _open_in_chromium(page, [tmp_path / "search-report.png",
                                    ARTIFACTS / "search-report.png"])
    assert seen["outside"] == [] and seen["console"] == [] and seen["page"] == []
    figures = seen["figures"]
    # Per device MACs and params frontiers, and the cross-device chart.
    assert len(figures) == 4 * 2 + 1
    assert all(f["svg"] >= 1 and f["title"] and f["traces"] >= 1 for f in figures)
    assert "Fast on every device at once" in seen["text"]
    assert "Latency lookup table" in seen["text"]


def test_shipped_spaces_are_package_data():
    import fnmatch
    import sys
    from pathlib import Path

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    root = Path(__file__).resolve().parents[1]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["roofline.analyses.search.spaces"]
    folder = root / "roofline" / "analyses" / "search" / "spaces"
    files = [p.name for p in folder.iterdir() if p.suffix == ".toml"]
    assert len(files) >= 2
    assert all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files)
