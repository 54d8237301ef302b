"""The ridge-point sweep of the MobileNetV4 paper (Section 3, Figure 2, Appendix F).

Owns the plain roofline as a function of the ridge point RP = peak MACs/s ÷ memory bytes/s:
latency ∝ Σ_kernels max(MACs, RP × bytes). RP = 0 ranks models by MACs alone; a large RP by
bytes moved. Imports neither torch nor plotly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..core.fuse import fuse
from ..core.graph import LayerGraph

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["PAPER_RIDGE_POINTS", "ridge_costs", "ridge_sweep", "default_ridge_points"]

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
    rows = []
    for i, name in enumerate(names):
        for j, point in enumerate(rp):
            rows.append((name, float(point), float(costs[i, j]), float(costs[i, j] / best[j])))
    return pd.DataFrame(rows, columns=["model", "ridge_point", "cost_macs", "relative"])
