"""Calibration: recovering known parameters, leave-one-out, and the measurement file checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roofline.cli import main
from roofline.core.engine import predict
from roofline.core.hardware import load_hardware, profile_to_toml
from roofline.errors import MeasurementError, ProfileError, UsageError
from roofline.fitting.calibrate import (
    ParameterSpace,
    fit_profile,
    kendall,
    load_measurements,
    spearman,
    trace_measurements,
)

import kit

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = ROOT / "hardware_profiles" / "measurements" / "measured_latency.csv"
GEMM = "efficiency.conv+pointwise_conv+linear+matmul"


def base_profile(peak: float = 200e9, bandwidth: float = 20e9, **extra):
    return kit.profile("synthetic", peak=peak, bandwidth=bandwidth, **extra)


VARIANTS = [("mobilenet_v1", 1.0, 224), ("mobilenet_v1", 0.5, 160), ("mobilenet_v2", 1.0, 224),
            ("mobilenet_v2", 0.5, 224), ("mobilenet_v2", 1.4, 192),
            ("mobilenet_v3_large", 1.0, 224), ("mobilenet_v3_small", 1.0, 224)]


@pytest.fixture(scope="module")
def synthetic():
    """Measurements made by a known profile; the fit must find its parameters again."""
    from roofline.fitting.calibrate import Measurement

    truth = base_profile(efficiency={"conv": 0.6, "pointwise_conv": 0.6, "linear": 0.6,
                                     "matmul": 0.6, "depthwise_conv": 0.1},
                         overhead={"per_kernel_s": 20e-6})
    rows = [Measurement(model=m, width=w, resolution=r, latency_ms=1.0) for m, w, r in VARIANTS]
    graphs = trace_measurements(rows)
    rows = [Measurement(model=m.model, width=m.width, resolution=m.resolution,
                        latency_ms=predict(g, truth).latency_ms)
            for m, g in zip(rows, graphs, strict=True)]
    return truth, rows, graphs


def test_fit_recovers_known_parameters(synthetic):
    truth, rows, graphs = synthetic
    free = [GEMM, "efficiency.depthwise_conv", "overhead.per_kernel_s"]
    result = fit_profile(base_profile(), rows, free, graphs=graphs, priors=False)
    values = dict(zip(free, result.values, strict=True))
    assert values[GEMM] == pytest.approx(0.6, rel=1e-3)
    assert values["efficiency.depthwise_conv"] == pytest.approx(0.1, rel=1e-3)
    assert values["overhead.per_kernel_s"] == pytest.approx(20e-6, rel=1e-3)
    assert result.median_abs_error_pct < 0.1
    # With noise-free data every leave-one-out prediction is right as well.
    assert result.loo_median_abs_error_pct < 0.1
    assert result.loo_spearman == pytest.approx(1.0)
    fitted = result.profile
    assert fitted.efficiency["pointwise_conv"] == pytest.approx(0.6, rel=1e-3)
    assert "fitted" in fitted.sources["efficiency.depthwise_conv"]


def _fit_info(**extra):
    return {"measurements": "synthetic", "command": "test", **extra}


def test_priors_pull_as_far_as_the_data_are_uncertain(synthetic):
    """A MAP fit sits between the prior and the truth: near the truth when the engine's error
    allowance is small, near the prior when it is large (the measurements then say little)."""
    truth, rows, graphs = synthetic
    free = [GEMM, "efficiency.depthwise_conv"]
    # Prior: dense efficiency 0.3 (truth 0.6), depthwise 0.3 (truth 0.1), each x/÷ 2.
    priors = {GEMM: {"typical": 0.3, "spread": 2.0},
              "efficiency.depthwise_conv": {"typical": 0.3, "spread": 2.0}}

    def fitted(model_sigma):
        base = base_profile(overhead={"per_kernel_s": 20e-6},
                            fit=_fit_info(free=free, priors=priors, model_sigma=model_sigma))
        result = fit_profile(base, rows, None, graphs=graphs, leave_one_out=False)
        return dict(zip(free, result.values, strict=True)), result

    precise, result = fitted(1e-4)
    assert precise[GEMM] == pytest.approx(0.6, rel=1e-3)
    assert precise["efficiency.depthwise_conv"] == pytest.approx(0.1, rel=1e-3)
    assert result.used_priors and len(result.covariance) == 2
    loose, _ = fitted(1.0)
    import math

    # With an error allowance of 100 % per row, seven rows move each parameter less than half
    # way (in log units) from its prior of 0.3 towards the truth.
    for path in free:
        assert abs(math.log(loose[path] / 0.3)) < 0.5 * abs(math.log(precise[path] / 0.3))


def test_a_floor_is_a_hard_bound_and_bounds_are_flagged(synthetic):
    _, rows, graphs = synthetic
    # The data want 10 GB/s of a 20 GB/s datasheet figure (they were made by a compute-bound
    # profile); a floor at 0.9 x the datasheet stops the fit there and says so.
    base = base_profile(fit=_fit_info(free=["dram.bandwidth_bytes_per_s"], priors={
        "dram.bandwidth_bytes_per_s": {"typical": 0.95, "spread": 1.5, "floor": 0.9,
                                       "relative": True}}),
        peak=400e9)
    result = fit_profile(base, rows, None, graphs=graphs, leave_one_out=False)
    assert result.profile.dram.bandwidth_bytes_per_s >= 0.9 * 20e9 * (1 - 1e-9)
    assert any("dram.bandwidth_bytes_per_s is at its" in f for f in result.flags)


def test_fit_respects_bounds(synthetic):
    _, rows, graphs = synthetic
    # Ask a far slower device to explain fast measurements: efficiency may not pass 1 and the
    # bandwidth may not pass the datasheet value.
    slow = base_profile(peak=20e9, bandwidth=2e9)
    result = fit_profile(slow, rows, [GEMM, "dram.bandwidth_bytes_per_s"], graphs=graphs,
                         leave_one_out=False)
    assert result.profile.efficiency["conv"] <= 1.0
    assert result.profile.dram.bandwidth_bytes_per_s <= 2e9


def test_discrete_geometry_search(synthetic):
    truth, rows, graphs = synthetic
    geometric = truth.with_changes(geometry={"n": 16, "k": 4}, sources={
        **truth.sources, "geometry": "test"})
    from roofline.fitting.calibrate import Measurement

    rows = [Measurement(model=m.model, width=m.width, resolution=m.resolution,
                        latency_ms=predict(g, geometric).latency_ms)
            for m, g in zip(rows, graphs, strict=True)]
    start = geometric.with_changes(geometry={"n": 1, "k": 4})
    result = fit_profile(start, rows, ["geometry.n"], graphs=graphs, leave_one_out=False)
    assert result.profile.geometry.n == 16


def test_unknown_free_parameter():
    with pytest.raises(ProfileError, match="cannot fit 'efficiency'"):
        ParameterSpace(base_profile(), ["efficiency"])
    with pytest.raises(ProfileError, match="cannot fit"):
        ParameterSpace(base_profile(), ["memory.L9.bandwidth_bytes_per_s"])


def test_rank_statistics():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    # one adjacent swap among six: 1 - 6*2 / (6*35) = 0.942857...
    assert spearman([1, 2, 3, 4, 5, 6], [1, 3, 2, 4, 5, 6]) == pytest.approx(1 - 12 / 210)
    # Kendall: 14 concordant, 1 discordant pair of 15: (14 - 1) / 15
    assert kendall([1, 2, 3, 4, 5, 6], [1, 3, 2, 4, 5, 6]) == pytest.approx(13 / 15)


# -- the measurement file ----------------------------------------------------------------------

HEADER = "model,width,resolution,latency_ms\n"


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.csv"
    path.write_text(text)
    return path


def test_shipped_measurements_load():
    rows = load_measurements(MEASUREMENTS)
    # 7 devices x 6 models (MobileNetV4 paper Table 6) + 22 Pixel 1 MobileNetV2 rows
    # + 18 Pixel 1/2/3 MobileNetV3 rows + 2 Coral rows = 84
    assert len(rows) == 84
    pixel6 = load_measurements(MEASUREMENTS, device="pixel6-cpu")
    assert [r.latency_ms for r in pixel6] == [2.4, 2.4, 5.0, 6.1, 9.3, 13.9]


@pytest.mark.parametrize("text, where", [
    ("model,resolution,latency_ms\nmobilenet_v2,224,5\n", "missing column(s) width"),
    (HEADER + "mobilenet_v2,1,224,fast\n", "row 2, column 'latency_ms'"),
    (HEADER + "mobilenet_v2,1,224,-3\n", "row 2, column 'latency_ms'"),
    (HEADER + "mobilenet_v2,1,224,nan\n", "row 2, column 'latency_ms'"),
    (HEADER + "mobilenet_v2,1,224,5\nmobilenet_v2,zero,224,5\n", "row 3, column 'width'"),
    (HEADER + "mobilenet_v2,1,2.5e3,5\n", "row 2, column 'resolution'"),
    (HEADER + "mobilenet_v9,1,224,5\n", "row 2, column 'model': unknown model"),
    (HEADER.replace("\n", ",precision\n") + "mobilenet_v2,1,224,5,fp8\n",
     "row 2, column 'precision'"),
    (HEADER.replace("\n", ",colour\n") + "mobilenet_v2,1,224,5,red\n", "unknown column"),
    ("", "missing column"),
])
def test_bad_measurement_files(tmp_path, text, where):
    path = _csv(tmp_path, text)
    with pytest.raises(MeasurementError) as err:
        load_measurements(path, known_models=lambda m: m.startswith("mobilenet_v") and
                          m[-1] in "1234")
    assert where in str(err.value)
    assert str(path) in str(err.value)


def test_calibrate_cli_writes_a_loadable_profile(tmp_path, capsys):
    out = tmp_path / "fitted.toml"
    code = main(["calibrate", "--measurements", str(MEASUREMENTS), "--hw",
                 str(ROOT / "hardware_profiles" / "priors" / "pixel6-cpu.toml"),
                 "--out", str(out), "--no-loo"])
    assert code == 0
    fitted = load_hardware(out)
    assert fitted.fit is not None and fitted.fit.models == 6
    assert fitted.fit.command.startswith("python -m roofline calibrate --measurements")
    printed = capsys.readouterr().out
    assert "median |error|" in printed and "mobilenet_v1@1:224" in printed


def test_calibrate_cli_bad_input(tmp_path, capsys):
    bad = _csv(tmp_path, HEADER + "mobilenet_v2,1,224,-1\n")
    previous = tmp_path / "keep.toml"
    previous.write_text("untouched")
    code = main(["calibrate", "--measurements", str(bad), "--hw", "cpu", "--out",
                 str(previous)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "row 2" in err
    assert previous.read_text() == "untouched"
    assert main(["calibrate", "--hw", "cpu"]) == 2
    assert "missing --measurements, --out" in capsys.readouterr().err


def test_calibrated_profile_is_named_after_its_file(tmp_path, capsys, monkeypatch):
    """README's first example: --hw cpu (pixel6-cpu) --out <folder>/my-phone.toml writes a
    profile named my-phone, which `list hardware` and --hw my-phone then find."""
    import json

    folder = tmp_path / "profiles"
    folder.mkdir()
    monkeypatch.setenv("ROOFLINE_HARDWARE_PATH", str(folder))
    out = folder / "my-phone.toml"
    assert main(["calibrate", "--measurements", str(MEASUREMENTS), "--hw", "cpu",
                 "--device", "pixel6-cpu", "--out", str(out), "--no-loo"]) == 0
    capsys.readouterr()
    fitted = load_hardware("my-phone")
    assert fitted.name == "my-phone" and "pixel6-cpu" in fitted.description
    assert main(["list", "hardware", "--json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert names.count("my-phone") == 1 and names.count("pixel6-cpu") == 1
    # --name must agree with the file; a file name that cannot name a profile is refused.
    for argv, message in (
            (["--out", str(folder / "a.toml"), "--name", "b"], "--name 'b' differs"),
            (["--out", str(folder / "-x.toml")], "cannot name a profile")):
        assert main(["calibrate", "--measurements", str(MEASUREMENTS), "--hw", "cpu",
                     *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in folder.iterdir()) == ["my-phone.toml"]


def test_published_tables_read_as_written(tmp_path):
    """A row may leave the resolution to the model (published tables of fixed-size models),
    name its runtime and threads, and give int8 by its quantisation scheme; the rounding of the
    printed figure is kept."""
    from roofline.fitting.measurements import parse_select, select

    path = _csv(tmp_path, "model,width,resolution,device,precision,runtime,threads,latency_ms\n"
                          "mobilenet_v4_conv_medium,1,,p3,int8-ptq,tflite-cpu,4,2.35\n"
                          "mobilenet_v2,1,224,p3,fp32,tflite-gpu,,61\n")
    rows = load_measurements(path)
    first, second = rows
    assert first.resolution is None and first.variant().effective_resolution == 256
    assert first.precision == "int8" and first.threads == 4 and first.runtime == "tflite-cpu"
    assert first.step_ms == pytest.approx(0.01) and second.step_ms == 1.0
    # 0.01 ms step on 2.35 ms: uniform error of sd 0.01 / sqrt(12) / 2.35 = 0.123 %.
    assert first.rounding_sd == pytest.approx(0.01 / 12 ** 0.5 / 2.35)
    assert select(rows, parse_select("runtime=tflite-gpu,threads=")) == [second]
    assert select(rows, parse_select("threads=4;runtime=tflite-gpu")) == rows  # either
    assert load_measurements(path, where={"threads": "4"}) == [first]
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_select("colour=red")
    with pytest.raises(MeasurementError, match="no measurements with device=p3,runtime=npu"):
        load_measurements(path, where={"device": "p3", "runtime": "npu"})


def test_local_calibration_is_named_after_its_file_too(tmp_path, monkeypatch):
    """calibrate --local --out my-cpu.toml hands the local mode the name my-cpu."""
    from roofline.cli import _calibrate_local

    seen = {}
    monkeypatch.setattr(_calibrate_local, "run", lambda args: seen.setdefault("name", args.name)
                        and 0)
    assert main(["calibrate", "--local", "--out", str(tmp_path / "my-cpu.toml")]) == 0
    assert seen["name"] == "my-cpu"


def test_a_bare_datasheet_prior_fits_what_its_kind_of_device_tells_apart(synthetic, cli,
                                                                          tmp_path):
    """A user's datasheet prior without a [fit] free list is fitted on the parameters whole
    models can tell apart on its kind of device (roofline.core.fields.DEFAULT_FREE)."""
    from roofline.core.fields import DEFAULT_FREE

    _, rows, graphs = synthetic
    result = fit_profile(base_profile(), rows, graphs=graphs, leave_one_out=False)
    assert list(result.free) == list(DEFAULT_FREE["cpu"])
    assert result.median_abs_error_pct < 5  # the truth is one of these profiles
    # The same from the command line, with a prior file holding no [fit] at all.
    prior = tmp_path / "x86.toml"
    prior.write_text(profile_to_toml(base_profile().with_changes(name="x86")))
    measured = tmp_path / "m.csv"
    measured.write_text("model,width,resolution,latency_ms\n" + "".join(
        f"{r.model},{r.width},{r.resolution},{r.latency_ms:.4f}\n" for r in rows))
    out = cli("calibrate", "--measurements", measured, "--hw", prior, "--out",
              tmp_path / "x86-fit.toml", "--no-loo", "--json").json()
    assert out["free"] == list(DEFAULT_FREE["cpu"])


# -- joint fits (calibrate --hw A,B --share FIELD) ---------------------------------------------

DW = "efficiency.depthwise_conv"
#: Stated priors of the joint tests' devices: dense 0.5 x/÷ 2, depthwise 0.3 x/÷ 2 (the truths
#: below are 0.6-0.8 and 0.1-0.16, so a fit that leans on its prior is seen to).
JOINT_PRIORS = {GEMM: {"typical": 0.5, "spread": 2.0}, DW: {"typical": 0.3, "spread": 2.0}}
A_VARIANTS = [("mobilenet_v1", 1.0, 224), ("mobilenet_v2", 1.0, 224), ("mobilenet_v2", 0.5, 224)]
B_VARIANTS = [("mobilenet_v2", 1.0, 224)]


def _joint_device(name, peak, model_sigma=1e-4, priors=None):
    """A compute-bound device (DRAM at 1 PB/s, no overheads) whose latency is worked out by
    hand: sum over kinds of MACs / (efficiency x peak)."""
    return kit.profile(name, peak=peak, fit=_fit_info(free=[GEMM, DW],
                                                      priors=priors or JOINT_PRIORS,
                                                      model_sigma=model_sigma))


@pytest.fixture(scope="module")
def macs_by_kind():
    """Dense and depthwise MACs of every joint-test variant, from its traced graph."""
    from roofline.fitting.calibrate import Measurement

    out = {}
    for v in dict.fromkeys(A_VARIANTS + B_VARIANTS):
        graph = trace_measurements([Measurement(v[0], v[1], v[2], 1.0)])[0]
        dw = sum(layer.macs for layer in graph.layers if layer.kind == "depthwise_conv")
        out[v] = (sum(layer.macs for layer in graph.layers) - dw, dw, graph)
    return out


def _by_hand(macs_by_kind, variants, peak, dense, depthwise):
    """Measurements of ``variants`` at the latency the arithmetic gives, and their graphs."""
    from roofline.fitting.calibrate import Measurement

    rows = [Measurement(m, w, r, latency_ms=1e3 * (macs_by_kind[(m, w, r)][0] / dense +
                                                   macs_by_kind[(m, w, r)][1] / depthwise)
                        / peak) for m, w, r in variants]
    return rows, [macs_by_kind[v][2] for v in variants]


def test_joint_fit_recovers_a_shared_depthwise_efficiency(macs_by_kind):
    """Device A (200 GMAC/s, dense 0.6, depthwise 0.1) measured on three models pins both of its
    efficiencies; device B (400 GMAC/s, dense 0.8, depthwise 0.1) measured on one model cannot
    tell its two apart alone. Sharing depthwise, B's one latency t_B = (M_dense / e_dense +
    M_dw / 0.1) / P_B gives e_dense = M_dense / (P_B t_B - M_dw / 0.1) = 0.8."""
    from roofline.fitting.joint import fit_joint

    a_rows, a_graphs = _by_hand(macs_by_kind, A_VARIANTS, 200e9, 0.6, 0.1)
    b_rows, b_graphs = _by_hand(macs_by_kind, B_VARIANTS, 400e9, 0.8, 0.1)
    a, b = _joint_device("a", 200e9), _joint_device("b", 400e9)
    joint = fit_joint([a, b], [a_rows, b_rows], shares=[DW], graphs=[a_graphs, b_graphs],
                      leave_one_out=False)
    assert joint.shares == (DW,)
    assert joint.shared_values[0] == pytest.approx(0.1, rel=1e-3)
    m_dense, m_dw, _ = macs_by_kind[B_VARIANTS[0]]
    t_b = b_rows[0].latency_ms / 1e3
    expected_dense = m_dense / (400e9 * t_b - m_dw / 0.1)
    assert expected_dense == pytest.approx(0.8, rel=1e-9)
    fit_a, fit_b = joint.fits
    assert dict(zip(fit_a.free, fit_a.values, strict=True)) == pytest.approx(
        {GEMM: 0.6, DW: 0.1}, rel=1e-3)
    assert dict(zip(fit_b.free, fit_b.values, strict=True)) == pytest.approx(
        {GEMM: expected_dense, DW: 0.1}, rel=1e-3)
    assert fit_b.profile.efficiency["depthwise_conv"] == pytest.approx(0.1, rel=1e-3)
    # Alone, B's one row leaves the split between its efficiencies to the priors.
    alone = fit_profile(b, b_rows, graphs=b_graphs, leave_one_out=False)
    assert abs(alone.values[0] / 0.8 - 1) > 0.1
    # Each profile keeps its part of the joint posterior: the shared coordinate is the same
    # number in both, and it is tighter than B's alone.
    assert fit_a.covariance[1][1] == pytest.approx(fit_b.covariance[1][1])
    assert fit_b.covariance[1][1] < 0.1 * alone.covariance[1][1]
    assert fit_b.profile.fit.joint.shared == (DW,)


def test_joint_fit_recovers_a_shared_ratio(macs_by_kind):
    """A shared ratio: A (dense 0.6, depthwise 0.12) and B (dense 0.8, depthwise 0.16) both run
    depthwise at 0.2 of dense. A's three rows pin the ratio; B's one latency then gives
    e_dense = (M_dense + M_dw / 0.2) / (P_B t_B) = 0.8, and e_dw = 0.2 x 0.8 = 0.16."""
    from roofline.fitting.joint import fit_joint

    a_rows, a_graphs = _by_hand(macs_by_kind, A_VARIANTS, 200e9, 0.6, 0.12)
    b_rows, b_graphs = _by_hand(macs_by_kind, B_VARIANTS, 400e9, 0.8, 0.16)
    joint = fit_joint([_joint_device("a", 200e9), _joint_device("b", 400e9)],
                      [a_rows, b_rows], shares=[f"{DW}/{GEMM}"],
                      graphs=[a_graphs, b_graphs], leave_one_out=False)
    assert joint.shared_values[0] == pytest.approx(0.2, rel=1e-3)
    m_dense, m_dw, _ = macs_by_kind[B_VARIANTS[0]]
    expected_dense = (m_dense + m_dw / 0.2) / (400e9 * b_rows[0].latency_ms / 1e3)
    assert expected_dense == pytest.approx(0.8, rel=1e-9)
    assert joint.fits[1].values == pytest.approx((expected_dense, 0.2 * expected_dense),
                                                 rel=1e-3)
    assert joint.fits[0].values == pytest.approx((0.6, 0.12), rel=1e-3)
    assert joint.device_values[0] == pytest.approx((0.12, 0.16), rel=1e-3)


def test_a_shared_fields_priors_are_pooled_not_multiplied():
    """Each device's prior on a shared field counts 1/N: two devices stating depthwise 0.1 x/÷
    2.5 give that prior once (not one √2 times narrower); 0.1 x/÷ 2 and 0.4 x/÷ 4 give the
    precision-weighted mean of ln 0.1 and ln 0.4 with the mean of their precisions."""
    from roofline.fitting.calibrate import Measurement
    from roofline.fitting.joint import JointSpace, Share, _joint_objective

    rows = [Measurement("mobilenet_v2", 1.0, 224, 1.0)]

    def pooled(first, second):
        devices = [_joint_device(n, 1e11, priors={GEMM: JOINT_PRIORS[GEMM], DW: p})
                   for n, p in (("a", first), ("b", second))]
        spaces = [ParameterSpace(d, [GEMM, DW]) for d in devices]
        objective = _joint_objective(JointSpace(spaces, [Share(DW)], ["a", "b"]),
                                     [rows, rows], True)
        return objective.prior_x()[0], objective.prior_sd_x()[0]

    import math

    mean, sd = pooled({"typical": 0.1, "spread": 2.5}, {"typical": 0.1, "spread": 2.5})
    assert mean == pytest.approx(math.log(0.1)) and sd == pytest.approx(math.log(2.5))
    mean, sd = pooled({"typical": 0.1, "spread": 2.0}, {"typical": 0.4, "spread": 4.0})
    precisions = [1 / math.log(2.0) ** 2, 1 / math.log(4.0) ** 2]
    assert mean == pytest.approx((precisions[0] * math.log(0.1) + precisions[1] *
                                  math.log(0.4)) / sum(precisions))
    assert sd == pytest.approx((sum(precisions) / 2) ** -0.5)


def test_a_joint_fit_sharing_nothing_is_the_separate_fits(synthetic, macs_by_kind):
    """With nothing shared the joint problem is the devices' own problems side by side: the
    same values, posterior, flags and leave-one-out predictions as fitting each alone."""
    from roofline.fitting.joint import fit_joint

    _, a_rows, a_graphs = synthetic
    b_rows, b_graphs = _by_hand(macs_by_kind, A_VARIANTS, 400e9, 0.8, 0.1)
    a = base_profile(overhead={"per_kernel_s": 20e-6},
                     fit=_fit_info(free=[GEMM, DW], priors=JOINT_PRIORS))
    b = _joint_device("b", 400e9, model_sigma=0.05)
    joint = fit_joint([a, b], [a_rows, b_rows], graphs=[a_graphs, b_graphs])
    for together, base, rows, graphs in zip(joint.fits, (a, b), (a_rows, b_rows),
                                            (a_graphs, b_graphs), strict=True):
        alone = fit_profile(base, rows, graphs=graphs)
        assert together.values == pytest.approx(alone.values, rel=1e-4)
        assert together.loo_predicted_ms == pytest.approx(alone.loo_predicted_ms, rel=1e-4)
        assert together.predicted_ms == pytest.approx(alone.predicted_ms, rel=1e-5)
        assert [list(r) for r in together.covariance] == [
            pytest.approx(list(r), rel=1e-3, abs=1e-9) for r in alone.covariance]
        assert together.flags == alone.flags
    assert joint.shares == () and joint.fits[1].profile.fit.joint.shared == ()


def _joint_files(tmp_path, macs_by_kind):
    """Two datasheet priors (devA, devB) and a measurement file holding both devices' rows."""
    folder = tmp_path / "priors"
    folder.mkdir()
    paths = []
    lines = ["model,width,resolution,device,latency_ms"]
    for name, peak, dense, variants in (("devA", 200e9, 0.6, A_VARIANTS),
                                        ("devB", 400e9, 0.8, A_VARIANTS[1:])):
        path = folder / f"{name}.toml"
        path.write_text(profile_to_toml(_joint_device(name, peak)))
        paths.append(path)
        rows, _ = _by_hand(macs_by_kind, variants, peak, dense, 0.1)
        lines += [f"{r.model},{r.width},{r.resolution},{name},{r.latency_ms:.6f}" for r in rows]
    measured = tmp_path / "m.csv"
    measured.write_text("\n".join(lines) + "\n")
    return paths, measured


