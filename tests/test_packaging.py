"""What an installed roofline carries: every data file the profiles and the README refer to."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def _data_files(folder: Path) -> list[Path]:
    """Files under ``folder`` that are not Python code or build debris."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
                  and "__pycache__" not in p.parts)


@pytest.mark.parametrize("package", ["roofline.profiles", "roofline.zoo"])
def test_every_data_file_is_declared_package_data(package):
    folder = ROOT / SETUPTOOLS["package-dir"][package]
    patterns = SETUPTOOLS["package-data"][package]
    missing = [str(p.relative_to(folder)) for p in _data_files(folder)
               if not any(fnmatch.fnmatch(str(p.relative_to(folder)), pat) for pat in patterns)]
    assert missing == []


def test_every_package_folder_is_listed():
    packages = set(SETUPTOOLS["packages"])
    for init in (ROOT / "roofline").rglob("__init__.py"):
        name = ".".join(init.parent.relative_to(ROOT).parts)
        assert name in packages, f"{name} is not in [tool.setuptools] packages"


@pytest.mark.slow
def test_the_wheel_holds_the_priors_and_measurements(tmp_path):
    # Built as pip builds it for a user: in an isolated environment with pyproject's
    # build requirements.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("roofline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = _data_files(ROOT / "hardware_profiles")
    expected = {"roofline/profiles/" + str(p.relative_to(ROOT / "hardware_profiles"))
                for p in shipped}
    assert any(n.startswith("roofline/profiles/priors/") for n in expected)
    assert expected <= names
    assert "roofline/zoo/published_models.csv" in names


def test_fit_commands_name_files_found_from_any_folder(tmp_path, monkeypatch):
    """A shipped profile's [fit] command names hardware_profiles/priors/... and .../measurements:
    they resolve to the installed files from a folder that has no hardware_profiles/."""
    from roofline.core.hardware import load_hardware
    from roofline.fitting.calibrate import load_measurements

    monkeypatch.chdir(tmp_path)
    command = load_hardware("s23-gpu").fit.command.split()
    prior = command[command.index("--hw") + 1]
    measurements = command[command.index("--measurements") + 1]
    assert prior.startswith("hardware_profiles/priors/")
    assert load_hardware(prior).name == "s23-gpu"
    assert len(load_measurements(measurements, device="s23-gpu")) == 6  # Table 6: six models
