"""``roofline list models|hardware|spaces``: what the zoo, the hardware profiles and the
shipped search spaces hold."""

from __future__ import annotations

import argparse

from ._common import Col, console, count_cell, make_table, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list zoo models, hardware profiles or search spaces",
                       description="List the model zoo (with parameters, MACs and published "
                                   "top-1 at width 1.0), the hardware profiles, or the "
                                   "shipped search spaces (roofline search SPACE).")
    p.add_argument("what", choices=("models", "hardware", "spaces"),
                   metavar="models|hardware|spaces")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.what == "models":
        return _models(args)
    if args.what == "spaces":
        return _spaces(args)
    return _hardware(args)


def _spaces(args: argparse.Namespace) -> int:
    from ..analyses.search.space import list_spaces, load_space

    rows = []
    for name in list_spaces():
        space = load_space(name)
        blocks = list(dict.fromkeys(b for s in space.stage for b in s.blocks))
        rows.append({
            "name": name,
            "description": space.description,
            "stages": len(space.stage),
            "blocks": blocks,
            "resolutions": list(space.resolution),
            "share": space.share,
            "candidates": space.size(),
            "sources": dict(space.sources),
        })
    if args.json:
        print_json(rows)
        return 0
    out = console()
    out.print(make_table(
        [("space", "left"), ("stages", "right"), ("resolution", "left"), ("share", "left"),
         ("candidates", "right")],
        [(r["name"], r["stages"], ",".join(str(x) for x in r["resolutions"]), r["share"],
          f"{r['candidates']:.2g}") for r in rows]))
    for r in rows:
        out.print(f"{r['name']}: {r['description']}; blocks {', '.join(r['blocks'])}")
    out.print("share: 'layer' = every block picks its own op, 'stage' = one op per stage. "
              "A .toml path works wherever a space name does.")
    return 0


def _models(args: argparse.Namespace) -> int:
    from ..sources.variant import Variant
    from ..zoo import get_model_info, list_models

    rows = []
    for name in list_models():
        info = get_model_info(name)
        variant = Variant(name)
        graph = variant.trace()
        figure = next((f for f in info.published
                       if f.width == 1.0 and f.resolution == info.default_resolution), None)
        rows.append({
            "name": name,
            "family": info.family,
            "default_resolution": info.default_resolution,
            "params": graph.params,
            "macs": graph.macs,
            "top1": figure.top1 if figure else None,
            "top1_source": figure.source if figure else None,
            "published_variants": len(info.published),
            "description": info.description,
        })
    if args.json:
        print_json(rows)
        return 0
    table = make_table(
        [Col("model", "left", wrap=True), Col("family", "left", 2), Col("res"),
         Col("params", priority=1), Col("MACs"), Col("top-1 %", short="top-1"),
         Col("variants", priority=3, short="var")],
        [(r["name"], r["family"], r["default_resolution"], count_cell(r["params"]),
          count_cell(r["macs"]), "-" if r["top1"] is None else f"{r['top1']:.1f}",
          r["published_variants"]) for r in rows])
    out = console()
    out.print(table)
    out.print("MACs are multiply-accumulates at width 1.0 and the default resolution; top-1 is "
              "the published ImageNet figure ('variants': published width/resolution pairs).")
    return 0


def _hardware(args: argparse.Namespace) -> int:
    from ..analyses.roofs import RIDGE_POINT_DEFINITION
    from ..core.hardware import alias_target, list_hardware, load_hardware

    rows = []
    for name in list_hardware():
        hw = load_hardware(name)
        row = hw.summary()
        target = alias_target(name)
        if target is not None:
            row.update(name=name, alias_of=target)
        rows.append(row)
    if args.json:
        print_json(rows)
        return 0
    table = make_table(
        [Col("name", "left"), Col("kind", "left", 2), Col("precision", "left", 3, "prec"),
         Col("peak MAC/s", short="peak MAC/s"), Col("DRAM B/s", short="DRAM B/s"),
         Col("ridge MACs/B", short="ridge"), Col("1x1 conv eff %", priority=1, short="1x1 %"),
         Col("alias of", "left", 1)],
        [(r["name"], r["kind"], r["default_precision"], count_cell(r["peak_macs_per_s"]),
          count_cell(r["dram_bytes_per_s"]), f"{r['ridge_point']:.1f}",
          f"{100 * r['pointwise_efficiency']:.0f}", r["alias_of"] or "")
         for r in rows])
    out = console()
    out.print(table)
    out.print(f"{RIDGE_POINT_DEFINITION}; at the default precision. 1x1-conv efficiency: the "
              f"share of the peak a pointwise convolution reaches. MACs are "
              f"multiply-accumulates.")
    return 0