def test_calibrate_cli_joint_fit(tmp_path, cli, macs_by_kind):
    """The command writes every profile with its part of the joint fit in [fit] (the other
    devices, the shared fields, the command, which re-run gives the same profiles), prints
    each device's table and the shared value, and the profiles' predictions have ranges."""
    import shlex

    (prior_a, prior_b), measured = _joint_files(tmp_path, macs_by_kind)
    out = tmp_path / "out"
    text = cli("calibrate", "--measurements", measured, "--hw", f"{prior_a},{prior_b}",
               "--share", DW, "--out-dir", out).ok
    assert "fit of devA (3 measurements)" in text and "fit of devB (2 measurements)" in text
    assert "shared by devA, devB: efficiency.depthwise_conv = 0.1" in text
    assert "joint fit of 5 measurements on 2 devices" in text and "leave-one-out" in text
    fitted = [load_hardware(out / "devA.toml"), load_hardware(out / "devB.toml")]
    for hw in fitted:
        assert hw.fit.joint.devices == ("devA", "devB") and hw.fit.joint.shared == (DW,)
        assert hw.fit.joint.values[DW] == pytest.approx(0.1, rel=1e-3)
        assert hw.fit.joint.models == 5 and "--share" in hw.fit.command
        assert hw.efficiency["depthwise_conv"] == pytest.approx(0.1, rel=1e-3)
        assert hw.fit.loo_median_abs_error_pct is not None
        low, high = predict(macs_by_kind[A_VARIANTS[0]][2], hw).latency_range_ms
        assert low < predict(macs_by_kind[A_VARIANTS[0]][2], hw).latency_ms < high
    assert fitted[1].efficiency["conv"] == pytest.approx(0.8, rel=1e-3)
    # The recorded command reproduces the profiles.
    again = shlex.split(fitted[0].fit.command)[3:]
    assert again[0] == "calibrate"
    (out / "devA.toml").unlink()
    assert "shared by devA, devB" in cli(*again).ok
    assert load_hardware(out / "devA.toml").efficiency == pytest.approx(fitted[0].efficiency)
    # --json: the joint part and each device's summary and rows; --out lists the files.
    data = cli("calibrate", "--measurements", measured, "--hw", f"{prior_a},{prior_b}",
               "--share", DW, "--out", f"{tmp_path / 'a.toml'},{tmp_path / 'b.toml'}",
               "--no-loo", "--json").json()
    assert data["joint"]["shared"] == [DW] and data["joint"]["devices"] == ["a", "b"]
    assert data["joint"]["values"][DW] == pytest.approx(0.1, rel=1e-3)
    assert data["joint"]["per_device"][DW] == pytest.approx({"a": 0.1, "b": 0.1}, rel=1e-3)
    assert [f["hardware"] for f in data["fits"]] == ["a", "b"]
    assert len(data["fits"][1]["rows"]) == 2


