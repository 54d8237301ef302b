"""How well fitted device profiles predict models they were not fitted to.

Every prior in hardware_profiles/priors/ names its measurements and rows in its [fit] table
(the MobileNetV4 paper's Table 6, TF-Lite's, Coral's and the model READMEs' published
latencies in hardware_profiles/measurements/). For each such set-up this fits the prior's free
parameters as `roofline calibrate` does and predicts held-out measurements under five splits:

* ``loo``         each measurement predicted by a fit without it (interpolation);
* ``family``      each model family predicted by a fit to the other families;
* ``largest``     the largest quarter of the models (by MACs) predicted by a fit to the rest;
* ``resolution``  every other resolution predicted by a fit at the most common one;
* ``classic``     every non-MobileNet-V1-V3 model predicted by a fit to V1-V3 alone (what the
                  seven devices of the MobileNetV4 paper's Table 6 ask of a profile).

It reports per set-up and split the held-out median absolute error, Spearman rank correlation
and how often the measurement fell inside its predicted 80 % range (and how wide the range
was), then pooled per split and per device kind. The structural error the ranges assume per
device kind (roofline.core.engine.STRUCTURAL_SIGMA) is chosen from the pooled extrapolating
splits: the value that makes their coverage 80 %.

    python benchmarks/bench_fit.py [--devices a,b] [--splits loo,family,...] [--workers 2]

``--joint xnnpack`` (or ``--joint a,b``) instead fits those set-ups together as
``roofline calibrate --hw a,b --share ...`` does, once per ``--share`` variant (``;`` between
variants, e.g. ``efficiency.depthwise_conv;efficiency.depthwise_conv/efficiency.conv+...``),
and reports the same splits beside the separate fits. A split holds the same rows out as the
separate fits do, on every device at once (``--holdout all``: the joint fit sees no more of the
held-out models than the separate ones), or on one device at a time while the others keep all
their rows (``--holdout one``: what a sibling device's measurements add).

    python benchmarks/bench_fit.py --joint xnnpack --share "efficiency.depthwise_conv"
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from roofline.core.engine import price  # noqa: E402
from roofline.core.hardware import load_hardware  # noqa: E402
from roofline.fitting.calibrate import fit_profile, spearman  # noqa: E402
from roofline.fitting.measurements import (  # noqa: E402
    Measurement,
    load_measurements,
    parse_select,
    trace_measurements,
)

PRIORS = ROOT / "hardware_profiles" / "priors"
MODELS = ROOT / "benchmarks" / "models.py"
SPLITS = ("loo", "family", "largest", "resolution", "classic")
EXTRAPOLATING = ("family", "largest", "resolution", "classic")

#: Published model names that are not zoo models: the benchmark networks written here, at the
#: input size they were published at. Names without an entry (NASNet, DenseNet, ResNet-v2-101,
#: MobilenetEdgeTPU-V2-Tiny) are networks roofline does not have; their rows are skipped.
ALIASES: dict[str, tuple[str, int, str]] = {
    "squeezenet": (f"{MODELS}:squeezenet", 224, "SqueezeNet"),
    "inception_v1": (f"{MODELS}:inception_v1", 224, "Inception"),
    "inception_v2": (f"{MODELS}:inception_v2", 224, "Inception"),
    "inception_v3": (f"{MODELS}:inception_v3", 299, "Inception"),
    "inception_v4": (f"{MODELS}:inception_v4", 299, "Inception"),
    "inception_resnet_v2": (f"{MODELS}:inception_resnet_v2", 299, "Inception"),
}
CLASSIC = {"MobileNetV1", "MobileNetV2", "MobileNetV3"}
#: Set-ups that share a runtime (``--joint NAME``): the TF-Lite XNNPACK CPUs of the MobileNetV4
#: paper's Table 6 (their priors' descriptions say XNNPACK; the Pixel 1-4 CPU set-ups ran the
#: TF-Lite of 2018-19, with its own kernels).
JOINT_GROUPS = {"xnnpack": ("pixel6-cpu", "s23-cpu")}
JOINT_SHARES = "efficiency.depthwise_conv;efficiency.depthwise_conv/" \
    "efficiency.conv+pointwise_conv+linear+matmul"


@dataclass(frozen=True)
class Held:
    """One held-out prediction."""

    setup: str
    kind: str
    split: str
    label: str
    family: str
    measured_ms: float
    predicted_ms: float
    low_ms: float
    high_ms: float
    param_sigma: float  # the range's parameter part alone (ln units)

    @property
    def error(self) -> float:
        return self.predicted_ms / self.measured_ms - 1

    @property
    def inside(self) -> bool:
        return self.low_ms <= self.measured_ms <= self.high_ms


def _family(m: Measurement) -> str:
    from roofline.zoo import get_model_info, list_models

    if m.model in list_models():
        return get_model_info(m.model).family
    for spec, _, family in ALIASES.values():
        if m.model == spec:
            return family
    return m.model


def setup_rows(prior_path: Path) -> tuple[list[Measurement], int]:
    """The rows a prior's [fit] names (aliased, resolution filled), and how many were skipped
    (networks roofline does not have)."""
    from roofline.zoo import list_models

    prior = load_hardware(prior_path)
    where = parse_select(prior.fit.select) if prior.fit and prior.fit.select else [
        {"device": prior.name}]
    rows: list[Measurement] = []
    skipped = 0
    zoo = set(list_models())
    for file in prior.fit.measurements.split(","):
        for m in load_measurements(ROOT / file, where=where):
            if m.model in ALIASES:
                spec, resolution, _ = ALIASES[m.model]
                m = Measurement(**{**m.__dict__, "model": spec,
                                   "resolution": m.resolution or resolution})
            elif m.model not in zoo:
                skipped += 1
                continue
            rows.append(m)
    return rows, skipped


def _predict(profile, rows, graphs, split, setup) -> list[Held]:
    pricing = price(graphs, [profile], [m.precision for m in rows])
    out = []
    for g, m in enumerate(rows):
        ms = float(pricing.latency_s[0, g] * 1e3)
        low, high = pricing.latency_low_s[0, g] * 1e3, pricing.latency_high_s[0, g] * 1e3
        out.append(Held(setup, profile.kind, split, m.label, _family(m), m.latency_ms, ms,
                        float(low), float(high), 0.0))
    return out


def _fit(prior, rows, graphs):
    return fit_profile(prior, rows, graphs=graphs, leave_one_out=False).profile


def folds(rows, graphs, splits: tuple[str, ...], *, every: bool = False
          ) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(split, key, train, test) of every held-out prediction a set-up's splits make; the key
    names the fold (a family, a row) so that a joint fit can hold the same fold out of every
    device at once. A fold predicts only from two or more rows; ``every`` keeps the others
    too (a joint fit still holds their rows out)."""
    out = []
    idx = np.arange(len(rows))
    if "loo" in splits and len(rows) >= 3:
        for i in idx:
            out.append(("loo", f"row {i}", idx[idx != i], idx[idx == i]))
    families = [_family(m) for m in rows]
    if "family" in splits and len(set(families)) > 1:
        for family in sorted(set(families)):
            test = np.array([i for i in idx if families[i] == family])
            out.append(("family", family, np.setdiff1d(idx, test), test))
    if "largest" in splits and len(rows) >= 4:
        macs = np.array([g.macs for g in graphs])
        cut = np.sort(np.unique(macs))[-max(1, round(len(np.unique(macs)) / 4))]
        out.append(("largest", "", idx[macs < cut], idx[macs >= cut]))
    resolutions = [m.variant().effective_resolution for m in rows]
    if "resolution" in splits and len(set(resolutions)) > 1:
        common = max(set(resolutions), key=resolutions.count)
        test = idx[np.array(resolutions) != common]
        out.append(("resolution", "", idx[np.array(resolutions) == common], test))
    if "classic" in splits:
        classic = np.array([f in CLASSIC for f in families])
        if classic.any() and (~classic).any():
            out.append(("classic", "", idx[classic], idx[~classic]))
    return [f for f in out if every or (len(f[2]) >= 2 and len(f[3]))]


