"""Bad input on the command line: one clear line on stderr, exit code 2, nothing half-written.

Each test here is a row of the README's "Bad input" table; property-based tests check that no
generated profile or argument list produces a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roofline.cli import main
from roofline.core.hardware import profile_from_dict
from roofline.errors import ProfileError

from kit import run_cli

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = ROOT / "hardware_profiles" / "measurements" / "measured_latency.csv"


# -- names ----------------------------------------------------------------------------------------

def test_unknown_model_name_suggests_close_ones(capsys):
    line = run_cli(capsys, "graph", "mobilenet_v22").error_line
    assert "unknown model 'mobilenet_v22'" in line and "mobilenet_v2" in line


def test_unknown_hardware_name_suggests_close_ones(capsys):
    line = run_cli(capsys, "profile", "mobilenet_v2", "--hw", "pixel6-gpu").error_line
    assert "unknown hardware 'pixel6-gpu'" in line and "pixel6-cpu" in line


def test_unknown_command_suggests_close_ones(capsys):
    line = run_cli(capsys, "profle").error_line
    assert "did you mean profile" in line


# -- numbers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, value, what", [
    ("--width", "0", "width"), ("--width", "-0.5", "width"), ("--width", "nan", "width"),
    ("--width", "inf", "width"), ("--width", "wide", "width"),
    ("--resolution", "7", "resolution"), ("--resolution", "8193", "resolution"),
    ("--resolution", "224.5", "resolution"), ("--batch", "0", "batch"),
    ("--batch", "-3", "batch"), ("--precision", "fp8", "precision"),
])
@pytest.mark.parametrize("command", [["graph", "mobilenet_v2"],
                                     ["profile", "mobilenet_v2", "--hw", "cpu"]])
def test_bad_numbers(capsys, command, flag, value, what):
    line = run_cli(capsys, *command, flag, value).error_line
    assert what in line


def test_bad_numbers_inside_a_model_spec(capsys):
    assert "width" in run_cli(capsys, "graph", "mobilenet_v2@0").error_line
    assert "resolution" in run_cli(capsys, "graph", "mobilenet_v2:4").error_line


# -- hardware profiles ----------------------------------------------------------------------------

GOOD = """name = "mine"
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


@pytest.mark.parametrize("text, field", [
    ("name = [", "not valid TOML"),
    ("colour = 'red'\n" + GOOD, "'colour': unknown key"),
    (GOOD.replace("kind = \"cpu\"", "kind = 7"), "'kind'"),
    (GOOD.replace("int8 = 1.0e11", "int8 = 0"), "'peak_macs_per_s.int8'"),
    (GOOD.replace("int8 = 1.0e11", "int8 = -1e9"), "'peak_macs_per_s.int8'"),
    (GOOD.replace("int8 = 1.0e11", "int8 = nan"), "'peak_macs_per_s.int8'"),
    (GOOD.replace("int8 = 1.0e11", "int8 = inf"), "'peak_macs_per_s.int8'"),
    (GOOD.replace("bandwidth_bytes_per_s = 1.0e10", "bandwidth_bytes_per_s = 0"),
     "'dram.bandwidth_bytes_per_s'"),
    (GOOD.replace('dram = "test"\n', ""), "missing source for 'dram.bandwidth_bytes_per_s'"),
])
def test_bad_profile_file(capsys, tmp_path, text, field):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    line = run_cli(capsys, "profile", "mobilenet_v2", "--hw", str(path)).error_line
    assert str(path) in line and field in line


def test_alias_cycle_on_the_command_line(capsys, tmp_path, monkeypatch):
    (tmp_path / "a.toml").write_text('alias = "b"\n')
    (tmp_path / "b.toml").write_text('alias = "a"\n')
    monkeypatch.setenv("ROOFLINE_HARDWARE_PATH", str(tmp_path))
    line = run_cli(capsys, "profile", "mobilenet_v2", "--hw", "a").error_line
    assert "alias cycle" in line and "'alias'" in line