def test_calibrate_cli_joint_bad_input(tmp_path, cli, macs_by_kind):
    """Every mistake in a joint fit is one line and exit 2, and no profile is written: not
    when the arguments are wrong, and not when one device's part fails after the other's
    was read."""
    (prior_a, prior_b), measured = _joint_files(tmp_path, macs_by_kind)
    kept = [tmp_path / "a.toml", tmp_path / "b.toml"]
    for path in kept:
        path.write_text("untouched")
    outs = ("--out", f"{kept[0]},{kept[1]}")
    both = f"{prior_a},{prior_b}"
    for argv, message in (
            (["--hw", both, "--share", "efficiency.conv", *outs],
             "--share efficiency.conv: efficiency.conv is not free in devA"),
            (["--hw", str(prior_a), "--share", DW, "--out", str(kept[0])],
             "--share needs two or more devices"),
            (["--hw", both, "--share", DW, "--out", str(kept[0])],
             "--out names 1 file for 2 devices"),
            (["--hw", f"{prior_a},nosuch", "--share", DW, *outs], "unknown hardware 'nosuch'"),
            (["--hw", f"{prior_a},{prior_a}", *outs], "twice"),
            (["--hw", both, "--share", f"overhead.per_kernel_s/{DW}", *outs, "--free",
              f"{GEMM},{DW},overhead.per_kernel_s"],
             "a ratio needs two fields fitted on a log scale"),
            (["--hw", both, "--share", DW, "--select", "device=devA", *outs],
             "--select chooses one device's rows"),
            (["--hw", both, "--share", DW, *outs, "--out-dir", str(tmp_path)],
             "give --out or --out-dir, not both"),
            (["--hw", f"{prior_a},{prior_b},{tmp_path / 'priors' / 'devC.toml'}", *outs],
             "devC.toml"),
    ):
        line = cli("calibrate", "--measurements", measured, *argv).error_line
        assert message in line, line
    # devC has no rows in the file: found after devA's and devB's were read, before any fit.
    (tmp_path / "priors" / "devC.toml").write_text(
        profile_to_toml(_joint_device("devC", 1e11)))
    line = cli("calibrate", "--measurements", measured, "--hw",
               f"{prior_a},{prior_b},{tmp_path / 'priors' / 'devC.toml'}", "--share", DW,
               "--out", f"{kept[0]},{kept[1]},{tmp_path / 'c.toml'}", "--no-loo").error_line
    assert "devC: no measurements" in line
    assert [p.read_text() for p in kept] == ["untouched", "untouched"]
    assert not (tmp_path / "c.toml").exists()


