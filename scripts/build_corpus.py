"""Build the shipped default corpus in corpora/ from the cleaned corpora in ../shared/corpora.

All of State Department, White House (2021-22 and 2022-26), NYC Council, King County and the climate-city contracts;
the UN General Debate from 2000 on, sampled per year (seeded) so that corpora/ stays under the 45 MB budget. Re-running it
gives byte-identical files (fixed seed, sorted output).

    python scripts/build_corpus.py [--shared ../shared/corpora] [--out corpora] [--ungdc-per-year 28]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections import defaultdict
from pathlib import Path

FULL = ("state_department", "white_house", "white_house_2022_2026", "nyc_council", "king_county", "ccc")
BUDGET_BYTES = 45 * 1000 * 1000  # corpora/ in all, the seed annotations included
FIELDS = ("id", "source", "issuer", "issuer_type", "country", "city", "date", "title", "text", "url")


def read_jsonl_gz(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def write_parquet(path: Path, rows) -> int:
    """Parquet with zstd: about 30% smaller than gzipped JSON lines, and read column-wise by ``datasets``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([{k: ("" if r.get(k) is None else str(r[k])) for k in FIELDS} for r in rows])
    tmp = path.with_suffix(path.suffix + ".tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=19, row_group_size=2000)
    tmp.replace(path)
    return path.stat().st_size


def sample_ungdc(path: Path, per_year: int, since: int, seed: int) -> list[dict]:
    by_year = defaultdict(list)
    for row in read_jsonl_gz(path):
        year = int(row["date"][:4])
        if year >= since:
            by_year[year].append(row)
    rng = random.Random(seed)
    picked = []
    for year in sorted(by_year):
        rows = sorted(by_year[year], key=lambda r: r["id"])
        picked.extend(sorted(rng.sample(rows, min(per_year, len(rows))), key=lambda r: r["id"]))
    return picked


def main() -> None:
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=here.parent / "shared" / "corpora")
    ap.add_argument("--out", type=Path, default=here / "corpora")
    ap.add_argument("--ungdc-per-year", type=int, default=40)
    ap.add_argument("--since", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in FULL:
        size = write_parquet(args.out / f"{name}.parquet", read_jsonl_gz(args.shared / f"{name}.jsonl.gz"))
        total += size
        print(f"{name:18s} {size / 1e6:6.2f} MB")
    rows = sample_ungdc(args.shared / "ungdc.jsonl.gz", args.ungdc_per_year, args.since, args.seed)
    size = write_parquet(args.out / "ungdc_sample.parquet", rows)
    total += size
    print(f"{'ungdc_sample':18s} {size / 1e6:6.2f} MB ({len(rows)} speeches, {args.since}-, {args.ungdc_per_year}/year)")
    extra = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file() and f.suffix not in (".parquet", ".tmp"))
    total += extra
    print(f"{'other files':18s} {extra / 1e6:6.2f} MB (codebook, annotations, docs)")
    print(f"{'total':18s} {total / 1e6:6.2f} MB")
    if total > BUDGET_BYTES:
        raise SystemExit(f"corpus is {total / 1e6:.1f} MB, over the {BUDGET_BYTES / 1e6:.0f} MB budget: lower --ungdc-per-year")


if __name__ == "__main__":
    main()
