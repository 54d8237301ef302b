"""Comparing models across devices: which model to ship on each device, and why it is fast or slow.

Owns running every model on every device (each variant traced once), the tidy result table, the
Pareto frontier per device, ranking changes between devices, and the data behind the report's
per-kernel roofline, per-stage breakdown and ridge-point sweep. Pure logic: imports no plotly
(``roofline.report.compare_page`` draws) and imports torch only through tracing. Which models
``--models`` names is ``roofline.sources.variant.resolve_models``'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..core.hardware import HardwareProfile, resolve_hardware
from ..errors import RooflineError, UsageError
from ..sources.base import USER_FAMILY
from .pareto import pareto_mask, uncertain_order

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..core.engine import Prediction
    from ..core.graph import LayerGraph
    from ..sources.variant import Variant

__all__ = ["Comparison", "compare", "short_labels", "USER_FAMILY", "ROW_FIELDS",
           "PICK_TARGETS", "pick_targets", "check_top1", "given_top1"]



#: Fields of every result row (``--json`` / ``--csv``), in order. ``bound`` is the bound the
#: most milliseconds are spent in; ``<bound>_bound_ms`` the milliseconds of kernels with that
#: bound (the per-inference overhead counts as overhead); ``rank`` is the latency rank on the
#: device (1 = fastest; None when unsupported).
ROW_FIELDS: tuple[str, ...] = (
    "model", "label", "short_label", "family", "width", "resolution", "hardware", "precision",
    "latency_ms", "latency_range_ms", "macs", "params", "top1", "top1_given", "pareto",
    "order_uncertain", "supported", "unsupported_kinds", "bound",
    "compute_bound_ms", "memory_bound_ms", "overhead_bound_ms", "rank", "kernels")




# -- the comparison --------------------------------------------------------------------------------

def short_labels(variants: Sequence[Variant]) -> list[str]:
    """Labels fit for a chart: a user model by its file name and callable
    (``nets/tiny.py:build`` → ``tiny.py:build:224``), a zoo model by its label. Where two
    short labels would collide, both keep their full labels."""
    short = [v.short_label for v in variants]
    counts: dict[str, int] = {}
    for s in short:
        counts[s] = counts.get(s, 0) + 1
    return [s if counts[s] == 1 else v.label for s, v in zip(short, variants, strict=True)]


def _dominant(breakdown: dict[str, float]) -> str:
    return max(breakdown, key=lambda b: breakdown[b])


@dataclass(frozen=True)
class Comparison:
    """Every variant predicted on every device.

    ``predictions[h][m]`` is variant ``m`` on profile ``h``; ``graphs[m]`` its op view (fp32,
    traced once). ``table`` is the tidy table (one row per variant × device, ``ROW_FIELDS``).
    """

    variants: tuple[Variant, ...]
    graphs: tuple[LayerGraph, ...]
    hardware: tuple[HardwareProfile, ...]
    precisions: tuple[str, ...]
    predictions: tuple[tuple[Prediction, ...], ...]
    families: tuple[str, ...] = field(default=())
    #: Top-1 (%) the caller gave, by label (``compare(..., top1=...)``); they replace the
    #: published figure, and are how a user's own model gets onto the accuracy charts.
    given_top1: dict[str, float] = field(default_factory=dict)

    def top1_of(self, m: int) -> float | None:
        """Variant ``m``'s top-1 (%): the one given, else the published one, else None."""
        label = self.variants[m].label
        if label in self.given_top1:
            return self.given_top1[label]
        return self.variants[m].top1()

    def top1_source_of(self, m: int) -> str | None:
        """Where :meth:`top1_of` comes from: "given" (by the caller), a citation, or None."""
        if self.variants[m].label in self.given_top1:
            return "given"
        return self.variants[m].top1_source()

    @property
    def user_labels(self) -> list[str]:
        """Labels of the user's own models (from a file or package, not the zoo)."""
        return [v.label for v, f in zip(self.variants, self.families, strict=True)
                if f == USER_FAMILY]

    @property
    def labels(self) -> list[str]:
        return [v.label for v in self.variants]

    @cached_property
    def short_labels(self) -> list[str]:
        return short_labels(self.variants)

    @property
    def hardware_names(self) -> list[str]:
        return [h.name for h in self.hardware]

    @cached_property
    def table(self) -> pd.DataFrame:
        import pandas as pd

        rows = []
        for h, hw in enumerate(self.hardware):
            preds = self.predictions[h]
            latency = [p.latency_ms for p in preds]
            top1 = [self.top1_of(m) for m in range(len(self.variants))]
            frontier = pareto_mask(latency, top1)
            uncertain = uncertain_order(frontier, latency,
                                        [p.latency_range_ms for p in preds])
            order = sorted((lat, i) for i, lat in enumerate(latency) if lat is not None)
            rank = {i: r + 1 for r, (_, i) in enumerate(order)}
            for m, (variant, pred) in enumerate(zip(self.variants, preds, strict=True)):
                graph = self.graphs[m]
                bd = pred.bound_breakdown() if pred.supported else None
                rows.append({
                    "model": variant.name,
                    "label": variant.label,
                    "short_label": self.short_labels[m],
                    "family": self.families[m],
                    "width": variant.effective_width,
                    "resolution": variant.effective_resolution,
                    "hardware": hw.name,
                    "precision": pred.precision,
                    "latency_ms": pred.latency_ms,
                    "latency_range_ms": (list(pred.latency_range_ms)
                                         if pred.latency_range_ms else None),
                    "macs": int(graph.macs),
                    "params": int(graph.params),
                    "top1": top1[m],
                    "top1_given": variant.label in self.given_top1,
                    "pareto": bool(frontier[m]),
                    "order_uncertain": bool(uncertain[m]),
                    "supported": bool(pred.supported),
                    "unsupported_kinds": list(pred.unsupported_kinds),
                    "bound": _dominant(bd) if bd else None,
                    "compute_bound_ms": bd["compute"] if bd else None,
                    "memory_bound_ms": bd["memory"] if bd else None,
                    "overhead_bound_ms": bd["overhead"] if bd else None,
                    "rank": rank.get(m),
                    "kernels": len(pred.graph.layers),
                })
        frame = pd.DataFrame.from_records(rows, columns=list(ROW_FIELDS))
        return frame.astype({"rank": "Int64"})

    def rows(self) -> list[dict[str, Any]]:
        """The table as plain records (None for unknowns, never NaN): for JSON and CSV."""
        out = []
        for record in self.table.to_dict(orient="records"):
            out.append({k: _plain(v) for k, v in record.items()})
        return out

    @cached_property
    def records_by_label(self) -> dict[str, dict[str, dict[str, Any]]]:
        """label -> device name -> that row of :meth:`rows` (plain values), devices in
        :attr:`hardware_names` order: what a per-model line of a chart or table reads."""
        out: dict[str, dict[str, dict[str, Any]]] = {label: {} for label in self.labels}
        for row in self.rows():
            out[row["label"]][row["hardware"]] = row
        return out

    def on(self, hardware: str) -> pd.DataFrame:
        """The rows of one device, fastest first (unsupported models last)."""
        if hardware not in self._by_hardware:
            t = self.table[self.table["hardware"] == hardware]
            self._by_hardware[hardware] = t.sort_values(["latency_ms", "label"],
                                                        na_position="last", kind="stable")
        return self._by_hardware[hardware].copy()

    @cached_property
    def _by_hardware(self) -> dict[str, pd.DataFrame]:
        return {}

    def frontier(self, hardware: str) -> pd.DataFrame:
        """The Pareto-optimal rows of one device, fastest (least accurate) first."""
        t = self.on(hardware)
        return t[t["pareto"]]

    def prediction(self, hardware: str, label: str) -> Prediction:
        h = self.hardware_names.index(hardware)
        return self.predictions[h][self.labels.index(label)]

    def default_focus(self) -> str | None:
        """The model the per-kernel charts show by default, by :meth:`focus_rule`'s rule: on
        the first device with a non-empty Pareto frontier, the frontier model whose latency is
        nearest the median latency of that frontier (of two equally near, the faster); else
        the fastest supported model on any device; else None."""
        return self._default_focus()[0]

    def focus_rule(self, label: str | None) -> str | None:
        """Why ``label`` is the focus when it is :meth:`default_focus` (None otherwise), in
        words: "the frontier model nearest the median latency on pixel6-cpu"."""
        focus, rule = self._default_focus()
        return rule if label is not None and label == focus else None

    def _default_focus(self) -> tuple[str | None, str | None]:
        import statistics

        for hw in self.hardware_names:
            front = self.frontier(hw)
            if len(front):
                latency = [float(x) for x in front["latency_ms"]]
                median = statistics.median(latency)
                best = min(range(len(latency)), key=lambda i: (abs(latency[i] - median), i))
                return (str(front.iloc[best]["label"]),
                        f"the model nearest the median latency ({median:.3g} ms) of the "
                        f"{len(front)} on {hw}'s Pareto frontier")
        for hw in self.hardware_names:
            t = self.on(hw)
            t = t[t["supported"]]
            if len(t):
                return (str(t.iloc[0]["label"]),
                        f"the fastest model on {hw} (no device has a Pareto frontier: no "
                        f"supported model has a top-1)")
        return None, None

    def focus_label(self, spec: str | None) -> str | None:
        """The label of the compared variant ``spec`` names (None: :meth:`default_focus`).

        ``spec`` is parsed like a model name; a model outside the comparison is a UsageError.
        """
        if spec is None:
            return self.default_focus()
        from ..sources.variant import parse_variant

        label = parse_variant(spec).label
        if label not in self.labels:
            from ..errors import close_matches

            hint = close_matches(label, self.labels)
            raise UsageError(f"--focus {spec!r} is not among the compared models"
                             + (f"; did you mean {', '.join(hint)}?" if hint else
                                "; add it to --models"))
        return label

    def rank_changes(self, a: str, b: str) -> pd.DataFrame:
        """Latency ranks on devices ``a`` and ``b`` (1 = fastest) of the models both run:
        label, rank_a, rank_b, change (rank_a - rank_b: > 0 moves up on ``b``), sorted by the
        size of the change."""
        import pandas as pd

        ta = self.on(a).set_index("label")
        tb = self.on(b).set_index("label")
        both = [lbl for lbl in self.labels
                if pd.notna(ta.at[lbl, "latency_ms"]) and pd.notna(tb.at[lbl, "latency_ms"])]
        la = ta.loc[both, "latency_ms"].rank(method="min").astype(int)
        lb = tb.loc[both, "latency_ms"].rank(method="min").astype(int)
        out = pd.DataFrame({"label": both, "rank_a": la.values, "rank_b": lb.values})
        out["change"] = out["rank_a"] - out["rank_b"]
        return out.reindex(out["change"].abs().sort_values(ascending=False, kind="stable")
                           .index).reset_index(drop=True)

    def rank_correlation(self, a: str, b: str) -> float:
        """Spearman's rank correlation of latency on ``a`` and ``b`` (NaN with < 2 models)."""
        import numpy as np

        ta = self.on(a).set_index("label")["latency_ms"]
        tb = self.on(b).set_index("label")["latency_ms"]
        both = [lbl for lbl in self.labels if pd_notna(ta[lbl]) and pd_notna(tb[lbl])]
        if len(both) < 2:
            return math.nan
        # Pearson's correlation of the ranks, ties sharing their average rank. Computed here:
        # pandas' spearman imports scipy, a second of start-up for one number.
        ra = ta[both].astype(float).rank(method="average").to_numpy()
        rb = tb[both].astype(float).rank(method="average").to_numpy()
        if ra.std() == 0 or rb.std() == 0:
            return math.nan
        return float(np.corrcoef(ra, rb)[0, 1])

    def picks(self, targets: Sequence[float] | None = None) -> pd.DataFrame:
        """For each top-1 target (%) and device, the fastest supported model whose published
        top-1 reaches it: columns target, hardware, label, short_label, top1, latency_ms (a
        row with label None when no model reaches the target). Such a model is always on the
        device's frontier. Default targets: :func:`pick_targets`."""
        import pandas as pd

        if targets is None:
            targets = pick_targets(self.table["top1"].dropna().tolist())
        rows = []
        for target in targets:
            for hw in self.hardware_names:
                t = self.on(hw)
                t = t[t["supported"] & (t["top1"] >= target)]
                best = t.iloc[0] if len(t) else None
                rows.append({
                    "target": float(target), "hardware": hw,
                    "label": None if best is None else best["label"],
                    "short_label": None if best is None else best["short_label"],
                    "top1": None if best is None else float(best["top1"]),
                    "latency_ms": None if best is None else float(best["latency_ms"])})
        return pd.DataFrame(rows, columns=["target", "hardware", "label", "short_label", "top1",
                                           "latency_ms"])