def test_profiles_are_written_all_or_none(tmp_path):
    """atomic_write_texts renames nothing until every file is written: a target that cannot be
    written leaves the others as they were."""
    from roofline.errors import OutputError
    from roofline.io import atomic_write_texts

    first = tmp_path / "first.toml"
    first.write_text("old")
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputError):
        atomic_write_texts([(first, "new"), (tmp_path / "folder", "x")])
    assert first.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.toml", "folder"]
    atomic_write_texts([(first, "new"), (tmp_path / "second.toml", "2")])
    assert first.read_text() == "new" and (tmp_path / "second.toml").read_text() == "2"


#: One efficiency for every MAC kind: a compute-only profile prices a model at C / e.
EVERY_MAC_KIND = "efficiency.conv+pointwise_conv+depthwise_conv+linear+matmul"


def _compute_only_rows(efficiencies: tuple[float, ...]) -> tuple[Any, Any, list[Any]]:
    """A compute-only profile (no memory or fixed cost, e = 1), MobileNetV1's graph, and one
    measurement of it per efficiency: C / e, C being its latency at e = 1."""
    from roofline.fitting.calibrate import Measurement

    hw = kit.profile("compute-only", peak=1e10, precision="fp32",
                     efficiency={k: 1.0 for k in ("conv", "pointwise_conv", "depthwise_conv",
                                                  "linear", "matmul")})
    (graph,) = trace_measurements([Measurement(model="mobilenet_v1", width=1.0, resolution=224,
                                               latency_ms=1.0)])
    c_ms = predict(graph, hw).latency_ms
    return hw, graph, [Measurement(model="mobilenet_v1", width=1.0, resolution=224,
                                   latency_ms=c_ms / e) for e in efficiencies]