def run_setup(prior_path: Path, splits: tuple[str, ...]) -> tuple[str, list[Held], dict]:
    prior = load_hardware(prior_path)
    rows, skipped = setup_rows(prior_path)
    graphs = trace_measurements(rows)
    name = prior.name
    held: list[Held] = []
    started = time.perf_counter()
    info = {"rows": len(rows), "skipped": skipped, "kind": prior.kind,
            "families": sorted({_family(m) for m in rows})}
    for split, _, train, test in folds(rows, graphs, splits):
        profile = _fit(prior, [rows[i] for i in train], [graphs[i] for i in train])
        held.extend(_predict(profile, [rows[i] for i in test], [graphs[i] for i in test],
                             split, name))
    info["seconds"] = time.perf_counter() - started
    return name, held, info


def run_joint(names: tuple[str, ...], shares: tuple[str, ...], splits: tuple[str, ...],
              holdout: str) -> list[Held]:
    """The held-out predictions of the set-ups ``names`` fitted together sharing ``shares``,
    under the same folds as their separate fits (see the module's doc for ``holdout``)."""
    from roofline.fitting.joint import fit_joint

    priors = [load_hardware(PRIORS / f"{n}.toml") for n in names]
    rows = [setup_rows(PRIORS / f"{n}.toml")[0] for n in names]
    graphs = [trace_measurements(r) for r in rows]
    per_device = [folds(r, g, splits, every=True) for r, g in zip(rows, graphs, strict=True)]
    everything = [np.arange(len(r)) for r in rows]
    # One joint fit per fold, {fold: {device: (train, test)}}; a leave-one-out fold is always
    # one device's row.
    plan: dict[tuple, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for d, device_folds in enumerate(per_device):
        for split, key, train, test in device_folds:
            fold = (split, key) if holdout == "all" and split != "loo" else (split, key, d)
            plan.setdefault(fold, {})[d] = (train, test)
    held: list[Held] = []
    for fold, parts in plan.items():
        # Predicted: the rows the separate fits predict (from two or more rows of their own).
        counted = [d for d, (train, test) in parts.items() if len(train) >= 2 and len(test)]
        if not counted:
            continue
        train = {d: parts[d][0] if d in parts else everything[d] for d in range(len(names))}
        members = [d for d in range(len(names)) if len(train[d])]
        fitted = fit_joint([priors[d] for d in members],
                           [[rows[d][i] for i in train[d]] for d in members],
                           shares=shares if len(members) > 1 else (), leave_one_out=False,
                           graphs=[[graphs[d][i] for i in train[d]] for d in members])
        for d in counted:
            test = parts[d][1]
            held.extend(_predict(fitted.fits[members.index(d)].profile,
                                 [rows[d][i] for i in test], [graphs[d][i] for i in test],
                                 fold[0], names[d]))
    return held


def _cell(part: list[Held]) -> str:
    if not part:
        return "-"
    err, rho, cov, width, n = _summary(part)
    rho_text = "-" if math.isnan(rho) else f"{rho:.2f}"
    return f"{err:.1f} % / {rho_text} / {cov:.0f} % / {width:.0f} % (n={n})"


def joint_main(args: argparse.Namespace, splits: tuple[str, ...]) -> int:
    """``--joint``: the set-ups fitted separately and together, split by split."""
    names = JOINT_GROUPS.get(args.joint) or tuple(args.joint.split(","))
    variants = [tuple(v.split(",")) if v else () for v in args.share.split(";")]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        separate = list(pool.map(run_setup, [PRIORS / f"{n}.toml" for n in names],
                                 [splits] * len(names)))
        joint = list(pool.map(run_joint, [names] * len(variants), variants,
                              [splits] * len(variants), [args.holdout] * len(variants)))
    fits = [("separate", [h for _, hs, _ in separate for h in hs])]
    fits += [(f"joint, sharing {', '.join(v) or 'nothing'}", hs)
             for v, hs in zip(variants, joint, strict=True)]
    print(f"set-ups {', '.join(names)}; joint folds held out on "
          f"{'every device at once' if args.holdout == 'all' else 'one device at a time'}")
    print("\n| fit | set-up | " + " | ".join(
        f"{s}: med err / ρ / in range / width" for s in splits) + " |")
    print("|---|---|" + "---|" * len(splits))
    for label, held in fits:
        for name in names:
            cells = [_cell([h for h in held if h.setup == name and h.split == s])
                     for s in splits]
            print(f"| {label} | {name} | " + " | ".join(cells) + " |")
    print("\npooled over the set-ups (median |error| / in range / median width, n):")
    for label, held in fits:
        cells = []
        for group in [(s,) for s in splits] + [EXTRAPOLATING]:
            part = [h for h in held if h.split in group]
            if part:
                err, _, cov, width, n = _summary(part)
                shown = "extrapolating" if len(group) > 1 else group[0]
                cells.append(f"{shown} {err:.1f} % / {cov:.0f} % / {width:.0f} % (n={n})")
        print(f"  {label}: " + ";  ".join(cells))
    if args.rows:
        for label, held in fits:
            for h in held:
                print(f"{label:<40} {h.setup:<12} {h.split:<8} {h.label:<40} measured "
                      f"{h.measured_ms:8.2f} predicted {h.predicted_ms:8.2f} "
                      f"({100 * h.error:+6.1f} %)")
    print(f"\n{len(fits)} fits of {len(names)} set-ups in "
          f"{time.perf_counter() - started:.0f} s")
    return 0


def _summary(held: list[Held]) -> tuple[float, float, float, float, int]:
    errors = np.array([abs(h.error) for h in held])
    measured = [h.measured_ms for h in held]
    predicted = [h.predicted_ms for h in held]
    rho = spearman(measured, predicted) if len(held) >= 3 else math.nan
    coverage = float(np.mean([h.inside for h in held]))
    width = float(np.median([(h.high_ms - h.low_ms) / h.predicted_ms for h in held]))
    return float(np.median(errors)) * 100, rho, coverage * 100, width * 100, len(held)


def _needed_sigma(held: list[Held], target: float = 0.80) -> float:
    """The structural sigma that would make ``held``'s ranges cover ``target`` of them, given
    each range's parameter part (recovered from its width and the sigma it was made with)."""
    from roofline.core.engine import _RANGE_Z, STRUCTURAL_SIGMA

    errors = np.array([abs(math.log(h.measured_ms / h.predicted_ms)) for h in held])
    total = np.array([math.log(h.high_ms / h.predicted_ms) / _RANGE_Z for h in held])
    structural = np.array([STRUCTURAL_SIGMA[h.kind] for h in held])
    param = np.sqrt(np.maximum(total ** 2 - structural ** 2, 0.0))
    lo, hi = 0.0, 3.0
    for _ in range(60):
        mid = (lo + hi) / 2
        inside = np.mean(errors <= _RANGE_Z * np.sqrt(param ** 2 + mid ** 2))
        lo, hi = (mid, hi) if inside < target else (lo, mid)
    return hi


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default=None, help="comma-separated prior names")
    parser.add_argument("--splits", default=",".join(SPLITS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows", action="store_true", help="print every held-out prediction")
    parser.add_argument("--joint", default=None,
                        help=f"fit these set-ups together (comma-separated prior names, or "
                             f"one of {', '.join(JOINT_GROUPS)}) beside their separate fits")
    parser.add_argument("--share", default=JOINT_SHARES,
                        help="with --joint: the --share of each joint variant, ';' between "
                             "variants, ',' between the fields of one (default: %(default)s)")
    parser.add_argument("--holdout", choices=("all", "one"), default="all",
                        help="with --joint: hold each fold out of every device at once "
                             "(default), or of one device while the others keep theirs")
    args = parser.parse_args()
    splits = tuple(s for s in args.splits.split(",") if s)
    if args.joint:
        return joint_main(args, splits)
    paths = sorted(PRIORS.glob("*.toml"))
    if args.devices:
        wanted = set(args.devices.split(","))
        paths = [p for p in paths if p.stem in wanted]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(run_setup, paths, [splits] * len(paths)))
    held = [h for _, hs, _ in results for h in hs]

    print("| set-up | kind | rows (skipped) | families | " + " | ".join(
        f"{s}: med err / ρ / in range / width" for s in splits) + " |")
    print("|---|---|---|---|" + "---|" * len(splits))
    for name, hs, info in results:
        cells = []
        for split in splits:
            part = [h for h in hs if h.split == split]
            if not part:
                cells.append("-")
                continue
            err, rho, cov, width, n = _summary(part)
            rho_text = "-" if math.isnan(rho) else f"{rho:.2f}"
            cells.append(f"{err:.0f} % / {rho_text} / {cov:.0f} % / {width:.0f} % (n={n})")
        print(f"| {name} | {info['kind']} | {info['rows']} ({info['skipped']}) | "
              f"{len(info['families'])} | " + " | ".join(cells) + " |")
    print("\npooled over set-ups (median |error|, Spearman of the pooled predictions is not "
          "meaningful across devices, so the median of the set-ups' Spearman is given):")
    for split in splits:
        part = [h for h in held if h.split == split]
        if not part:
            continue
        err, _, cov, width, n = _summary(part)
        rhos = [_summary([h for h in hs if h.split == split])[1] for _, hs, _ in results
                if sum(h.split == split for h in hs) >= 3]
        rhos = [r for r in rhos if not math.isnan(r)]
        rho = float(np.median(rhos)) if rhos else math.nan
        print(f"  {split:<11} n={n:<4} median |err| {err:5.1f} %   median ρ {rho:5.2f}   "
              f"in range {cov:5.1f} %   median width {width:5.1f} %")
    print("\nper device kind, extrapolating splits pooled, and the structural sigma that would "
          "make their 80 % ranges cover 80 %:")
    for kind in sorted({h.kind for h in held}):
        part = [h for h in held if h.kind == kind and h.split in EXTRAPOLATING]
        if len(part) < 5:
            continue
        err, _, cov, width, n = _summary(part)
        print(f"  {kind:<8} n={n:<4} median |err| {err:5.1f} %   in range {cov:5.1f} %   "
              f"median width {width:5.1f} %   needed sigma {_needed_sigma(part):.3f}")
    if args.rows:
        for h in held:
            print(f"{h.setup:<16} {h.split:<10} {h.label:<60} measured {h.measured_ms:9.2f} "
                  f"predicted {h.predicted_ms:9.2f} ({100 * h.error:+6.1f} %) range "
                  f"{h.low_ms:.2f}-{h.high_ms:.2f}")
    print(f"\n{len(results)} set-ups in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
