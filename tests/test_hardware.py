"""Hardware profiles: shipped profiles, validation of bad files, aliases, the fitted orderings."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import pytest

from roofline.core.engine import predict
from roofline.core.hardware import (
    alias_target,
    list_hardware,
    load_hardware,
    profile_from_dict,
    profile_to_toml,
)
from roofline.errors import ProfileError, UnknownNameError
from roofline.fitting.calibrate import load_measurements, trace_measurements
from roofline.sources.variant import Variant
from roofline.zoo import list_models

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "hardware_profiles"
MEASUREMENTS = PROFILES / "measurements" / "measured_latency.csv"
REQUIRED = ["pixel6-cpu", "s23-cpu", "pixel4-dsp", "pixel7-gpu", "s23-gpu", "pixel8-edgetpu",
            "iphone13-coreml", "coral-edgetpu"]
ALIASES = {"cpu": "pixel6-cpu", "dsp": "pixel4-dsp", "gpu": "s23-gpu",
           "edgetpu": "pixel8-edgetpu"}
# Measurement-file device names that differ from the profile's.
MEASURED_AS = {"coral-edgetpu": "coral-edgetpu-usb3"}


def test_required_profiles_and_aliases_ship():
    names = list_hardware()
    for name in REQUIRED + list(ALIASES):
        assert name in names
    for alias, target in ALIASES.items():
        assert alias_target(alias) == target
        assert load_hardware(alias) == load_hardware(target)


@pytest.mark.parametrize("name", list_hardware())
def test_every_shipped_profile_loads_and_is_physical(name):
    hw = load_hardware(name)
    assert all(0 < e <= 1 for e in hw.efficiency.values())
    assert all(p > 0 and math.isfinite(p) for p in hw.peak_macs_per_s.values())
    prior_path = PROFILES / "priors" / f"{hw.name}.toml"
    if prior_path.exists():
        # A fit never claims more than the datasheet prior it started from.
        prior = load_hardware(prior_path)
        assert hw.dram.bandwidth_bytes_per_s <= prior.dram.bandwidth_bytes_per_s
        for precision, peak in hw.peak_macs_per_s.items():
            assert peak <= prior.peak_macs_per_s[precision]
        for level, base in zip(hw.memory, prior.memory, strict=True):
            if base.bandwidth_bytes_per_s:
                assert level.bandwidth_bytes_per_s <= base.bandwidth_bytes_per_s
        assert hw.fit is not None and hw.fit.command.startswith("python -m roofline calibrate")


@pytest.fixture(scope="module")
def zoo_graphs():
    return {name: Variant(name).trace() for name in list_models()}


@pytest.mark.parametrize("hw_name", list_hardware())
def test_every_zoo_model_predicts_on_every_profile(zoo_graphs, hw_name):
    hw = load_hardware(hw_name)
    for name, graph in zoo_graphs.items():
        prediction = predict(graph, hw)
        if "hybrid" in name and "matmul" in hw.support.unsupported:
            assert not prediction.supported and prediction.latency_ms is None
        else:
            assert prediction.supported, (hw_name, name)
            assert 0 < prediction.latency_ms < 10_000


@pytest.mark.parametrize("dsp", ["pixel4-dsp", "dsp"])
def test_hybrid_models_are_unsupported_on_the_dsp(zoo_graphs, dsp):
    for name in ("mobilenet_v4_hybrid_medium", "mobilenet_v4_hybrid_large"):
        prediction = predict(zoo_graphs[name], load_hardware(dsp))
        assert not prediction.supported
        assert prediction.unsupported_kinds == ["matmul"]
    assert predict(zoo_graphs["mobilenet_v4_conv_medium"], load_hardware(dsp)).supported


# -- the fitted profiles reproduce the measured orderings ------------------------------------------

# Pairs measured less than 10 % apart, after the rounding of the printed figures, are not
# asserted: they are within the precision of the published figures (a few percent run to
# run). Pairs from different sources (different runtime versions) are not compared either.
MIN_GAP = 0.10


def _fitted_rows(device: str):
    """The measurements a shipped profile was fitted to, as its [fit] names them (models
    roofline does not have left out, as calibrate --skip-unknown does)."""
    from roofline.fitting.measurements import parse_select

    fit = load_hardware(device).fit
    where = parse_select(fit.select) if fit.select else [{"device": device}]
    zoo = set(list_models())
    return [m for file in fit.measurements.split(",")
            for m in load_measurements(ROOT / file, where=where) if m.model in zoo]


def _orderings(device: str):
    rows = _fitted_rows(device)
    graphs = trace_measurements(rows)
    hw = load_hardware(device)
    predicted = [predict(g, hw, m.precision).latency_ms for g, m in zip(graphs, rows,
                                                                        strict=True)]
    pairs = []
    for (i, a), (j, b) in itertools.combinations(enumerate(rows), 2):
        if a.source != b.source:
            continue
        # The gap that is certain whatever the rounding of the printed figures: 0.7 and 0.8
        # (each rounded to 0.1) may be 0.75 apart by nothing.
        low, high = sorted((a, b), key=lambda m: m.latency_ms)
        gap = ((high.latency_ms - high.step_ms / 2) / (low.latency_ms + low.step_ms / 2) - 1)
        if gap >= MIN_GAP:
            pairs.append((a, b, predicted[i], predicted[j]))
    return pairs


# Every fitted profile with pairs far enough apart (Coral has two measurements 4.5 % apart).
MEASURED_DEVICES = [name for name in list_hardware() if (PROFILES / "priors" / f"{name}.toml")
                    .exists() and name != "coral-edgetpu"]


def test_coral_two_point_fit_explains_both_measurements():
    # Coral's two measurements (V1 2.2 ms, V2 2.3 ms) are 4.5 % apart, below MIN_GAP; its two
    # free parameters are fitted to them under their priors (a MAP fit, not an exact solve):
    # both within the engine's allowed error of the fit (8 %) and inside their ranges.
    rows = load_measurements(MEASUREMENTS, device="coral-edgetpu-usb3")
    hw = load_hardware("coral-edgetpu")
    for row, graph in zip(rows, trace_measurements(rows), strict=True):
        prediction = predict(graph, hw)
        assert prediction.latency_ms == pytest.approx(row.latency_ms, rel=0.08)
        low, high = prediction.latency_range_ms
        assert low < row.latency_ms < high


@pytest.mark.parametrize("device", MEASURED_DEVICES)
def test_predicted_order_matches_measured_order(device):
    pairs = _orderings(device)
    assert pairs, f"no measured pairs for {device}"
    wrong = [f"{a.label} {a.latency_ms} ms vs {b.label} {b.latency_ms} ms predicted "
             f"{pa:.3g} vs {pb:.3g}" for a, b, pa, pb in pairs
             if (a.latency_ms < b.latency_ms) != (pa < pb)]
    assert not wrong, wrong


# -- bad profiles ----------------------------------------------------------------------------------

GOOD = """
name = "mine"
kind = "cpu"
default_precision = "int8"

