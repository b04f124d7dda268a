"""Analysis commands: ``cdpd ca`` (correspondence analysis of a table), ``cdpd diagram`` (the CD-PD diagram and
its tables) and ``cdpd report`` (a report to cite). Both diagram commands share their options (``parents.diagram``)
and :func:`diagram_of`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ._util import CLIError, codebook_of, err, int_in_range, names, open_workspace


def cmd_ca(args) -> int:
    import pandas as pd

    from ..analysis.ca import correspondence_analysis

    path = Path(args.table)
    if not path.is_file():
        raise CLIError(f"{path}: file not found")
    try:
        table = pd.read_csv(path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CLIError(f"{path}: not a readable CSV table ({str(exc).splitlines()[0]})") from None
    table.index = table.index.astype(str)
    result = correspondence_analysis(table, n_components=args.dims, sup_rows=names(args.sup_rows),
                                     sup_cols=names(args.sup_cols))
    k = result.n_components
    if args.json:
        coords = lambda frame: {str(name): [float(v) for v in row] for name, row in frame.iterrows()}  # noqa: E731
        print(json.dumps({"eigenvalues": [float(v) for v in result.eigenvalues["eigenvalue"]],
                          "total_inertia": float(result.total_inertia),
                          "rows": coords(result.row_coords.iloc[:, :k]),
                          "cols": coords(result.col_coords.iloc[:, :k])}, indent=2))
        return 0
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 50):
        print(f"total inertia {result.total_inertia:.6f}; chi-square {result.chi2:.4f} on {result.dof} df, "
              f"p = {result.p_value:.3g}; n = {result.n:g}\n")
        print(result.eigenvalues.round(6).to_string(), "\n")
        print("rows\n" + result.rows.round(6).to_string(), "\n")
        print("columns\n" + result.cols.round(6).to_string())
    return 0


def _convergence_for_print(conv):
    """The convergence table as printed: each share as "12.3% [10.1, 14.6]", p-values < 0.001 written so."""
    import pandas as pd

    t = conv.table
    out = pd.DataFrame(index=t.index)
    out["practice"], out["amiri"] = t["practice"], t["amiri"]

    def cell(share, low, high):
        return f"{100 * share:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"

    for side in conv.sides:
        out[side] = [cell(*r) for r in t[[f"{side}_share", f"{side}_low", f"{side}_high"]].to_numpy()]
    out["difference"] = [cell(*r) for r in t[["difference", "difference_low", "difference_high"]].to_numpy()]
    out["p_adjusted"] = t["p_adjusted"].map(lambda p: "-" if p != p else "< 0.001" if p < 0.001 else f"{p:.3f}")
    out["reading"], out["zone"] = t["reading"], t["zone"]
    return out


def _diagram_of(args):
    """The diagram ``cdpd diagram`` and ``cdpd report`` describe, from their shared options."""
    from ..analysis.diagram import build_diagram
    from ..analysis.sides import Comparison
    from ..analysis.tables import Filters, resolve_model

    codebook = codebook_of(args)
    filters = Filters.parse(args.where or [], args.date_from, args.date_to)
    comparison = Comparison.parse(args.side)
    with open_workspace(args, create=False) as ws:
        model = resolve_model(ws, args.model)
        d = build_diagram(ws, codebook, model, rows=args.rows, by=args.by, unit=args.unit, filters=filters,
                          sup_cols=names(args.sup_cols), sup_rows=names(args.sup_rows), ellipses=args.ellipses,
                          seed=args.seed, comparison=comparison, diplomatic_only=not args.all_units,
                          replicates=args.replicates, top=args.top or None)
    for note in d.notes:
        err(note)
    return d, codebook


def cmd_report(args) -> int:
    """``cdpd report``: the diagram's figures, tables, comparison sets, method and the model's per-source quality
    in one HTML or PDF file."""
    import datetime

    from ..analysis.report import REPORT_FORMATS, write_report

    if Path(args.out).suffix.lower() not in REPORT_FORMATS:
        raise CLIError(f"{args.out}: the report is written as .html or .pdf")
    d, codebook = _diagram_of(args)
    from ..models import model_quality

    quality = model_quality(d.model)
    if quality is None:  # no registry entry or no held-out figures: say so
        err(f"no held-out figures for {d.model} in the model registry: the report leaves out the model's quality")
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = write_report(d, args.out, quality=quality, codebook=codebook, generated=generated)
    print(d.caption)
    err(f"wrote {out}")
    return 0


def cmd_diagram(args) -> int:
    import pandas as pd

    from ..analysis.report import export

    if args.min_contribution is not None and not 0 <= args.min_contribution < 100:
        raise CLIError(f"--min-contribution is a percentage from 0 to 100, not {args.min_contribution:g}")
    d, codebook = _diagram_of(args)
    out = export(args.out, d.result, d.tables, codebook, ellipses=d.ellipses, title=d.title, mds=d.mds,
                 convergence=d.convergence, sides=d.sides, caption=d.caption, codes=args.codes,
                 min_contribution=args.min_contribution)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 120):
        print(f"{d.title}\n")
        print(d.caption, "\n")
        print(d.result.eigenvalues.round(4).to_string(), "\n")
        if d.sides is not None:
            print("Sides compared\n" + d.sides.T.to_string(), "\n")
        if d.convergence is not None:
            conv = d.convergence
            print(f"Convergence ({conv.label}; unit {conv.unit}: {conv.unit_label}; "
                  + ", ".join(f"{s} n = {conv.n[s]:,}" for s in conv.sides) + ")")
            print(_convergence_for_print(conv).to_string())
            print(f"\nReading rule: {conv.rule}")
            print(f"Method: {conv.method}")
        if d.mds is not None:
            print(f"\nMDS of {args.rows} profiles: Kruskal stress-1 = {d.mds[1]:.3f}")
    err(f"wrote {out.figure} and {len(out.tables)} table(s): " + ", ".join(p.name for p in out.tables))
    return 0


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value != 0 and value < 2:
        raise argparse.ArgumentTypeError(f"{value}: keep at least 2 groups active (0 keeps all)")
    return value


def diagram_options() -> argparse.ArgumentParser:
    """The options of what a diagram analyses (rows, groups, filters, unit, sides, bootstrap), shared by ``cdpd
    diagram`` and ``cdpd report`` as an argparse parent."""
    diagram = argparse.ArgumentParser(add_help=False)
    diagram.add_argument("--rows", default="functions", help="codebook axis for the rows (default: functions)")
    diagram.add_argument("--by", default="source",
                         help="issuer_type, issuer, source (default), country, city or year")
    diagram.add_argument("--where", action="append", metavar="FIELD=VALUE",
                         help="keep matching documents (repeatable)")
    diagram.add_argument("--from", dest="date_from", metavar="DATE", help="first date (ISO, inclusive)")
    diagram.add_argument("--to", dest="date_to", metavar="DATE", help="last date (ISO, inclusive)")
    diagram.add_argument("--unit", default="intensity", choices=["documents", "passages", "intensity"],
                         help="what is counted: intensity (default; each document weighs 1, a label counts for the "
                              "share of its passages carrying it), documents (tagged or not) or passages")
    diagram.add_argument("--side", action="append", metavar="NAME:FIELD=V1,V2[;FIELD=V]",
                         help="a side of the convergence reading; give it twice, side A then side B "
                              "(default: city:issuer_type=city and state:issuer_type=national)")
    diagram.add_argument("--all-units", action="store_true",
                         help="read convergence over all units, not only diplomatic ones (at least one function)")
    diagram.add_argument("--replicates", type=int_in_range(20, 10_000), default=200, metavar="N",
                         help="bootstrap replicates of the convergence intervals (default 200)")
    diagram.add_argument("--top", type=_top, default=15, metavar="N",
                         help="groups kept active in the biplot, the largest by mass (default 15; 0 keeps all); "
                              "the others are projected as supplementary points")
    diagram.add_argument("--sup-cols", metavar="X,Y", help="groups to project as supplementary points")
    diagram.add_argument("--sup-rows", metavar="A,B", help="labels to project as supplementary points")
    diagram.add_argument("--ellipses", type=int, default=0, metavar="N",
                         help="bootstrap confidence ellipses, N replicates")
    diagram.add_argument("--seed", type=int, default=0, help="bootstrap seed (ellipses and convergence intervals)")
    diagram.add_argument("--model", help="model name or NAME@VERSION (default: the latest used)")
    return diagram


def register(sub, parents) -> None:
    """Add this group's commands to ``sub`` (``parents``: the shared option groups)."""
    s = sub.add_parser("ca", parents=[parents.common], help="correspondence analysis of a CSV table of counts")
    s.add_argument("--table", required=True, metavar="CSV", help="counts, row names in the first column")
    s.add_argument("--sup-rows", metavar="A,B", help="rows to project as supplementary points")
    s.add_argument("--sup-cols", metavar="X,Y", help="columns to project as supplementary points")
    s.add_argument("--dims", type=int, default=2, metavar="K", help="dimensions to report (default 2)")
    s.add_argument("--json", action="store_true", help="eigenvalues, total inertia and principal coordinates as JSON")
    s.set_defaults(func=cmd_ca)

    s = sub.add_parser("diagram", parents=[parents.common, parents.diagram],
                       help="the CD-PD diagram (CA biplot) and its tables")
    s.add_argument("--out", default="cdpd_diagram.html", metavar="FILE",
                   help=".html (default), .svg or .pdf (vector), .png (300 dpi); tables as CSV beside it")
    s.add_argument("--codes", action="store_true",
                   help="static maps: label groups with short codes G1, G2 ... and a key under the map")
    s.add_argument("--min-contribution", type=float, metavar="PCT",
                   help="static maps: label only the points contributing at least PCT%% to the plane")
    s.set_defaults(func=cmd_diagram)


    s = sub.add_parser("report", parents=[parents.common, parents.diagram],
                       help="a report to cite: figures, convergence table, sides, method, model quality")
    s.add_argument("--out", default="cdpd_report.html", metavar="FILE", help=".html (default) or .pdf")
    s.set_defaults(func=cmd_report)

