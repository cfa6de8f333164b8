"""The baseline: the pipeline's row rules and scores in hand-written DuckDB SQL, in one process.

    python -m bench.baseline --config surveys/2024.yaml --export export.csv --output OUT
                             [--quarantine Q] [--summary-json FILE]

Same work as `cro-awards run`, without Prefect, Great Expectations, pydantic or pandas:
- read the CSV (all fields as text) and hash it (the pipeline records the export's SHA-256);
- the data contract's row rules (docs/contract.md section 3), every reason of a row listed;
- attribute scores, composites, eligibility, ranks and awards as docs/method.md defines them, with
  the same 1e-9 tolerance, over the countable cells only: a (segment, CRO, attribute) cell with fewer
  than min_cell_size ratings counts nowhere (no row, not in overall, not in a composite or its
  n_evaluations, so in no eligibility, rank or award); not the disclosure audit nor the bootstrap (the
  benchmark times those apart);
- write attribute_scores, composite_scores, awards (and a small manifest) under
  `<output>/survey_year=<year>/`, and the rejected rows with their reasons under
  `<quarantine>/survey_year=<year>/`, as zstd Parquet with COPY.

Known differences, none of which changes the work measured on the benchmark's exports:
- DuckDB's CSV reader cannot report ragged rows (more or fewer fields than the header) one by one
  the way the pipeline's reader does (quarantined as `malformed_row`): in strict mode it stops on
  them. The synthetic exports have none, so this is acceptable for a baseline.
- No UTF-8 diagnosis, no `columns` renaming, no publication through an atomic link, no year lock:
  file-level conveniences of the pipeline, cheap next to the row work.
- The YAML is read with yaml.safe_load and trusted (the pipeline validates it with pydantic).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import duckdb
import yaml

WHITESPACE = " \t\r\n\u00a0"
"""Removed around every field before it is read (docs/contract.md section 2)."""

TOLERANCE = 1e-9
"""Absolute tolerance of every comparison between scores (docs/method.md)."""

DEFAULTS = {
    "recency_months": 18,
    "rating_scale": {"min": 1, "max": 5},
    "big_pharma_min_rd_spend_musd": 1000,
    "min_evaluations": 10,
    "min_cros_for_awards": 3,
    "champion_sd_multiplier": 1.0,
    "min_cell_size": 3,
}

REASONS = (
    "missing_respondent_id",
    "invalid_rd_spend",
    "unknown_cro",
    "invalid_last_engaged",
    "outside_recency_window",
    "invalid_rating",
    "no_ratings",
    "duplicate_evaluation",
)
"""Reason codes in the contract's order (`malformed_row` cannot occur here: see the module docstring)."""


_PARAMETER = re.compile(r"\$([a-z_][a-z0-9_]*)")


def load_survey(path: str | Path) -> dict[str, Any]:
    survey = {**DEFAULTS, **yaml.safe_load(Path(path).read_text(encoding="utf-8"))}
    if survey.get("columns"):
        raise SystemExit(f"{path}: the baseline does not rename columns (`columns`); use a YAML without it")
    return survey


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A SQL string literal (COPY ... TO takes no bound parameter); only our own paths go through here."""
    return "'" + text.replace("'", "''") + "'"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cro_id(cro: dict) -> str:
    """A CRO's id, what the tables key on (docs/contract.md, "CRO ids"): given, or derived from its name."""
    if cro.get("id"):
        return str(cro["id"])
    letters = "".join(c for c in unicodedata.normalize("NFKD", str(cro["name"])) if not unicodedata.combining(c))
    return re.sub("[^a-z0-9]+", "_", letters.lower()).strip("_")