[peak_macs_per_s]
int8 = 1.0e11

[dram]
bandwidth_bytes_per_s = 1.0e10

[sources]
peak_macs_per_s = "test"
dram = "test"
"""


def _write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_good_profile_loads_by_path(tmp_path):
    hw = load_hardware(_write(tmp_path, GOOD))
    assert hw.name == "mine" and hw.ridge_point() == pytest.approx(10.0)


@pytest.mark.parametrize("change, field", [
    ("int8 = 1.0e11", "peak_macs_per_s.int8"),
    ("bandwidth_bytes_per_s = 1.0e10", "dram.bandwidth_bytes_per_s"),
])
@pytest.mark.parametrize("bad", ["0", "-1.0", "nan", "inf", "-inf", '"fast"', "true"])
def test_bad_peak_or_bandwidth_is_rejected(tmp_path, change, field, bad):
    key = change.split(" = ")[0]
    path = _write(tmp_path, GOOD.replace(change, f"{key} = {bad}"))
    with pytest.raises(ProfileError) as err:
        load_hardware(path)
    message = str(err.value)
    assert str(path) in message and field.split(".")[0] in message
    assert "\n" not in message


@pytest.mark.parametrize("edit, field", [
    (lambda t: t + '\nturbo = true\n', "turbo"),
    (lambda t: t.replace("[dram]", "[dram]\nlatency_ns = 5"), "dram.latency_ns"),
    (lambda t: t.replace('kind = "cpu"', 'kind = "fpga"'), "kind"),
    (lambda t: t.replace('kind = "cpu"', 'kind = 3'), "kind"),
    (lambda t: t.replace('default_precision = "int8"', 'default_precision = "fp16"'),
     "default_precision"),
    (lambda t: t.replace('dram = "test"\n', ''), "dram.bandwidth_bytes_per_s"),
    (lambda t: t.replace('peak_macs_per_s = "test"\n', ''), "peak_macs_per_s.int8"),
    (lambda t: t.replace('name = "mine"\n', ''), "name"),
    (lambda t: t + '\n[efficiency]\nconv = 1.5\n', "efficiency"),
    (lambda t: t + '\n[geometry]\nm = 0\n', "geometry.m"),
    (lambda t: t + '\n[overhead]\nper_kernel_s = -1e-6\n', "overhead.per_kernel_s"),
    (lambda t: t + '\n[overhead.per_transcendental_s]\nint8 = -1e-9\n',
     "overhead.per_transcendental_s.int8"),
    (lambda t: t + '\n[overhead.per_int8_element_s]\nelementwise = "slow"\n',
     "overhead.per_int8_element_s"),
])
def test_schema_violations_name_file_and_field(tmp_path, edit, field):
    path = _write(tmp_path, edit(GOOD))
    with pytest.raises(ProfileError) as err:
        load_hardware(path)
    message = str(err.value)
    assert str(path) in message
    assert field in message, message


def test_unparseable_toml(tmp_path):
    path = _write(tmp_path, "name = \n[[[")
    with pytest.raises(ProfileError, match="not valid TOML"):
        load_hardware(path)


def test_alias_cycle(tmp_path, monkeypatch):
    _write(tmp_path, 'alias = "b"\n', "a.toml")
    _write(tmp_path, 'alias = "a"\n', "b.toml")
    monkeypatch.setenv("ROOFLINE_HARDWARE_PATH", str(tmp_path))
    with pytest.raises(ProfileError, match="alias cycle"):
        load_hardware("a")


def test_user_profile_folder_and_unknown_names(tmp_path, monkeypatch):
    _write(tmp_path, GOOD)
    monkeypatch.setenv("ROOFLINE_HARDWARE_PATH", str(tmp_path))
    assert "mine" in list_hardware()
    assert load_hardware("mine").name == "mine"
    with pytest.raises(UnknownNameError) as err:
        load_hardware("pixel6-cpx")
    assert "pixel6-cpu" in str(err.value)


def test_toml_round_trip():
    for name in REQUIRED:
        hw = load_hardware(name)
        again = profile_from_dict(tomllib.loads(profile_to_toml(hw)))
        assert again.model_dump(exclude={"path"}) == hw.model_dump(exclude={"path"})


def test_precision_the_profile_lacks(zoo_graphs):
    with pytest.raises(UnknownNameError, match="fp32"):
        predict(zoo_graphs["mobilenet_v2"], load_hardware("pixel4-dsp"), "fp32")
