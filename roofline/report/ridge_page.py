"""The ridge-point sweep page (``roofline sweep --ridge``): the MobileNetV4 paper's Figure 2.

Owns the page's one section (the sweep's chart, reused from the compare report, and the table
of the models whose relative latency moves most); the numbers come from
``roofline.analyses.compare.ridge_data`` and ``ridge_movers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .compare_page import ridge_figure
from .page import Chart, Section, html_table, render_page

__all__ = ["ridge_page"]


def ridge_page(comparison: Any, table: Any, markers: Sequence[Any], movers: Any,
               points: Sequence[float], *, command: str) -> str:
    """The whole page for a sweep ``table`` over ``points`` (MACs per byte)."""
    from .. import __version__

    section = Section(
        "Relative latency across ridge points",
        "Each model's roofline latency, Σ max(MACs, ridge point × bytes), relative to the "
        "fastest model at the same ridge point (MobileNetV4 paper, Qin et al. 2024, Figure 2). "
        "A CPU has a low ridge point, an accelerator a high one; vertical lines mark the "
        "paper's fitted ridge points (Table 16) and each profile's own.",
        figures=[Chart(ridge_figure(comparison, table, markers),
                       "Lines start hidden for models on no device's frontier: click the "
                       "legend to show them.")],
        html_table=html_table(["model", f"relative at {points[0]:g}",
                               f"relative at {points[-1]:g}", "high / low"],
                              [(r.model, f"{r.relative_low:.2f}", f"{r.relative_high:.2f}",
                                f"{r.ratio:.2f}") for r in movers.itertuples()],
                              numeric=[False, True, True, True]))
    provenance = {"command": command, "roofline": __version__,
                  "markers": [f"{m.label}: {m.ridge_point:.1f} ({m.source})" for m in markers]}
    return render_page("Ridge-point sweep", [section], provenance)