def test_log_errors_weigh_too_slow_and_too_fast_alike():
    # A compute-only profile: a model's latency is C / e for one efficiency e of every MAC
    # kind. Two measurements say e = 0.2 (5 C) and e = 0.8 (1.25 C).
    # On log errors the fit predicts their geometric mean: sqrt(5 * 1.25) C = C / 0.4, so
    # e = sqrt(0.2 * 0.8) = 0.4. On relative errors (p/m - 1) it minimises
    # (p/5C - 1)^2 + (p/1.25C - 1)^2: p = (1/5 + 1/1.25) / (1/25 + 1/1.5625) C = C / 0.68.
    hw, graph, rows = _compute_only_rows((0.2, 0.8))
    fit = {log: fit_profile(hw, rows, [EVERY_MAC_KIND], graphs=[graph, graph],
                            leave_one_out=False, priors=False, log_errors=log).values[0]
           for log in (True, False)}
    assert fit[True] == pytest.approx(0.4, rel=1e-3)
    assert fit[False] == pytest.approx(0.68, rel=1e-3)


def test_a_robust_loss_keeps_one_unmodelled_row_from_dragging_an_efficiency():
    # Compute only: latency C / e. Three rows say e = 0.5 (2 C); one the engine does not
    # model runs 5x slower (10 C, as if e = 0.1). Least squares on relative errors (q = p / C)
    # minimises 3 (q/2 - 1)^2 + (q/10 - 1)^2: 0.76 q = 1.6, e = 0.76 / 1.6 = 0.475. soft_l1 at
    # scale 0.1 weighs the outlier's residual (-0.8, z = -8) linearly: its pull 2 z / sqrt(1 +
    # z^2) = 1.985 against 3 rows' 2 * 10 d * 5 for q = 2 (1 + d), so d = 0.0066 and
    # e = 1 / 2.0133 = 0.4967 (solved exactly by bisection).
    hw, graph, rows = _compute_only_rows((0.5, 0.5, 0.5, 0.1))
    fit = {scale: fit_profile(hw, rows, [EVERY_MAC_KIND], graphs=[graph] * 4,
                              leave_one_out=False, priors=False,
                              robust_scale=scale).values[0]
           for scale in (None, 0.1)}
    assert fit[None] == pytest.approx(0.475, rel=1e-3)
    assert fit[0.1] == pytest.approx(0.4967, rel=1e-3)