def test_missing_profile_file(capsys, tmp_path):
    line = run_cli(capsys, "profile", "mobilenet_v2", "--hw",
                               str(tmp_path / "nope.toml")).error_line
    assert "does not exist" in line


# -- user models ----------------------------------------------------------------------------------

USER_MODELS = '''
import torch
from torch import nn

def raises():
    raise RuntimeError("weights missing")

def not_a_module():
    return {"conv": 1}

class Sorter(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        y = self.conv(x)
        return torch.sort(y, dim=1).values

def unknown_op():
    return Sorter()

class ReadsValues(nn.Module):
    def forward(self, x):
        if x.mean() > 0:
            return x
        return -x

def reads_values():
    return ReadsValues()
'''


@pytest.fixture()
def user_file(tmp_path):
    path = tmp_path / "user_models.py"
    path.write_text(USER_MODELS)
    return path


def test_user_factory_raises(capsys, user_file):
    line = run_cli(capsys, "graph", f"{user_file}:raises").error_line
    assert "raised RuntimeError: weights missing" in line


def test_user_factory_returns_something_else(capsys, user_file):
    line = run_cli(capsys, "graph", f"{user_file}:not_a_module").error_line
    assert "returned a dict, not a torch.nn.Module" in line


def test_user_factory_missing(capsys, user_file):
    line = run_cli(capsys, "graph", f"{user_file}:unknwn_op").error_line
    assert "has no attribute 'unknwn_op'" in line and "unknown_op" in line


def test_user_file_missing(capsys, tmp_path):
    line = run_cli(capsys, "graph", f"{tmp_path}/none.py:net").error_line
    assert "does not exist" in line


def test_user_model_reading_values(capsys, user_file):
    line = run_cli(capsys, "graph", f"{user_file}:reads_values").error_line
    assert "ReadsValues" in line or "reads" in line or "model failed" in line


def test_unknown_ops_are_listed_and_still_predicted(capsys, user_file):
    for _ in range(2):  # the second run is served from the graph cache and warns all the same
        code, out, err = run_cli(capsys, "profile", f"{user_file}:unknown_op", "--hw", "cpu",
                             "--json")
        assert code == 0
        assert "warning" in err and "sort" in err
    import json

    result = json.loads(out)
    assert result["latency_ms"] > 0
    assert any(layer["kind"] == "unknown" and layer["input_bytes"] > 0
               for layer in result["layers"])


# -- measurements and outputs ---------------------------------------------------------------------

@pytest.mark.parametrize("text, where", [
    ("model,resolution,latency_ms\nmobilenet_v2,224,5\n", "missing column(s) width"),
    ("model,width,resolution,latency_ms\nmobilenet_v2,1,224,soon\n", "row 2"),
    ("model,width,resolution,latency_ms\nmobilenet_v2,1,224,-5\n", "row 2"),
    ("model,width,resolution,latency_ms\nmobilenet_v2,1,224,5\nresnet,1,224,5\n",
     "row 3, column 'model': unknown model 'resnet'"),
])
def test_bad_measurement_file(capsys, tmp_path, text, where):
    path = tmp_path / "m.csv"
    path.write_text(text)
    line = run_cli(capsys, "calibrate", "--measurements", str(path), "--hw",
                               "cpu", "--out", str(tmp_path / "out.toml")).error_line
    assert where in line
    assert not (tmp_path / "out.toml").exists()


def test_output_path_that_cannot_be_written(capsys, tmp_path):
    # A path under a regular file cannot be created, even by root.
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = run_cli(capsys, "graph", "mobilenet_v2", "--csv",
                               str(blocker / "x.csv")).error_line
    assert "cannot" in line
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    line = run_cli(capsys, "graph", "mobilenet_v2", "--csv", str(folder)).error_line
    assert "is a folder" in line