def run(
    config: str | Path, export: str | Path, output: str | Path, quarantine: str | Path | None = None
) -> dict[str, Any]:
    """Score `export` for the survey `config` and write the tables; return a summary (counts, timings)."""
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = now - clock
        clock = now

    survey = load_survey(config)
    export = Path(export)
    year = int(survey["survey_year"])
    attributes = [str(a) for a in survey["attributes"]]
    columns = ", ".join(_ident(a) for a in attributes)
    # As the pipeline's workspace (cro_awards/engine/sql.py, DISABLED_OPTIMIZERS): DuckDB's partial aggregate
    # pushdown would first group the ratings by their own key below the join to their evaluations
    # (the cells: 3.6 s instead of 0.3 s at 100x).
    con = duckdb.connect(":memory:", config={"disabled_optimizers": "partial_aggregate_pushdown"})
    params = {
        "ws": WHITESPACE,
        "tol": TOLERANCE,
        "close": str(survey["survey_close"]),
        "months": int(survey["recency_months"]),
        "scale_min": float(survey["rating_scale"]["min"]),
        "scale_max": float(survey["rating_scale"]["max"]),
        "cut": str(survey["big_pharma_min_rd_spend_musd"]),
        "min_evaluations": int(survey["min_evaluations"]),
        "min_cros": int(survey["min_cros_for_awards"]),
        "k": float(survey["champion_sd_multiplier"]),
        "min_cell": int(survey["min_cell_size"]),
    }

    statements: list[tuple[str, float]] = []

    def sql(text: str, **extra: Any) -> list[tuple]:
        """Run `text`, binding exactly the `$parameters` it names; every row fetched; timed."""
        values = {**params, **extra}
        begin = time.perf_counter()
        rows = con.execute(text, {key: values[key] for key in set(_PARAMETER.findall(text))}).fetchall()
        statements.append((" ".join(text.split())[:60], time.perf_counter() - begin))
        return rows

    # The ballot (every spelling, keyed lower + trimmed) and category membership (an attribute may be
    # in two categories: it is listed twice). Attributes are numbered 1..n in the YAML's order, and
    # each has a bit mask of its categories.
    categories = list(survey["categories"])
    if len(categories) > 63:
        raise SystemExit(f"{config}: the baseline handles at most 63 categories")
    con.execute("create table ballot (spelling varchar, cro varchar)")
    con.executemany(
        "insert into ballot values (?, ?)",
        [(s, _cro_id(c)) for c in survey["cros"] for s in (c["name"], *(c.get("aliases") or []))],
    )
    sql("create table ballot_keys as select distinct lower(trim(spelling, $ws)) as cro_key, cro from ballot")
    con.execute("create table attributes (attribute_id utinyint, attribute varchar, mask ubigint)")
    con.executemany(
        "insert into attributes values (?, ?, ?)",
        [
            (i, a, sum(1 << b for b, k in enumerate(categories) if a in survey["categories"][k]))
            for i, a in enumerate(attributes, start=1)
        ],
    )
    con.execute("create table categories (category varchar, bit utinyint)")
    con.executemany("insert into categories values (?, ?)", [(k, b) for b, k in enumerate(categories)])
    con.execute("create table category_attributes (category varchar, attribute varchar)")
    con.executemany(
        "insert into category_attributes values (?, ?)",
        [(k, a) for k, ids in survey["categories"].items() for a in ids],
    )
    digest = _sha256(export)

    # Every field as text. Ragged rows make DuckDB's reader stop (see the module docstring).
    # Insertion order is kept (DuckDB's default), so rowid + 1 is the 1-based data row (source_row).
    sql(
        "create table raw_export as select * from read_csv($path, all_varchar = true, header = true, "
        "delim = ',', quote = '\"', escape = '\"')",
        path=str(export),
    )
    missing = [
        c
        for c in ("respondent_id", "rd_spend_musd", "cro", "last_engaged", *attributes)
        if c not in {row[0] for row in con.execute("describe raw_export").fetchall()}
    ]
    if missing:
        raise SystemExit(f"{export}: missing column(s) {', '.join(missing)}")
    lap("read")

    # Fields trimmed, blanks null; the canonical CRO by lower-cased, trimmed spelling.
    sql("""
        create table evaluations as
        with trimmed as (
            select
                rowid + 1 as source_row,
                nullif(trim(respondent_id, $ws), '') as respondent_id,
                nullif(trim(rd_spend_musd, $ws), '') as spend_text,
                nullif(trim(cro, $ws), '') as cro_text,
                nullif(trim(last_engaged, $ws), '') as date_text,
            from raw_export
        )
        select trimmed.*, ballot_keys.cro, try_cast(trimmed.date_text as date) as engaged_on
        from trimmed left join ballot_keys on lower(trimmed.cro_text) = ballot_keys.cro_key
    """)
    # Rating fields in long form (attribute by number), then each distinct field text judged once:
    # trimmed; blank, n/a, na (any case) are no rating; valid when written [0-9]+(\.0*)? with its
    # value on the scale. A text's verdict depends only on the text, so every cell gets its text's.
    # (Three statements: in one, DuckDB pushes the blank filter below the DISTINCT, trimming every cell.)
    sql(f"""
        create table fields as
        select rowid + 1 as source_row, unnest([{columns}]) as field,
               unnest(range(1, {len(attributes) + 1}))::utinyint as attribute_id
        from raw_export
    """)
    sql("create table field_texts as select distinct field from fields where field is not null")
    sql("""
        create table verdicts as
        with trimmed as (select field, trim(field, $ws) as text from field_texts)
        select
            field,
            try_cast(text as double) as value,
            coalesce(regexp_full_match(text, '[0-9]+(\\.0*)?')
                and try_cast(text as double) between $scale_min and $scale_max,
                     false) as is_valid,
        from trimmed
        where text <> '' and lower(text) not in ('n/a', 'na')
    """)
    sql("""
        create table ratings as
        select fields.source_row, fields.attribute_id, verdicts.value, verdicts.is_valid
        from fields inner join verdicts using (field)
    """)
    sql("drop table fields")
    # Per row: answered fields and any invalid rating.
    sql("""
        create table row_ratings as
        select ratings.source_row, count(*) as n_answered, bool_or(not ratings.is_valid) as has_invalid_rating
        from ratings
        group by ratings.source_row
    """)
    # Every reason that applies, in the contract's order. The recency window's first day is
    # survey_close minus recency_months calendar months, the day clamped to the month's length.
    sql("""
        create table checked as
        with window_start as (select cast(cast($close as date) - to_months($months) as date) as first_day),
        rows as (
            select
                evaluations.*,
                coalesce(row_ratings.n_answered, 0) as n_answered,
                coalesce(row_ratings.has_invalid_rating, false) as has_invalid_rating,
                case when evaluations.respondent_id is not null and evaluations.cro is not null
                     then count(*) over (partition by evaluations.respondent_id, evaluations.cro)
                     else 1 end as n_copies,
            from evaluations left join row_ratings using (source_row)
        )
        select
            source_row, cro, spend_text,
            list_filter([
                case when respondent_id is null then 'missing_respondent_id' end,
                case when spend_text is null or not regexp_full_match(spend_text, '[0-9]+(\\.[0-9]+)?')
                     then 'invalid_rd_spend' end,
                case when cro is null then 'unknown_cro' end,
                case when date_text is null or not regexp_full_match(date_text, '[0-9]{4}-[0-9]{2}-[0-9]{2}')
                          or engaged_on is null then 'invalid_last_engaged' end,
                case when engaged_on < (select first_day from window_start) or engaged_on > cast($close as date)
                     then 'outside_recency_window' end,
                case when has_invalid_rating then 'invalid_rating' end,
                case when n_answered = 0 then 'no_ratings' end,
                case when n_copies > 1 then 'duplicate_evaluation' end
            ], lambda reason: reason is not null) as reasons,
        from rows
    """)
    lap("rules")

    # Accepted rows and their segment: big_pharma when the spend >= the cut, compared exactly as a
    # decimal (digits beyond the 18th decimal cut off, so >= stays exact; a spend too long for a
    # decimal is compared as a double), else small_pharma. `overall` is the grouping set without the
    # segment: every accepted row counts there once.
    sql("""
        create table accepted as
        select source_row, cro,
            case when coalesce(
                try_cast(regexp_extract(spend_text, '^[0-9]{1,20}(\\.[0-9]{1,18})?') as decimal(38, 18))
                    >= cast($cut as decimal(38, 18)),
                try_cast(spend_text as double) >= cast($cut as double)
            ) then 'big_pharma' else 'small_pharma' end as segment
        from checked where len(reasons) = 0
    """)
    # The cells: each (segment, CRO, attribute)'s accepted ratings, counted and summed. A cell rated
    # fewer than min_cell_size times is thin: nothing below reads its ratings.
    sql("""
        create table cells as
        select accepted.segment, accepted.cro, ratings.attribute_id, count(*) as n_ratings,
               sum(ratings.value) as total, count(*) >= $min_cell as countable
        from ratings inner join accepted using (source_row)
        group by accepted.segment, accepted.cro, ratings.attribute_id
    """)
    # Attribute scores: the mean rating per thick cell; overall adds up the CRO's thick cells of the
    # attribute (both thin: no overall). Ratings are whole numbers, so the sums are exact.
    sql("""
        create table attribute_all as
        with sums as (
            select
                case when grouping(segment) = 1 then 'overall' else segment end as segment,
                cro, attribute_id, sum(n_ratings)::bigint as n_ratings, sum(total) as total,
            from cells
            where countable
            group by grouping sets ((segment, cro, attribute_id), (cro, attribute_id))
        )
        select sums.segment, sums.cro, attributes.attribute, sums.n_ratings, sums.total / sums.n_ratings as score
        from sums inner join attributes using (attribute_id)
    """)
    # Each accepted row's categories, from its ratings in thick cells only (bit mask); a row whose
    # ratings are all in thin cells has none.
    sql("""
        create table counted_masks as
        with thin as (select segment, cro, attribute_id from cells where not countable)
        select ratings.source_row, bit_or(attributes.mask) as category_mask
        from ratings
        inner join accepted using (source_row)
        inner join attributes on attributes.attribute_id = ratings.attribute_id
        anti join thin
            on thin.segment = accepted.segment and thin.cro = accepted.cro and thin.attribute_id = ratings.attribute_id
        group by ratings.source_row
    """)
    # Composites: the mean of the category's attribute scores; n_evaluations: accepted rows with a
    # counted rating in the category; eligibility; rank among the eligible (1 + those above by > 1e-9).
    sql("""
        create table composite_all as
        with composites as (
            select attribute_all.segment, attribute_all.cro, category_attributes.category,
                   avg(attribute_all.score) as composite
            from attribute_all inner join category_attributes using (attribute)
            group by all
        ),
        evaluations as (
            select
                case when grouping(accepted.segment) = 1 then 'overall' else accepted.segment end as segment,
                accepted.cro, categories.category, count(*) as n_evaluations
            from accepted
            inner join counted_masks using (source_row)
            inner join categories on (counted_masks.category_mask >> categories.bit) & 1 = 1
            group by grouping sets ((accepted.segment, accepted.cro, categories.category),
                                    (accepted.cro, categories.category))
        ),
        scored as (
            select composites.*, evaluations.n_evaluations,
                   evaluations.n_evaluations >= $min_evaluations as is_eligible
            from composites inner join evaluations using (segment, cro, category)
        )
        select scored.*,
            case when scored.is_eligible then 1 + (
                select count(*) from scored as rivals
                where rivals.segment = scored.segment and rivals.category = scored.category
                  and rivals.is_eligible and rivals.composite > scored.composite + $tol
            ) end as rank
        from scored
    """)
    sql("""
        create table awards as
        with eligible as (select * from composite_all where is_eligible),
        cells as (
            select segment, category,
                   sum(n_evaluations * composite) / sum(n_evaluations) as weighted_mean,
                   sum(n_evaluations) as total_weight,
                   max(composite) as max_composite
            from eligible group by segment, category
            having count(*) >= $min_cros
        ),
        spreads as (
            select cells.segment, cells.category, cells.weighted_mean, cells.max_composite,
                   sqrt(sum(eligible.n_evaluations * pow(eligible.composite - cells.weighted_mean, 2))
                        / cells.total_weight) as weighted_sd
            from cells inner join eligible using (segment, category)
            group by cells.segment, cells.category, cells.weighted_mean, cells.total_weight, cells.max_composite
        ),
        candidates as (
            select eligible.segment, eligible.category, eligible.cro, eligible.composite,
                   spreads.weighted_mean, spreads.weighted_sd,
                   spreads.weighted_mean + $k * spreads.weighted_sd as threshold, spreads.max_composite
            from eligible inner join spreads using (segment, category)
        )
        select segment, category, cro, 'leader' as award, composite, weighted_mean, weighted_sd, threshold
        from candidates where composite >= max_composite - $tol
        union all
        select segment, category, cro, 'champion' as award, composite, weighted_mean, weighted_sd, threshold
        from candidates where composite >= threshold - $tol and composite > weighted_mean + $tol
    """)
    lap("scores")

    # Publish: every row (each rests on thick cells only), sorted; the quarantine holds the rejected rows
    # as read.
    folder = Path(output) / f"survey_year={year}"
    folder.mkdir(parents=True, exist_ok=True)
    quarantine_folder = Path(quarantine if quarantine is not None else Path(output).parent / "quarantine")
    quarantine_folder = quarantine_folder / f"survey_year={year}"
    quarantine_folder.mkdir(parents=True, exist_ok=True)
    published = {
        "attribute_scores": "select segment, cro, attribute, n_ratings, score from attribute_all "
        "order by segment, cro, attribute",
        "composite_scores": "select segment, cro, category, n_evaluations, composite, is_eligible, rank "
        "from composite_all order by segment, cro, category",
        "awards": "select * from awards order by segment, category, cro, award",
    }
    rows: dict[str, int] = {}
    for name, query in published.items():
        path = folder / f"{name}.parquet"
        sql(f"copy ({query}) to {_literal(str(path))} (format parquet, compression zstd)")
        [(rows[name],)] = sql(f"select count(*) from ({query})")
    rejected = quarantine_folder / "rejected_evaluations.parquet"
    sql(f"""
        copy (
            select checked.source_row, checked.reasons, raw_export.*
            from checked inner join raw_export on checked.source_row = raw_export.rowid + 1
            where len(checked.reasons) > 0
            order by checked.source_row
        ) to {_literal(str(rejected))} (format parquet, compression zstd)
    """)
    [(read, quarantined)] = sql("select count(*), count(*) filter (where len(reasons) > 0) from checked")
    by_reason = dict(
        sql(
            "select reason, count(*) from (select unnest(reasons) as reason from checked) "
            "group by reason order by reason"
        )
    )
    counts = {"read": read, "accepted": read - quarantined, "quarantined": quarantined}
    manifest = {
        "survey_year": year,
        "published_at": dt.datetime.now(dt.UTC).isoformat(),
        "export": {"file_name": export.name, "sha256": digest},
        "counts": {**counts, "quarantined_by_reason": by_reason},
        "tables": rows,
        "versions": {"duckdb": duckdb.__version__},
    }
    (folder / "_manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    con.close()
    lap("publish")
    return {
        "survey_year": year,
        "counts": counts,
        "quarantined_by_reason": by_reason,
        "tables": rows,
        "output": str(folder),
        "quarantine": str(rejected),
        "timings": timings,
        "statements": [{"sql": text, "seconds": seconds} for text, seconds in statements],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--export", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--quarantine")
    parser.add_argument("--summary-json")
    args = parser.parse_args(argv)
    summary = run(args.config, args.export, args.output, args.quarantine)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    counts = summary["counts"]
    print(
        f"baseline: read {counts['read']}, accepted {counts['accepted']}, quarantined {counts['quarantined']}; "
        f"published to {summary['output']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
