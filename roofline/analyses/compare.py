"""Comparing models across devices: which model to ship on each device, and why it is fast or slow.

Owns the default model set, resolving ``--models`` / ``--hw`` lists, running every model on
every device (each variant traced once), the tidy result table, the Pareto frontier per
device, ranking changes between devices, and the data behind the report's per-kernel roofline,
per-stage breakdown and ridge-point sweep. Pure logic: imports no plotly (``roofline.report.page``
draws) and imports torch only through tracing.

Model list grammar (comma-separated, in order, duplicates dropped):
    ``all``             the default set: every zoo model marked ``compare_default`` in
                        zoo.toml (the MobileNets) at every published width and resolution
                        that has a published ImageNet top-1
    ``NAME``            a zoo model at width 1.0 and its default resolution
    ``NAME@WIDTH:RES``  a zoo model at that width and resolution (either part optional)
    ``NAME@*``          a zoo model at each of its published variants with a top-1
    ``file.py:fn``      a user model (``pkg.mod:fn`` too; ``@WIDTH`` and ``:RES`` apply)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.hardware import HardwareProfile, load_hardware
from ..errors import UnknownNameError, UsageError
from ..units import bytes_per_element, check_precision
from .pareto import pareto_mask

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..core.engine import Prediction
    from ..core.graph import LayerGraph
    from ..sources.variant import Variant

__all__ = [
    "Comparison", "Roofs", "compare", "short_labels", "default_variants", "resolve_models",
    "resolve_hardware", "report_name",
    "stage_of", "kernel_frame", "stage_breakdown", "roofs", "ridge_data", "RidgeMarker",
    "ridge_movers",
    "USER_FAMILY", "ROW_FIELDS", "RIDGE_PRECISION", "PICK_TARGETS", "pick_targets",
]

#: The family shown for models outside the zoo.
USER_FAMILY = "user model"

#: Fields of every result row (``--json`` / ``--csv``), in order. ``bound`` is the bound the
#: most milliseconds are spent in; ``<bound>_bound_ms`` the milliseconds of kernels with that
#: bound (the per-inference overhead counts as overhead); ``rank`` is the latency rank on the
#: device (1 = fastest; None when unsupported).
ROW_FIELDS: tuple[str, ...] = (
    "model", "label", "short_label", "family", "width", "resolution", "hardware", "precision",
    "latency_ms", "macs", "params", "top1", "pareto", "supported", "unsupported_kinds", "bound",
    "compute_bound_ms", "memory_bound_ms", "overhead_bound_ms", "rank", "kernels")

#: The ridge-point sweep prices bytes at int8, the precision the MobileNetV4 paper fitted its
#: ridge points to (Qin et al. 2024, Table 16).
RIDGE_PRECISION = "int8"


# -- the model set ---------------------------------------------------------------------------------

def default_variants() -> list[Variant]:
    """Every zoo model whose catalogue entry has ``compare_default`` (the MobileNets), at every
    published (width, resolution) with a published top-1, in zoo order then as listed in
    ``published_models.csv``."""
    from ..sources.variant import Variant
    from ..zoo import get_model_info, list_models

    out: list[Variant] = []
    for name in list_models():
        info = get_model_info(name)
        if not info.compare_default:
            continue
        for fig in info.published:
            if fig.top1 is not None:
                out.append(Variant(name, fig.width, fig.resolution))
    return out


def _published_variants(name: str) -> list[Variant]:
    from ..sources.variant import Variant
    from ..zoo import get_model_info, list_models

    if name not in list_models():
        raise UnknownNameError("model", name, list_models())
    figs = [f for f in get_model_info(name).published if f.top1 is not None]
    if not figs:
        raise UsageError(f"{name!r} has no published variant with a top-1; name a width and "
                         f"resolution instead (NAME@WIDTH:RES)")
    return [Variant(name, f.width, f.resolution) for f in figs]


def resolve_models(specs: str | Iterable[str] | None) -> list[Variant]:
    """The variants named by ``specs`` (see the module docstring); None means ``all``.

    Raises UsageError / UnknownNameError / ModelLoadError for a bad name, width or resolution.
    """
    from ..sources.variant import parse_variant

    if specs is None:
        items = ["all"]
    elif isinstance(specs, str):
        items = [s.strip() for s in specs.split(",")]
    else:
        items = [str(s).strip() for s in specs]
    items = [s for s in items if s]
    if not items:
        raise UsageError("empty model list; give 'all' or one or more model names separated "
                         "by commas")
    out: list[Variant] = []
    seen: set[str] = set()
    for item in items:
        if item == "all":
            found = default_variants()
        elif item.endswith("@*"):
            found = _published_variants(item[:-2])
        else:
            found = [parse_variant(item)]
        for v in found:
            if v.label not in seen:
                seen.add(v.label)
                out.append(v)
    return out


def resolve_hardware(names: Sequence[HardwareProfile | str], precision: str | None = None
                     ) -> list[HardwareProfile]:
    """Load each named profile (name, alias, .toml path or a profile), in order, once each.

    An empty list is a UsageError; ``precision`` (if given) must be one every profile has.
    Two different profiles with one name (two files) are a UsageError: rows are keyed by name.
    """
    if not names:
        raise UsageError("empty hardware list; give one or more profile names separated by "
                         "commas (see 'roofline list hardware')")
    out: list[HardwareProfile] = []
    for name in names:
        hw = load_hardware(name)
        same = [h for h in out if h.name == hw.name]
        if same and same[0] != hw:
            raise UsageError(f"two different profiles are named {hw.name!r} ({same[0].path} "
                             f"and {hw.path}); rename one")
        if not same:
            out.append(hw)
    if precision is not None:
        check_precision(precision)
        for hw in out:
            hw.peak(precision)  # UnknownNameError naming the precisions the device has
    return out


# -- the comparison --------------------------------------------------------------------------------

def _family(variant: Variant) -> str:
    if not variant.is_zoo:
        return USER_FAMILY
    from ..zoo import get_model_info

    return get_model_info(variant.name).family


def short_labels(variants: Sequence[Variant]) -> list[str]:
    """Labels fit for a chart: a user model by its file name and callable
    (``nets/tiny.py:build`` → ``tiny.py:build:224``), a zoo model by its label. Where two
    short labels would collide, both keep their full labels."""
    short = []
    for v in variants:
        if v.is_zoo:
            short.append(v.label)
            continue
        target, _, attr = v.name.rpartition(":")
        name = f"{Path(target).name}:{attr}" if target.endswith(".py") else v.name
        width = "" if v.width is None else f"@{v.width:g}"
        short.append(f"{name}{width}:{v.effective_resolution}")
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
            top1 = [v.top1() for v in self.variants]
            frontier = pareto_mask(latency, top1)
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
                    "macs": int(graph.macs),
                    "params": int(graph.params),
                    "top1": top1[m],
                    "pareto": bool(frontier[m]),
                    "supported": bool(pred.supported),
                    "unsupported_kinds": ",".join(pred.unsupported_kinds),
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
        """The model the per-kernel charts show by default: the fastest Pareto-optimal model
        on the first device; else the fastest supported model on any device; else None."""
        for hw in self.hardware_names:
            front = self.frontier(hw)
            if len(front):
                return str(front.iloc[0]["label"])
        for hw in self.hardware_names:
            t = self.on(hw)
            t = t[t["supported"]]
            if len(t):
                return str(t.iloc[0]["label"])
        return None

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


def compare(variants: Sequence[Variant], hardware: Sequence[HardwareProfile | str],
            precision: str | None = None) -> Comparison:
    """Trace each variant once and predict it on every device (``precision`` overrides each
    profile's default precision)."""
    from ..core.engine import predict_many

    if not variants:
        raise UsageError("no models to compare")
    hws = resolve_hardware(hardware, precision)
    graphs = tuple(v.trace("fp32") for v in variants)
    predictions = tuple(tuple(row) for row in predict_many(graphs, hws, precision))
    return Comparison(
        variants=tuple(variants), graphs=graphs, hardware=tuple(hws),
        precisions=tuple(precision or hw.default_precision for hw in hws),
        predictions=predictions, families=tuple(_family(v) for v in variants))


# -- one model's kernels ---------------------------------------------------------------------------

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


# -- roofs -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Roofs:
    """The roofs of a device at one precision, for a roofline chart.

    ``compute``: (label, MACs/s) flat roofs — the peak, then peak × each distinct efficiency
    below 1 the profile gives an op kind. ``memory``: (label, bytes/s) slopes — DRAM, then
    every on-chip level with a published bandwidth. A kernel at intensity I (MACs/byte) can
    attain at most min(compute roof, bandwidth × I) MACs/s.
    """

    hardware: str
    precision: str
    peak_macs_per_s: float
    compute: tuple[tuple[str, float], ...]
    memory: tuple[tuple[str, float], ...]

    @property
    def ridge_point(self) -> float:
        """Peak over DRAM bandwidth (MACs/byte)."""
        return self.peak_macs_per_s / self.memory[0][1]


def roofs(hw: HardwareProfile, precision: str | None = None) -> Roofs:
    """The roofs of ``hw`` at ``precision`` (default: its own), from the profile's numbers."""
    precision = precision or hw.default_precision
    peak = hw.peak(precision)
    compute: list[tuple[str, float]] = [(f"peak {precision}", peak)]
    by_eff: dict[float, list[str]] = {}
    for kind, eff in hw.efficiency.items():
        if eff < 1:
            by_eff.setdefault(eff, []).append(str(kind))
    for eff in sorted(by_eff, reverse=True):
        kinds = ", ".join(k.replace("_", " ") for k in sorted(by_eff[eff]))
        compute.append((f"{kinds} ({100 * eff:.0f}% of peak)", peak * eff))
    memory: list[tuple[str, float]] = [("DRAM", hw.dram.bandwidth_bytes_per_s)]
    memory += [(lv.name, lv.bandwidth_bytes_per_s) for lv in hw.memory
               if lv.bandwidth_bytes_per_s]
    return Roofs(hw.name, precision, peak, tuple(compute), tuple(memory))


# -- the ridge-point sweep -------------------------------------------------------------------------

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
    points), then each compared profile's own ridge point (peak / DRAM bandwidth at its
    precision). A profile priced at fp16 or fp32 moves 2 or 4 bytes per element where the sweep
    counts 1, so its marker is its ridge point × bytes per element: the int8-byte ridge point
    that gives the same Σ max(MACs, RP × bytes).
    """
    from .ridge import PAPER_RIDGE_POINTS, default_ridge_points, ridge_sweep

    graphs = [g.at_precision(RIDGE_PRECISION) for g in comparison.graphs]
    markers = [RidgeMarker(f"{name} (paper)", value,
                           "MobileNetV4 paper (Qin et al. 2024), Table 16: fitted to measured "
                           "int8 latency")
               for name, value in PAPER_RIDGE_POINTS.items()]
    for hw, precision in zip(comparison.hardware, comparison.precisions, strict=True):
        scale = bytes_per_element(precision) / bytes_per_element(RIDGE_PRECISION)
        rp = hw.ridge_point(precision) * scale
        note = (f"{hw.name}: peak {precision} / DRAM bandwidth"
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


def report_name(hardware_args: Sequence[str]) -> str:
    """``compare-<hw1>-<hw2>.html`` from the names as given (a .toml path by its stem)."""
    parts = []
    for name in hardware_args:
        stem = Path(name).stem if name.endswith(".toml") or "/" in name else name
        safe = "".join(ch if ch.isalnum() or ch in "._+-" else "_" for ch in stem)
        parts.append(safe or "hw")
    return "compare-" + "-".join(parts) + ".html"
