"""Every table the command line prints fits the terminal: at 80, 100 and 200 columns no line
is longer than the width and no cell is cut ("…"), and ``--wide`` shows every column.

Each command runs in-process through roofline.cli.main with $COLUMNS set (the console of a
pipe takes its width from there); a printer that raises fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len

from roofline.cli._common import Alt, Col, FitTable, console, wide_tables

from kit import run_cli

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = ROOT / "hardware_profiles" / "measurements" / "measured_latency.csv"
PRIOR = ROOT / "hardware_profiles" / "priors" / "pixel6-cpu.toml"

# The longest zoo names, an attention model (unsupported on the DSP) and a user model.
LONG = "mobilenet_v3_large_minimalistic,mobilenet_v4_hybrid_medium"


def _user_model(folder: Path) -> str:
    path = folder / "a_rather_long_user_model_file_name.py"
    path.write_text("from torch import nn\n\n\n"
                    "def build():\n"
                    "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),\n"
                    "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
                    "                         nn.Linear(8, 10))\n\n\n"
                    "def nothing():\n"
                    "    return nn.Identity()\n")
    return str(path)


def _commands(folder: Path) -> dict[str, list[str]]:
    user = _user_model(folder)
    return {
        "list models": ["list", "models"],
        "list hardware": ["list", "hardware"],
        "graph kernels": ["graph", "mobilenet_v4_hybrid_medium"],
        "graph ops": ["graph", "mobilenet_v3_large_minimalistic", "--ops"],
        "profile": ["profile", "mobilenet_v4_hybrid_medium", "--hw", "cpu"],
        "profile unsupported": ["profile", "mobilenet_v4_hybrid_medium", "--hw", "dsp"],
        "profile no kernels": ["profile", f"{user}:nothing", "--hw", "edgetpu"],
        "compare": ["compare", "--hw", "cpu,dsp", "--models",
                    f"mobilenet_v1@0.25:128,mobilenet_v2,{LONG},{user}:build", "--no-report"],
        "sweep": ["sweep", "mobilenet_v2", "--width", "0.5,1", "--resolution", "160,224",
                  "--hw", "cpu,edgetpu", "--no-report", "--workers", "1"],
        "sweep ridge": ["sweep", "--ridge", "0:500", "--models", f"mobilenet_v2,{LONG}",
                        "--no-report"],
        "calibrate": ["calibrate", "--measurements", str(MEASUREMENTS), "--hw", str(PRIOR),
                      "--out", str(folder / "fitted.toml"), "--no-loo"],
    }


NAMES = [
    "list models", "list hardware", "graph kernels", "graph ops", "profile",
    "profile unsupported", "profile no kernels", "compare", "sweep", "sweep ridge", "calibrate"]


@pytest.mark.parametrize("width", [80, 100, 200])
@pytest.mark.parametrize("name", NAMES)
def test_every_table_fits(name, width, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.chdir(tmp_path)
    out = run_cli(capsys, *_commands(tmp_path)[name]).ok
    lines = out.splitlines()
    assert len(lines) >= 3, out
    too_long = [line for line in lines if cell_len(line) > width]
    assert too_long == [], f"{len(too_long)} lines over {width}: {too_long[0]!r}"
    assert "…" not in out


def test_calibrate_with_leave_one_out_fits_80(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    out = run_cli(capsys, "calibrate", "--measurements", MEASUREMENTS, "--hw", PRIOR,
                  "--out", tmp_path / "fitted.toml").ok
    assert "LOO" in out and "…" not in out
    assert max(cell_len(line) for line in out.splitlines()) <= 80


def test_validate_table_fits_80(tmp_path, monkeypatch, capsys):
    """validate measures with torch: one short run, at the narrowest width only."""
    monkeypatch.setenv("COLUMNS", "80")
    user = _user_model(tmp_path)
    out = run_cli(capsys, "validate", "--hw", "cpu", "--models", f"{user}:build:32",
                  "--budget", "1").ok
    assert "predicted" in out and "…" not in out
    assert max(cell_len(line) for line in out.splitlines()) <= 80


def test_narrow_tables_keep_what_matters(tmp_path, monkeypatch, capsys):
    """At 80 columns: graph keeps MACs, profile keeps MACs, latency and the bound, compare
    keeps top-1 and MACs (the findings of issue #14); what is left out is named."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(tmp_path)
    commands = _commands(tmp_path)
    graph = run_cli(capsys, *commands["graph kernels"]).ok
    header = graph.splitlines()[0].split()
    assert "MACs" in header and "name" in header
    assert "not shown at 80 columns" in graph and "--wide" in graph
    profile = run_cli(capsys, *commands["profile"]).ok.splitlines()
    assert {"kernel", "MACs", "ms", "bound"} <= set(profile[0].split())
    compare = run_cli(capsys, *commands["compare"]).ok
    header = compare.splitlines()[1].split()
    assert {"model", "top-1", "MACs", "ms"} <= set(header)
    # The label carries width and resolution when their columns are left out.
    assert "mobilenet_v1@0.25:128" in compare


def test_wide_shows_every_column_in_full(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.chdir(tmp_path)
    argv = _commands(tmp_path)["graph kernels"]
    wide = run_cli(capsys, *argv, "--wide").ok.splitlines()
    assert wide[0].split() == ["#", "name", "kind", "fused", "output", "MACs", "params",
                               "weights", "act", "in", "act", "out", "MACs/B"]
    assert max(cell_len(line) for line in wide) > 80  # the terminal wraps it, nothing is cut
    assert "blocks.0.conv" in wide[2] and "…" not in "\n".join(wide)
    assert not any("not shown" in line for line in wide)
    for command in ("list", "graph", "profile", "compare", "sweep", "calibrate", "validate"):
        assert "--wide" in run_cli(capsys, command, "--help").out, command


# -- the fitting rule itself -------------------------------------------------------------------

def _render(table: FitTable, width: int) -> list[str]:
    import io

    from rich.console import Console

    con = Console(file=io.StringIO(), width=width, color_system=None, markup=False)
    con.print(table)
    return con.file.getvalue().splitlines()


def test_fit_rule_short_cells_then_priorities_then_folding():
    columns = [Col("name", "left", wrap=True), Col("a"), Col("b", priority=1),
               Col("c", priority=2), Col("d", priority=2)]
    rows = [["x" * 20, Alt("1234.5", "1k"), "22", "33", "44"]]
    table = FitTable(columns, rows)
    # full: 20 + 6 + 2 + 2 + 2 = 32 characters of cells, 4 gaps of 2 = 40
    assert table.layout(40) == ([0, 1, 2, 3, 4], False, {})
    # 39: short cells, 20 + 2 + 2 + 2 + 2 + 8 = 36
    assert table.layout(39) == ([0, 1, 2, 3, 4], True, {})
    # 35: the rightmost of the highest priority goes first (d), 20 + 2 + 2 + 2 + 6 = 32
    assert table.layout(32) == ([0, 1, 2, 3], True, {})
    assert table.layout(31) == ([0, 1, 2], True, {})  # then c: 20 + 2 + 2 + 4 = 28
    assert table.layout(24) == ([0, 1], True, {})  # then b: 20 + 2 + 2 = 24
    # Only priority 0 is left: the name folds, 23 - 4 = 19 characters wide.
    assert table.layout(23) == ([0, 1], True, {0: 19})
    lines = _render(table, 23)
    assert max(cell_len(line) for line in lines) <= 23 and "…" not in "".join(lines)
    said = " ".join(" ".join(lines).split())
    assert "(not shown at 23 columns: b, c, d; --wide shows every column)" in said
    with wide_tables(True):
        assert console().width > 1000
    assert table.layout(None) == ([0, 1, 2, 3, 4], False, {})  # --wide: all of it, full