def test_calibrate_table_leaves_out_a_resolution_the_csv_leaves_empty(tmp_path, capsys):
    # An empty resolution is the model's own: the row is labelled without one, never ":None".
    path = _csv(tmp_path, "model,width,resolution,latency_ms,device\n"
                          "mobilenet_v1,1.0,,30,pixel6-cpu\nmobilenet_v2,1.0,,28,pixel6-cpu\n"
                          "mobilenet_v3_small,1.0,,11,pixel6-cpu\n")
    code = main(["calibrate", "--measurements", str(path), "--hw", "cpu",
                 "--out", str(tmp_path / "fitted.toml"), "--no-loo"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "mobilenet_v1@1 " in printed and "mobilenet_v3_small@1 " in printed
    assert "None" not in printed


def test_a_fit_says_which_efficiency_it_left_at_the_full_peak():
    # MobileNetV1 has 13 depthwise convolutions. A datasheet that states no [efficiency],
    # fitted with only the dense efficiency free, leaves them at the full peak: the fit must
    # say so. Freeing the depthwise efficiency, or stating it, silences the note.
    from roofline.fitting.calibrate import Measurement

    hw = kit.profile("sheet", peak=1e10, precision="fp32")
    (graph,) = trace_measurements([Measurement(model="mobilenet_v1", width=1.0, resolution=224,
                                               latency_ms=1.0)])
    rows = [Measurement(model="mobilenet_v1", width=1.0, resolution=224, latency_ms=100.0)]
    # Its classifier (1.0 M of 569 M MACs, 0.2 %) is under the 1 % a note needs; a model
    # measured twice counts its layers once.
    twice = [rows[0], Measurement(model="mobilenet_v1", width=1.0, resolution=224,
                                  latency_ms=110.0)]
    dense_only = fit_profile(hw, twice, ["efficiency.conv+pointwise_conv"],
                             graphs=[graph, graph], leave_one_out=False)
    (note,) = [f for f in dense_only.flags if "neither free nor stated" in f]
    depthwise = [layer for layer in graph.layers if layer.kind.value == "depthwise_conv"]
    assert note.startswith("efficiency.depthwise_conv is neither free nor stated")
    assert f"{len(depthwise)} depthwise_conv layers" in note and len(depthwise) == 13
    both = fit_profile(hw, rows, [GEMM, "efficiency.depthwise_conv"], graphs=[graph],
                       leave_one_out=False)
    assert not [f for f in both.flags if "neither free nor stated" in f]
    stated = kit.profile("sheet", peak=1e10, precision="fp32",
                         efficiency={"depthwise_conv": 0.1})
    assert not [f for f in fit_profile(stated, rows, [GEMM], graphs=[graph],
                                       leave_one_out=False).flags
                if "neither free nor stated" in f]


def test_a_file_without_a_device_column_is_all_the_profiles_own(tmp_path, capsys):
    # cpu (= pixel6-cpu) selects device=pixel6-cpu in its [fit]; a file with no device column
    # is one device's measurements, so the selection keeps all three rows.
    path = _csv(tmp_path, "model,width,resolution,latency_ms\nmobilenet_v1,1.0,,30\n"
                          "mobilenet_v2,1.0,,28\nmobilenet_v3_small,1.0,,11\n")
    code = main(["calibrate", "--measurements", str(path), "--hw", "cpu",
                 "--out", str(tmp_path / "fitted.toml"), "--no-loo"])
    assert code == 0
    assert "fit of fitted (3 measurements)" in capsys.readouterr().out
