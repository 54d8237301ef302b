"""The ridge-point sweep of the MobileNetV4 paper (Section 3, Figure 2, Appendix F).

Owns the plain roofline as a function of the ridge point RP = peak MACs/s ÷ memory bytes/s:
latency ∝ Σ_kernels max(MACs, RP × bytes). RP = 0 ranks models by MACs alone; a large RP by
bytes moved. Also the sweep of compared models with the paper's and each profile's ridge
points marked, and which models move most across it. Imports neither torch nor plotly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..core.fuse import fuse
from ..core.graph import LayerGraph
from ..units import bytes_per_element
from .roofs import ridge_point

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .compare import Comparison

__all__ = ["PAPER_RIDGE_POINTS", "RIDGE_PRECISION", "ridge_costs", "ridge_sweep",
           "default_ridge_points", "RidgeMarker", "ridge_data", "ridge_movers"]

#: The ridge-point sweep prices bytes at int8, the precision the MobileNetV4 paper fitted its
#: ridge points to (Qin et al. 2024, Table 16).
RIDGE_PRECISION = "int8"

#: Ridge points (MACs/byte) the MobileNetV4 paper fitted to measured int8 latency (Qin et al.
#: 2024, Table 16). These are effective values, far above the datasheet ratios.
PAPER_RIDGE_POINTS: dict[str, float] = {
    "pixel6-cpu": 31.2,
    "s23-cpu": 39.7,
    "pixel4-dsp": 347.3,
    "pixel8-edgetpu": 433.8,
}


def default_ridge_points(stop: float = 500.0, step: float = 5.0) -> np.ndarray:
    """0, step, ..., stop (MACs per byte)."""
    return np.arange(0.0, stop + step / 2, step)


def ridge_costs(graph: LayerGraph, ridge_points: Sequence[float] | np.ndarray) -> np.ndarray:
    """Σ_kernels max(MACs, RP × bytes) for each ridge point: latency × peak MACs/s.

    Bytes are each kernel's weights plus activations in and out at the graph's precision,
    every byte from one memory level, as in the paper.
    """
    kernels = fuse(graph).layers
    macs = np.array([k.macs for k in kernels], dtype=np.float64)
    moved = np.array([k.total_bytes for k in kernels], dtype=np.float64)
    rp = np.asarray(ridge_points, dtype=np.float64)
    if np.any(rp < 0) or not np.all(np.isfinite(rp)):
        raise ValueError("ridge points must be finite and >= 0")
    return np.maximum(macs[None, :], rp[:, None] * moved[None, :]).sum(axis=1)


def ridge_sweep(graphs: Sequence[LayerGraph], ridge_points: Sequence[float] | np.ndarray,
                names: Sequence[str] | None = None) -> pd.DataFrame:
    """Tidy table: model, ridge_point, cost_macs (Σ max(MACs, RP × bytes)), relative.

    ``relative`` is each model's cost over the cheapest model's at the same ridge point, so
    1.0 marks the fastest model a device with that ridge point would pick.
    """
    import pandas as pd

    rp = np.asarray(ridge_points, dtype=np.float64)
    names = list(names) if names is not None else [g.model_name for g in graphs]
    costs = np.stack([ridge_costs(g, rp) for g in graphs])  # (models, ridge points)
    best = costs.min(axis=0)
    return pd.DataFrame({"model": [name for name in names for _ in rp],
                         "ridge_point": np.tile(rp, len(names)),
                         "cost_macs": costs.ravel(),
                         "relative": (costs / best[None, :]).ravel()},
                        columns=["model", "ridge_point", "cost_macs", "relative"])


# -- the sweep for compared models, and the devices to mark -------------------------------------

@dataclass(frozen=True)
class RidgeMarker:
    """A vertical line on the ridge sweep: a device's ridge point in MACs per int8 byte."""

    label: str
    ridge_point: float
    source: str


def ridge_data(comparison: Comparison, ridge_points: Sequence[float] | None = None
               ) -> tuple[pd.DataFrame, list[RidgeMarker]]:
    """The MobileNetV4 paper's Figure 2 for the compared models, and the devices to mark.

    Returns ``roofline.analyses.ridge.ridge_sweep`` over the compared variants' graphs at int8
    (label as ``model``) and the markers: each device of the paper's Table 16 (fitted ridge
    points), then each compared profile's own ridge point
    (:func:`roofline.analyses.roofs.ridge_point`: peak ÷ DRAM bandwidth at its precision). A
    profile priced at fp16 or fp32 moves 2 or 4 bytes per element where the sweep counts 1, so
    its marker is its ridge point × bytes per element: the int8-byte ridge point that gives
    the same Σ max(MACs, RP × bytes).
    """
    # Fused first (the kernel view is the same at any precision, and the report has it
    # already), then priced at int8.
    graphs = [fuse(g).at_precision(RIDGE_PRECISION) for g in comparison.graphs]
    markers = [RidgeMarker(f"{name} (paper)", value,
                           "MobileNetV4 paper (Qin et al. 2024), Table 16: fitted to measured "
                           "int8 latency")
               for name, value in PAPER_RIDGE_POINTS.items()]
    for hw, precision in zip(comparison.hardware, comparison.precisions, strict=True):
        scale = bytes_per_element(precision) / bytes_per_element(RIDGE_PRECISION)
        rp = ridge_point(hw, precision) * scale
        note = (f"{hw.name}: peak {precision} ÷ DRAM bandwidth"
                + (f" × {scale:g} ({precision} moves {scale:g}× the bytes of int8)"
                   if scale != 1 else ""))
        markers.append(RidgeMarker(f"{hw.name} (profile)", rp, note))
    if ridge_points is None:
        # 0 to 500 MACs/byte as in the paper's Figure 2, further when a marker lies beyond.
        stop = max(500.0, math.ceil(max(m.ridge_point for m in markers) * 1.05 / 50) * 50)
        ridge_points = default_ridge_points(stop=stop)
    sweep = ridge_sweep(graphs, ridge_points, comparison.labels)
    return sweep, markers


def ridge_movers(sweep: pd.DataFrame) -> pd.DataFrame:
    """How each model's relative latency changes from the smallest to the largest ridge point
    of ``sweep`` (a :func:`roofline.analyses.ridge.ridge_sweep` table): model, relative_low,
    relative_high, ratio (high / low: < 1 means the model gains on high-ridge devices,
    accelerators; > 1 that it gains on low-ridge ones, CPUs), sorted by ratio."""
    import pandas as pd

    if not len(sweep):
        return pd.DataFrame(columns=["model", "relative_low", "relative_high", "ratio"])
    low = sweep[sweep["ridge_point"] == sweep["ridge_point"].min()].set_index("model")
    high = sweep[sweep["ridge_point"] == sweep["ridge_point"].max()].set_index("model")
    models = list(dict.fromkeys(sweep["model"]))
    out = pd.DataFrame({"model": models,
                        "relative_low": low.loc[models, "relative"].to_numpy(),
                        "relative_high": high.loc[models, "relative"].to_numpy()})
    out["ratio"] = out["relative_high"] / out["relative_low"]
    return out.sort_values("ratio", kind="stable").reset_index(drop=True)
