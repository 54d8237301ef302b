"""``roofline calibrate``: fit a hardware profile to measured latencies.

``--measurements FILE --hw BASE --out NEW`` fits BASE's free parameters to whole-model
latencies measured on the device; ``--hw A,B --share FIELD --out A.toml,B.toml`` (or
``--out-dir DIR``) fits several devices in one problem, FIELD taking one value across them
(``roofline.fitting.joint``); ``--local`` (see ``roofline.fitting.local_torch``) measures this
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
                    "errors, and write the fitted profile. The fit uses fused kernels. "
                    "Several --hw are fitted together in one problem, the --share fields "
                    "taking one value across them.")
    p.add_argument("--measurements", metavar="FILE.csv[,FILE.csv]",
                   help="CSV with columns model, width, latency_ms (optional: resolution, "
                        "precision, device, runtime, threads, batch, source); several files "
                        "separated by commas")
    p.add_argument("--hw", metavar="BASE[,BASE]",
                   help="profile to start from (name or path); its [fit] free list names what "
                        "is fitted. Several: fit them together in one problem (see --share)")
    p.add_argument("--out", metavar="NEW_PROFILE[,NEW_PROFILE]",
                   help="where to write the fitted profile (.toml); one per --hw, in order")
    p.add_argument("--out-dir", metavar="DIR",
                   help="instead of --out: write each fitted profile to DIR/BASE_NAME.toml")
    p.add_argument("--share", metavar="FIELD[,FIELD]",
                   type=lambda s: split_list(s, "shared field"),
                   help="with several --hw: free parameters that take one value across the "
                        "devices (each must be free in every device); the rest stay each "
                        "device's own. An efficiency is shared as the same fraction of each "
                        "device's own peak; NUMERATOR/DENOMINATOR shares their ratio, each "
                        "device keeping its own denominator (e.g. "
                        "efficiency.depthwise_conv/efficiency.conv)")
    p.add_argument("--device", metavar="NAME",
                   help="use the rows of this device (default: BASE's name) when the file "
                        "has a device column")
    p.add_argument("--select", metavar="KEY=VALUE[,...]", default=None,
                   help="use the rows whose columns have these values (device, runtime, "
                        "threads, precision, model), e.g. device=pixel3,runtime=tflite-gpu; "
                        "default: BASE's [fit] select, else its device rows")
    p.add_argument("--free", metavar="P1,P2", type=lambda s: split_list(s, "parameter"),
                   help="parameters to fit instead of BASE's [fit] free list (of every BASE)")
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

    if args.local:
        if args.share or args.out_dir:
            raise UsageError("--share and --out-dir are for fits to --measurements; --local "
                             "measures this machine and writes --out")
        if args.out:
            args.name = profile_name(args.out, args.name)
        return _calibrate_local.run(args)
    if args.runtime != "torch":
        raise UsageError("--runtime chooses what --local measures; it needs --local")

    missing = [flag for flag, value in (("--measurements", args.measurements),
                                        ("--hw", args.hw),
                                        ("--out", args.out or args.out_dir)) if not value]
    if missing:
        raise UsageError(f"missing {', '.join(missing)} (calibrate needs --measurements FILE "
                         f"--hw BASE --out NEW_PROFILE, or --local --out NEW_PROFILE)")
    if args.out and args.out_dir:
        raise UsageError("give --out or --out-dir, not both")
    hws = _listed(args.hw, "--hw")
    if len(hws) > 1 or args.share:
        return _run_joint(args, hws)
    if args.out and len(_listed(args.out, "--out")) > 1:
        raise UsageError(f"--out names {len(_listed(args.out, '--out'))} files for one device "
                         f"(--hw {args.hw}); give one --out per --hw")
    return _run_measurements(args)


def _listed(text: str, flag: str) -> list[str]:
    """A comma-separated option's items; a repeated or empty one is an error."""
    from ..errors import UsageError

    items = [item.strip() for item in str(text).split(",")]
    if not all(items):
        raise UsageError(f"{flag} {text!r}: an empty name between commas")
    for item in items:
        if items.count(item) > 1:
            raise UsageError(f"{flag} names {item!r} twice")
    return items


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


def _device_rows(args: argparse.Namespace, base, *, joint: bool = False):
    """The measurements of ``base`` in the --measurements files, the rows left out by
    --skip-unknown (model -> count), and the selection as text. The rows are --select's, else
    BASE's [fit] select, else its device rows; in a joint fit a file may hold none of them (as
    long as one does)."""
    from ..errors import UsageError
    from ..fitting.measurements import format_select, load_measurements, parse_select
    from ..zoo import list_models

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
        rows = load_measurements(path, where=where, device=device, empty_ok=joint,
                                 known_models=None if args.skip_unknown else known)
        for m in rows:
            if known(m.model):
                measurements.append(m)
            else:
                skipped[m.model] = skipped.get(m.model, 0) + 1
    shown = format_select([{**c, "device": device} for c in where] if device else where)
    if not measurements:
        whose = f"{base.name}: " if joint else ""
        raise UsageError(f"{whose}no measurements of models roofline has in "
                         f"{args.measurements} ({shown if joint else format_select(where)})")
    return measurements, skipped, shown


def _run_measurements(args: argparse.Namespace) -> int:
    from ..core.hardware import load_hardware, profile_to_toml
    from ..fitting.calibrate import default_free, fit_profile
    from ..io import atomic_write_text, check_writable

    base = load_hardware(args.hw)
    if args.out_dir:
        from pathlib import Path

        args.out = str(Path(args.out_dir) / f"{base.name}.toml")
    args.name = profile_name(args.out, args.name)
    check_writable(args.out)
    measurements, skipped, shown = _device_rows(args, base)
    free = args.free or default_free(base)
    command = "python -m roofline " + shlex.join(args.argv)
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


