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
from ._common import Col, console, fmt_ms, make_table, plural, print_json, split_list


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
    p.add_argument("--name", help="name of the written profile (default: the --out file's name "
                                  "without .toml, which is how 'roofline list hardware' and "
                                  "--hw find it; a different name is an error)")
    p.add_argument("--skip-unknown", action="store_true",
                   help="leave out rows naming a model roofline does not have (published "
                        "tables list networks the zoo lacks) instead of stopping; they are "
                        "counted in the output")
    p.add_argument("--no-loo", dest="loo", action="store_false",
                   help="skip the leave-one-out refits")
    p.add_argument("--json", action="store_true", help="print the fit as JSON")
    _calibrate_local.add_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import UsageError

    if args.out:
        args.name = profile_name(args.out, args.name)
    if args.local:
        return _calibrate_local.run(args)
    if args.runtime != "torch":
        raise UsageError("--runtime chooses what --local measures; it needs --local")

    missing = [flag for flag, value in (("--measurements", args.measurements),
                                        ("--hw", args.hw), ("--out", args.out)) if not value]
    if missing:
        raise UsageError(f"missing {', '.join(missing)} (calibrate needs --measurements FILE "
                         f"--hw BASE --out NEW_PROFILE, or --local --out NEW_PROFILE)")
    return _run_measurements(args)


def profile_name(out: str, name: str | None) -> str:
    """The name of the profile written to ``out``: the file's name without ``.toml``.

    A profile is found by its file name (``--hw my-phone`` reads ``my-phone.toml``, and a
    profile folder whose file and ``name`` differ does not load), so the written profile never
    keeps its base's name: ``--hw cpu --out my-phone.toml`` writes a profile named
    ``my-phone``. ``name`` (``--name``), when given, must agree.
    """
    from pathlib import Path

    from ..core.hardware import _NAME
    from ..errors import UsageError

    stem = Path(out).name.removesuffix(".toml")
    if name is not None and name != stem:
        raise UsageError(f"--name {name!r} differs from the file name {Path(out).name!r}: a "
                         f"profile is found by its file name; write it to {name}.toml or drop "
                         f"--name")
    if not _NAME.fullmatch(stem):
        raise UsageError(f"--out {out!r}: {stem!r} cannot name a profile (letters, digits and "
                         f". _ + -, starting with a letter or digit, at most 64)")
    return stem


def _run_measurements(args: argparse.Namespace) -> int:
    from ..core.hardware import load_hardware, profile_to_toml
    from ..errors import UsageError
    from ..fitting.calibrate import default_free, fit_profile
    from ..fitting.measurements import format_select, load_measurements, parse_select
    from ..io import atomic_write_text, check_writable
    from ..zoo import list_models

    check_writable(args.out)
    base = load_hardware(args.hw)
    stated = base.fit.select if base.fit else ""
    where = parse_select(args.select if args.select is not None else stated) or [{}]
    # Without a selection, a file's rows of this device (a file without a device column is
    # taken to be all this device's).
    device = args.device or (base.name if not stated and args.select is None else None)
    zoo = set(list_models())

    def known(model: str) -> bool:
        return model in zoo or ":" in model

    measurements = []
    skipped: dict[str, int] = {}
    for path in split_list(args.measurements, "measurement file"):
        rows = load_measurements(path, where=where, device=device,
                                 known_models=None if args.skip_unknown else known)
        for m in rows:
            if known(m.model):
                measurements.append(m)
            else:
                skipped[m.model] = skipped.get(m.model, 0) + 1
    if not measurements:
        raise UsageError(f"no measurements of models roofline has in {args.measurements} "
                         f"({format_select(where)})")
    free = args.free or default_free(base)
    command = "python -m roofline " + shlex.join(args.argv)
    shown = format_select([{**c, "device": device} for c in where] if device else where)
    source = (f"fitted to {len(measurements)} measured latencies ({shown}) in "
              f"{args.measurements} (the command is in [fit])")
    result = fit_profile(base, measurements, free, leave_one_out=args.loo, source=source)
    fit_info = result.fit_record(base, measurements=str(args.measurements), select=shown,
                                 command=command, convention="fused kernels",
                                 date=_dt.date.today().isoformat())
    changes: dict[str, object] = {"fit": fit_info, "name": args.name}
    if args.name != base.name:  # a new device: say what it was fitted from
        changes["description"] = (f"{args.name}: {base.name} fitted to {args.measurements} "
                                  f"({base.description})")
    fitted = result.profile.with_changes(**changes)
    header = (f"Written by `roofline calibrate` from {args.hw} and {args.measurements}.\n"
              f"Do not edit the fitted numbers by hand: change the prior and run the command in "
              f"[fit] again.")
    atomic_write_text(args.out, profile_to_toml(fitted, header))
    if args.json:
        print_json({**result.summary(), "hardware": fitted.name, "out": str(args.out),
                    "rows": result.rows(), "skipped": skipped})
        return 0
    _print_fit(result, fitted.name, args.out)
    if skipped:
        console().print("left out (not roofline models): " + ", ".join(
            f"{name} x{n}" for name, n in sorted(skipped.items())))
    return 0


def _print_fit(result, name: str, out: str) -> None:
    con = console()
    has_loo = bool(result.loo_predicted_ms)
    columns = [Col("model", "left", wrap=True), Col("precision", "left", 2, "prec"),
               Col("measured ms", short="meas ms"), Col("predicted ms", short="pred ms"),
               Col("error %", short="err %")]
    if has_loo:
        columns += [Col("LOO ms", priority=1), Col("LOO error %", short="LOO err %")]
    rows = []
    for r in result.rows():
        row = [f"{r['model']}@{r['width']:g}:{r['resolution']}", r["precision"],
               fmt_ms(r["measured_ms"]), fmt_ms(r["predicted_ms"]), f"{r['error_pct']:+.1f}"]
        if has_loo:
            row += [fmt_ms(r["loo_predicted_ms"]), f"{r['loo_error_pct']:+.1f}"]
        rows.append(row)
    con.print(make_table(columns, rows,
                         title=f"fit of {name} ({plural(len(rows), 'measurement')})"))
    params = make_table([Col("parameter", "left", wrap=True), Col("start"), Col("fitted")],
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
