"""Every figure of every report is valid plotly.

The reports build their figures as plain data (``roofline.report.page.Figure``): nothing checks
a property name or value while a figure is built, which is what makes a warm ``compare`` fast.
plotly's graph objects check them here instead: each figure a page draws is passed whole to
``plotly.graph_objects.Figure``, which raises on an unknown property or an invalid value.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import pytest

import roofline.report.page as page
from roofline.cli import main
from roofline.fitting.measure import Timing
from roofline.fitting.validate import ModelCheck, Validation
from roofline.report.validate_page import validation_page
from roofline.sources.variant import resolve_models

import kit


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
          ) -> list[Any]:
    """The figures every page rendered during the test, as they reached the page."""
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    seen: list[Any] = []
    real = page._figure_html

    def record(figure: Any, div_id: str) -> str:
        seen.append(figure)
        return real(figure, div_id)

    monkeypatch.setattr(page, "_figure_html", record)
    return seen


def _validate(figures: list[Any]) -> None:
    assert figures, "no figure was drawn"
    for figure in figures:
        data = figure if isinstance(figure, dict) else figure.to_plotly_json()
        go.Figure(data)  # raises ValueError on any invalid property


def test_compare_report_figures_are_valid_plotly(drawn, tmp_path):
    # Four device kinds and the four MobileNet families: every chart of the page (frontiers,
    # ranks, rooflines, breakdowns, the ridge chart).
    assert main(["compare", "--hw", "cpu,dsp,gpu,edgetpu", "--models",
                 "mobilenet_v1@0.25:128,mobilenet_v2@0.35:224,mobilenet_v3_small,mobilenet_v4_hybrid_medium",
                 "--out", str(tmp_path / "c.html")]) == 0
    # 4 Pareto charts and the rank chart at least.
    assert len(drawn) >= 5
    _validate(drawn)


def test_sweep_and_search_figures_are_valid_plotly(drawn, tmp_path):
    assert main(["sweep", "mobilenet_v2", "--width", "0.5,1.0", "--resolution", "128,160",
                 "--hw", "cpu,edgetpu", "--workers", "1",
                 "--out", str(tmp_path / "s.html")]) == 0
    assert main(["search", "mobilenet_v4", "--hw", "cpu,edgetpu", "--samples", "200",
                 "--out", str(tmp_path / "q.html")]) == 0
    _validate(drawn)


def test_validation_figure_is_valid_plotly(drawn):
    # Measured times are made up: only the figure's schema is under test here.
    variants = resolve_models("mobilenet_v1@0.25:128,mobilenet_v2@0.35:224")
    checks = tuple(ModelCheck(v, predicted_ms=1.0 + i, measured=Timing((1.1 + i, 1.2 + i, 1.3 + i)))
                   for i, v in enumerate(variants))
    validation_page(Validation(kit.profile("bare"), 1, checks), command="roofline validate")
    _validate(drawn)