def _run_joint(args: argparse.Namespace, hws: list[str]) -> int:
    """``--hw A,B [--share FIELD]``: one fit of every device, the shared fields taking one
    value across them; every profile is written only once the whole fit has succeeded."""
    from pathlib import Path

    from ..core.hardware import load_hardware, profile_to_toml
    from ..errors import UsageError
    from ..fitting.joint import fit_joint, parse_share
    from ..io import atomic_write_texts, check_writable

    if len(hws) < 2:
        raise UsageError(f"--share needs two or more devices to share between (--hw A,B); "
                         f"got --hw {args.hw}")
    if args.name is not None:
        raise UsageError("--name names one profile; a joint fit names each profile after its "
                         "--out file")
    for flag, value in (("--select", args.select), ("--device", args.device)):
        if value is not None:
            raise UsageError(f"{flag} chooses one device's rows; in a joint fit each device's "
                             f"rows are those its [fit] select names, else its own name's")
    shares = [parse_share(s) for s in args.share or ()]
    bases = [load_hardware(hw) for hw in hws]
    outs = (_listed(args.out, "--out") if args.out else
            [str(Path(args.out_dir) / f"{b.name}.toml") for b in bases])
    if len(outs) != len(bases):
        raise UsageError(f"--out names {len(outs)} file{'s' * (len(outs) != 1)} for "
                         f"{len(bases)} devices (--hw {args.hw}); give one per device, in "
                         f"the same order, or --out-dir DIR")
    names = [profile_name(out, None) for out in outs]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"two fitted profiles would be named {name!r} (a profile is "
                             f"named after its --out file); give them different file names")
    for out in outs:
        check_writable(out)
    rows, skipped, shown = zip(*(_device_rows(args, b, joint=True) for b in bases),
                               strict=True)
    command = "python -m roofline " + shlex.join(args.argv)
    sharing = ", sharing " + ", ".join(s.text for s in shares) if shares else ""
    sources = [f"fitted to {len(r)} measured latencies ({sel}) in {args.measurements} "
               f"jointly with {', '.join(n for n in names if n != name)}{sharing} (the "
               f"command is in [fit])" for r, sel, name in zip(rows, shown, names, strict=True)]
    result = fit_joint(bases, rows, [args.free] * len(bases), shares,
                       leave_one_out=args.loo, sources=sources)
    texts = []
    fitted = []
    for d, (base, hw, name) in enumerate(zip(bases, hws, names, strict=True)):
        fit_info = result.fit_record(d, base, names, measurements=str(args.measurements),
                                     select=shown[d], command=command,
                                     convention="fused kernels",
                                     date=_dt.date.today().isoformat())
        changes: dict[str, object] = {"fit": fit_info, "name": name}
        if name != base.name:
            changes["description"] = (f"{name}: {base.name} fitted to {args.measurements} "
                                      f"({base.description})")
        profile = result.fits[d].profile.with_changes(**changes)
        others = ", ".join(h for h in hws if h != hw)
        header = (f"Written by `roofline calibrate` from {hw} (jointly with {others}) and "
                  f"{args.measurements}.\nDo not edit the fitted numbers by hand: change the "
                  f"prior and run the command in [fit] again.")
        texts.append(profile_to_toml(profile, header))
        fitted.append(profile)
    atomic_write_texts(list(zip(outs, texts, strict=True)))
    if args.json:
        print_json({"joint": result.summary(names), "fits": [
            {**fit.summary(), "hardware": name, "out": str(out), "rows": fit.rows(),
             "skipped": skip}
            for fit, name, out, skip in zip(result.fits, names, outs, skipped, strict=True)]})
        return 0
    con = console()
    for fit, name, out, skip in zip(result.fits, names, outs, skipped, strict=True):
        _print_fit(fit, name, out)
        if skip:
            con.print("left out (not roofline models): " + ", ".join(
                f"{model} x{n}" for model, n in sorted(skip.items())))
    con.print(_shared_line(result, names))
    line = (f"joint fit of {plural(result.models, 'measurement')} on {len(names)} devices: "
            f"median |error| {result.median_abs_error_pct:.1f} %")
    if args.loo and result.fits[0].loo_predicted_ms:
        line += f"   leave-one-out: median |error| {result.loo_median_abs_error_pct:.1f} %"
    con.print(line)
    return 0


def _shared_line(result, names: list[str]) -> str:
    """What a joint fit shared and the value it found, in one line."""
    if not result.shares:
        return (f"fitted together, nothing shared: {', '.join(names)} each keep their own "
                f"values (the same as separate fits)")
    parts = []
    for share, value, per_device in zip(result.shares, result.shared_values,
                                        result.device_values, strict=True):
        if "/" in share:
            field = share.split("/")[0]
            own = ", ".join(f"{n} {v:.4g}" for n, v in zip(names, per_device, strict=True))
            parts.append(f"{share} = {value:.4g} (a ratio; {field}: {own})")
        else:
            parts.append(f"{share} = {value:.4g}")
    return f"shared by {', '.join(names)}: " + "; ".join(parts)


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
        # An empty resolution in the CSV is the model's own: the label leaves it out.
        resolution = "" if r["resolution"] is None else f":{r['resolution']}"
        row = [f"{r['model']}@{r['width']:g}{resolution}", r["precision"],
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
