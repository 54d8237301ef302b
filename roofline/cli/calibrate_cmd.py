"""``roofline calibrate``: fit a hardware profile to measured latencies.

``--measurements FILE --hw BASE --out NEW`` fits BASE's free parameters to whole-model
latencies measured on the device; ``--local`` (see ``roofline.fitting.local_torch``) measures this
machine first.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import shlex

from . import _calibrate_local
from ._common import console, fmt_ms, make_table, print_json, split_list


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", help="fit a hardware profile to measured latencies",
        description="Fit the free parameters of a hardware profile (effective bandwidths, op "
                    "efficiencies, overheads) to measured whole-model latencies by bounded "
                    "least squares on relative error, report the fit with leave-one-out "
                    "errors, and write the fitted profile. The fit uses fused kernels.")
    p.add_argument("--measurements", metavar="FILE.csv[,FILE.csv]",
                   help="CSV with columns model, width, latency_ms (optional: resolution, "
                        "precision, device, runtime, threads, batch, source); several files "
                        "separated by commas")
    p.add_argument("--hw", metavar="BASE", help="profile to start from (name or path); its "
                                                "[fit] free list names what is fitted")
    p.add_argument("--out", metavar="NEW_PROFILE", help="where to write the fitted profile "
                                                        "(.toml)")
    p.add_argument("--device", metavar="NAME",
                   help="use the rows of this device (default: BASE's name) when the file "
                        "has a device column")
    p.add_argument("--select", metavar="KEY=VALUE[,...]", default=None,
                   help="use the rows whose columns have these values (device, runtime, "
                        "threads, precision, model), e.g. device=pixel3,runtime=tflite-gpu; "
                        "default: BASE's [fit] select, else its device rows")
    p.add_argument("--free", metavar="P1,P2", type=lambda s: split_list(s, "parameter"),
                   help="parameters to fit instead of BASE's [fit] free list")
    p.add_argument("--name", help="name of the written profile (default: BASE's name)")
    p.add_argument("--no-loo", dest="loo", action="store_false",
                   help="skip the leave-one-out refits")
    p.add_argument("--json", action="store_true", help="print the fit as JSON")
    _calibrate_local.add_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.local:
        return _calibrate_local.run(args)
    from ..errors import UsageError

    missing = [flag for flag, value in (("--measurements", args.measurements),
                                        ("--hw", args.hw), ("--out", args.out)) if not value]
    if missing:
        raise UsageError(f"missing {', '.join(missing)} (calibrate needs --measurements FILE "
                         f"--hw BASE --out NEW_PROFILE, or --local --out NEW_PROFILE)")
    return _run_measurements(args)


def _run_measurements(args: argparse.Namespace) -> int:
    from ..core.hardware import load_hardware, profile_to_toml
    from ..fitting.calibrate import fit_profile
    from ..fitting.measurements import format_select, load_measurements, parse_select
    from ..io import atomic_write_text, check_writable
    from ..zoo import list_models

    check_writable(args.out)
    base = load_hardware(args.hw)
    stated = base.fit.select if base.fit else ""
    where = parse_select(args.select if args.select is not None else stated) or [{}]
    if args.device:
        where = [{**c, "device": args.device} for c in where]
    elif not stated and args.select is None:
        where = [{**c, "device": base.name} for c in where]
    zoo = set(list_models())
    measurements = []
    for path in split_list(args.measurements, "measurement file"):
        measurements += load_measurements(path, where=where,
                                          known_models=lambda m: m in zoo or ":" in m)
    free = args.free or (list(base.fit.free) if base.fit else [])
    command = "python -m roofline " + shlex.join(args.argv)
    shown = format_select(where)
    source = (f"fitted to {len(measurements)} measured latencies ({shown}) in "
              f"{args.measurements} (the command is in [fit])")
    result = fit_profile(base, measurements, free, leave_one_out=args.loo, source=source)
    stated_fit = base.fit.model_dump() if base.fit else {}
    fit_info = {
        "measurements": str(args.measurements),
        "select": shown,
        "command": command,
        "convention": "fused kernels",
        "date": _dt.date.today().isoformat(),
        "free": list(result.free),
        "models": len(measurements),
        "median_abs_error_pct": round(result.median_abs_error_pct, 2),
        "spearman": _round(result.spearman),
        "model_sigma": stated_fit.get("model_sigma"),
        "priors": stated_fit.get("priors", {}),
        "covariance": [[float(f"{v:.6g}") for v in row] for row in result.covariance],
        "structural_sigma": stated_fit.get("structural_sigma"),
        "flags": list(result.flags),
    }
    if result.loo_predicted_ms:
        fit_info["loo_median_abs_error_pct"] = round(result.loo_median_abs_error_pct, 2)
        fit_info["loo_spearman"] = _round(result.loo_spearman)
    changes: dict[str, object] = {"fit": fit_info}
    if args.name:
        changes["name"] = args.name
    fitted = result.profile.with_changes(**changes)
    header = (f"Written by `roofline calibrate` from {args.hw} and {args.measurements}.\n"
              f"Do not edit the fitted numbers by hand: change the prior and run the command in "
              f"[fit] again.")
    atomic_write_text(args.out, profile_to_toml(fitted, header))
    if args.json:
        print_json({**result.summary(), "hardware": fitted.name, "out": str(args.out),
                    "rows": result.rows()})
        return 0
    _print_fit(result, fitted.name, args.out)
    return 0


def _round(value: float) -> float | None:
    import math

    return None if value is None or math.isnan(value) else round(value, 4)


def _print_fit(result, name: str, out: str) -> None:
    con = console()
    has_loo = bool(result.loo_predicted_ms)
    columns = [("model", "left"), ("precision", "left"), ("measured ms", "right"),
               ("predicted ms", "right"), ("error %", "right")]
    if has_loo:
        columns += [("LOO ms", "right"), ("LOO error %", "right")]
    rows = []
    for r in result.rows():
        row = [f"{r['model']}@{r['width']:g}:{r['resolution']}", r["precision"],
               fmt_ms(r["measured_ms"]), fmt_ms(r["predicted_ms"]), f"{r['error_pct']:+.1f}"]
        if has_loo:
            row += [fmt_ms(r["loo_predicted_ms"]), f"{r['loo_error_pct']:+.1f}"]
        rows.append(row)
    con.print(make_table(columns, rows, title=f"fit of {name} ({len(rows)} measurements)"))
    params = make_table([("parameter", "left"), ("start", "right"), ("fitted", "right")],
                        [(p, f"{s:.4g}", f"{v:.4g}") for p, s, v in
                         zip(result.free, result.start_values, result.values, strict=True)])
    con.print(params)
    line = (f"median |error| {result.median_abs_error_pct:.1f} %  Spearman "
            f"{result.spearman:.3f}")
    if has_loo:
        line += (f"   leave-one-out: median |error| {result.loo_median_abs_error_pct:.1f} %  "
                 f"Spearman {result.loo_spearman:.3f}")
    con.print(line)
    for flag in result.flags:
        con.print(f"note: {flag}")
    con.print(f"wrote {out}")
