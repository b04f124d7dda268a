"""Build the shipped default corpus in corpora/ from the cleaned corpora in ../shared/corpora.

All of State Department, White House, NYC Council, King County and the climate-city contracts; the UN General
Debate from 2000 on, sampled per year (seeded) so that the whole stays under the 30 MB budget. Re-running it
gives byte-identical files (fixed seed, sorted output, gzip mtime 0).

    python scripts/build_corpus.py [--shared ../shared/corpora] [--out corpora] [--ungdc-per-year 28]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections import defaultdict
from pathlib import Path

FULL = ("state_department", "white_house", "nyc_council", "king_county", "ccc")
BUDGET_BYTES = 30 * 1000 * 1000


def read_jsonl_gz(path: Path):
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def write_jsonl_gz(path: Path, rows) -> int:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as fh:
        for row in rows:
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
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
    ap.add_argument("--ungdc-per-year", type=int, default=28)
    ap.add_argument("--since", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in FULL:
        size = write_jsonl_gz(args.out / f"{name}.jsonl.gz", read_jsonl_gz(args.shared / f"{name}.jsonl.gz"))
        total += size
        print(f"{name:18s} {size / 1e6:6.2f} MB")
    rows = sample_ungdc(args.shared / "ungdc.jsonl.gz", args.ungdc_per_year, args.since, args.seed)
    size = write_jsonl_gz(args.out / "ungdc_sample.jsonl.gz", rows)
    total += size
    print(f"{'ungdc_sample':18s} {size / 1e6:6.2f} MB ({len(rows)} speeches, {args.since}-, {args.ungdc_per_year}/year)")
    print(f"{'total':18s} {total / 1e6:6.2f} MB")
    if total > BUDGET_BYTES:
        raise SystemExit(f"corpus is {total / 1e6:.1f} MB, over the {BUDGET_BYTES / 1e6:.0f} MB budget: lower --ungdc-per-year")


if __name__ == "__main__":
    main()