def pd_notna(value: Any) -> bool:
    import pandas as pd

    return bool(pd.notna(value))


#: Top-1 targets (%) for :meth:`Comparison.picks`: round numbers across the MobileNet range.
PICK_TARGETS: tuple[float, ...] = (50.0, 60.0, 65.0, 70.0, 72.5, 75.0, 77.5, 80.0, 82.5)


def pick_targets(top1s: Sequence[float]) -> list[float]:
    """The :data:`PICK_TARGETS` some model reaches (none without a top-1)."""
    if not top1s:
        return []
    best = max(top1s)
    return [t for t in PICK_TARGETS if t <= best]


def _plain(value: Any) -> Any:
    """numpy/pandas scalars as Python ones; NaN/NA as None."""
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def check_top1(value: Any, what: str = "top-1") -> float:
    """A top-1 accuracy in percent: a finite number from 0 to 100 (else a UsageError)."""
    try:
        pct = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a percentage from 0 to 100, got {value!r}") from None
    if not (math.isfinite(pct) and 0 <= pct <= 100):
        raise UsageError(f"{what} must be a percentage from 0 to 100, got {value!r}")
    return pct


def given_top1(variants: Sequence[Variant], top1: Mapping[str, float] | None,
               option: str = "--top1") -> dict[str, float]:
    """``top1`` (model spec as written in ``--models`` → percent) by the label of the variant
    each spec names; a spec naming no compared variant, or a bad percentage, is a
    UsageError."""
    from ..sources.variant import parse_variant

    labels = [v.label for v in variants]
    out: dict[str, float] = {}
    for spec, value in (top1 or {}).items():
        pct = check_top1(value, f"{option} {spec}")
        try:
            variant = parse_variant(spec)
        except RooflineError as exc:
            raise UsageError(f"{option} {spec!r}: {exc}") from None
        label = spec if spec in labels else variant.label
        if label not in labels:  # hint: the compared variants of the same model
            hint = [v.label for v in variants if v.name == variant.name][:3]
            raise UsageError(f"{option} {spec!r} names no compared model"
                             + (f" (did you mean {', '.join(hint)}?)" if hint else "")
                             + "; add it to --models")
        out[label] = pct
    return out


def compare(variants: Sequence[Variant], hardware: Sequence[HardwareProfile | str],
            precision: str | None = None, top1: Mapping[str, float] | None = None
            ) -> Comparison:
    """Trace each variant once and predict it on every device (``precision`` overrides each
    profile's default precision).

    ``top1`` gives accuracies (%) the zoo does not know, keyed by model spec as written in
    ``--models`` (``{"mynet.py:build": 75.0}``) or by label: a user's own model then takes
    its place on the frontier and the accuracy charts (a given figure replaces a published
    one)."""
    from ..core.engine import predict_many

    if not variants:
        raise UsageError("no models to compare")
    given = given_top1(variants, top1)
    hws = resolve_hardware(hardware, precision)
    graphs = tuple(v.trace() for v in variants)
    predictions = tuple(tuple(row) for row in predict_many(graphs, hws, precision))
    return Comparison(
        variants=tuple(variants), graphs=graphs, hardware=tuple(hws),
        precisions=tuple(precision or hw.default_precision for hw in hws),
        predictions=predictions, families=tuple(v.family for v in variants),
        given_top1=given)


