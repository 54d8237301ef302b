"""One model's kernels on one device, as tables: the stage each kernel belongs to, the kernel
table behind the report's roofline chart, and the per-stage breakdown by bound.

Owns no arithmetic of the engine (the numbers are a Prediction's) and no drawing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..core.engine import Prediction

__all__ = ["stage_of", "kernel_frame", "stage_breakdown"]


def stage_of(module: str) -> str:
    """The top-level block a kernel belongs to: ``features.3.conv`` → ``features.3``,
    ``blocks.11.dw`` → ``blocks.11``, ``head.pool`` → ``head``, the root module → ``(root)``.

    Rule: the first component of the module path, plus the second when the first is a
    container indexed by number (a Sequential or ModuleList of blocks).
    """
    if not module:
        return "(root)"
    parts = module.split(".")
    if len(parts) > 1 and parts[1].isdigit():
        return f"{parts[0]}.{parts[1]}"
    return parts[0]


def kernel_frame(prediction: Prediction) -> pd.DataFrame:
    """One row per kernel of ``prediction``: name, kind, stage, macs, bytes (at the
    prediction's precision), intensity (MACs/byte), latency/compute/memory/overhead (ms),
    bound, supported, and attained_macs_per_s = MACs / latency (NaN for kernels without MACs,
    which have no place on a MACs/s roofline)."""
    import pandas as pd

    frame = pd.DataFrame.from_records(prediction.kernel_records())
    frame["stage"] = [stage_of(m) for m in frame["module"]]
    frame["bytes"] = frame["weight_bytes"] + frame["input_bytes"] + frame["output_bytes"]
    lat_s = frame["latency_ms"].astype(float) / 1e3
    frame["attained_macs_per_s"] = [m / s if m > 0 and s > 0 else math.nan
                                    for m, s in zip(frame["macs"], lat_s, strict=True)]
    return frame


def stage_breakdown(prediction: Prediction, *, per_inference: bool = True) -> pd.DataFrame:
    """Milliseconds per (stage, bound), stages in execution order: columns stage, bound,
    latency_ms, kernels. With ``per_inference`` (and a device that has one) a last
    ``per inference`` stage holds the fixed per-inference overhead (0 kernels)."""
    import pandas as pd

    frame = kernel_frame(prediction)
    frame = frame[frame["latency_ms"].notna()]
    order = list(dict.fromkeys(frame["stage"]))
    grouped = frame.groupby(["stage", "bound"], sort=False).agg(
        latency_ms=("latency_ms", "sum"), kernels=("name", "count")).reset_index()
    grouped["stage"] = pd.Categorical(grouped["stage"], categories=order, ordered=True)
    grouped = grouped.sort_values(["stage", "bound"], kind="stable")
    grouped["stage"] = grouped["stage"].astype(str)
    if per_inference and prediction.per_inference_ms > 0:
        extra = pd.DataFrame([{"stage": "per inference", "bound": "overhead",
                               "latency_ms": prediction.per_inference_ms, "kernels": 0}])
        grouped = pd.concat([grouped, extra], ignore_index=True)
    return grouped.reset_index(drop=True)