def test_profile_written_atomically_keeps_the_previous_file(capsys, tmp_path, monkeypatch):
    out = tmp_path / "fitted.toml"
    out.write_text("previous\n")
    import roofline.io

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    # The disk fills up while the new profile is being written.
    monkeypatch.setattr(roofline.io.os, "fsync", disk_full)
    line = run_cli(capsys, "calibrate", "--measurements", str(MEASUREMENTS),
                               "--hw", "cpu", "--out", str(out), "--no-loo").error_line
    assert "No space left on device" in line
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["fitted.toml"]


def test_files_are_data_not_code(capsys, tmp_path):
    # A profile that looks like it wants to run something is just an invalid profile.
    marker = tmp_path / "ran"
    path = tmp_path / "evil.toml"
    path.write_text(f'__import__ = "os.system(\'touch {marker}\')"\n' + GOOD)
    assert run_cli(capsys, "profile", "mobilenet_v2", "--hw", str(path)).error_line
    assert not marker.exists()


# -- property-based: no input produces a traceback ------------------------------------------------

toml_scalars = st.one_of(
    st.integers(min_value=-10**12, max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=12), st.lists(st.integers(), max_size=3))
profile_keys = st.sampled_from([
    "name", "kind", "description", "default_precision", "peak_macs_per_s", "dram", "memory",
    "overhead", "efficiency", "geometry", "support", "sources", "fit", "fusion", "alias",
    "fuses_kernels", "bogus"])


def _valid() -> dict:
    return {"name": "mine", "kind": "cpu", "default_precision": "int8",
            "peak_macs_per_s": {"int8": 1e11}, "dram": {"bandwidth_bytes_per_s": 1e10},
            "sources": {"peak_macs_per_s": "t", "dram": "t"}}


@settings(max_examples=300, deadline=None)
@given(key=profile_keys, value=st.one_of(
    toml_scalars, st.dictionaries(st.text(max_size=8), toml_scalars, max_size=3)))
def test_profile_loader_never_crashes(key, value):
    data = _valid()
    data[key] = value
    try:
        profile = profile_from_dict(data)
    except ProfileError as exc:
        assert "\n" not in str(exc)
    else:
        assert profile.name


@settings(max_examples=200, deadline=None)
@given(section=st.sampled_from(["peak_macs_per_s", "dram", "overhead", "geometry",
                                "efficiency", "support"]),
       key=st.text(min_size=1, max_size=20), value=toml_scalars)
def test_profile_loader_never_crashes_on_nested_fields(section, key, value):
    data = _valid()
    data[section] = {**data.get(section, {}), key: value}
    try:
        profile_from_dict(data)
    except ProfileError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_profile_file_never_crashes(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("p") / "x.toml"
    path.write_text(text, encoding="utf-8")
    from roofline.core.hardware import load_hardware

    try:
        load_hardware(path)
    except ProfileError as exc:
        assert "\n" not in str(exc)


flag_values = st.one_of(st.text(max_size=10), st.sampled_from(
    ["0", "-1", "1e309", "nan", "inf", "1", "224", "0.5", "fp8", "int8", "", ",", " ", "1.5"]))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["graph", "profile", "list", "calibrate"]),
       model=st.one_of(st.text(max_size=15), st.sampled_from(
           ["mobilenet_v2", "mobilenet_v2@", "mobilenet_v2@@1", ":", "x.py:", "a:b:c",
            "mobilenet_v2:abc", "mobilenet_v2@-1:224"])),
       flags=st.lists(st.tuples(st.sampled_from(["--width", "--resolution", "--batch",
                                                 "--precision", "--hw", "--json", "--ops",
                                                 "--out", "--measurements"]), flag_values),
                      max_size=3))
def test_argument_parsing_never_crashes(capsys, command, model, flags):
    argv = [command]
    if command in ("graph", "profile"):
        argv.append(model)
    for flag, value in flags:
        argv.append(flag)
        if flag not in ("--json", "--ops"):
            argv.append(value)
    if command == "profile" and "--hw" not in argv:
        argv += ["--hw", "nonexistent-device"]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert code in (0, 2), (argv, err)
    if code == 2:
        assert err.strip() and len(err.strip().splitlines()) == 1, (argv, err)
