"""A corpus of hostile survey exports, each written for the tiny survey year of `SURVEY_YAML`.

    python tests/hostile/make_corpus.py FOLDER      # writes the corpus and the two YAMLs into FOLDER

Importable: `build(folder) -> {name: path}` writes every export (and the YAMLs, see `write_configs`)
and returns the exports by case name. Nothing binary is committed: every file, the two 10 MB ones
included, is generated at test time (tests/test_hostile.py, into tmp_path). The expected outcome of
each case is stated by the test, not here.

The survey: CROs Northwind Clinical (aliases Northwind, NWC), Aldercrest Research (Aldercrest),
Bluefen Biometrics (Bluefen); attributes quality, speed, cost; scale 1..5; survey_close 2024-02-29,
recency_months 18 (window 2022-08-29 .. 2024-02-29). Two YAMLs differ only in `max_rejected_share`:
`survey.yaml` 0.2 (the default, stated) and `survey_lenient.yaml` 1.0, for exports that are meant to
publish despite bad rows.

Publishing exports put their hostile rows first (source_row 1, 2, ...) and then `FILLER` valid rows
(3 respondents x 3 CROs), so that the run scores something.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, when run as a script
from helpers_exports import set_saved_value, write_xlsx

HEADER = ("respondent_id", "rd_spend_musd", "cro", "last_engaged", "quality", "speed", "cost")
CANONICAL = ("Northwind Clinical", "Aldercrest Research", "Bluefen Biometrics")

SURVEY_YAML = """\
survey_year: 2024
survey_close: 2024-02-29
recency_months: 18
rating_scale: {{min: 1, max: 5}}
# The year's usual knobs: a toy survey publishes whatever its few evaluations allow (cells of fewer than
# min_cell_size ratings count nowhere; nothing is ever refused for disclosure).
min_evaluations: 10
min_cell_size: 3
max_rejected_share: {share}
cros:
  - {{name: Northwind Clinical, aliases: [Northwind, NWC]}}
  - {{name: Aldercrest Research, aliases: [Aldercrest]}}
  - {{name: Bluefen Biometrics, aliases: [Bluefen]}}
attributes:
  quality: Quality
  speed: Speed
  cost: Cost
categories:
  delivery: [quality, speed]
  value: [cost]
"""

CONFIGS = {"strict": ("survey.yaml", "0.2"), "lenient": ("survey_lenient.yaml", "1.0")}

GOOD = {
    "respondent_id": "R1",
    "rd_spend_musd": "1200",
    "cro": "Northwind Clinical",
    "last_engaged": "2023-06-01",
    "quality": "4",
    "speed": "3",
    "cost": "5",
}

BIG_FIELD_BYTES = 10 * 1024 * 1024
SQL_TEXT = "'; drop table x; --"
HYPERLINK = '=HYPERLINK("http://x","y")'


def row(**fields: Any) -> dict[str, Any]:
    return {**GOOD, **fields}


def filler() -> list[dict[str, Any]]:
    """Valid rows: respondents F1..F3 each rate the three CROs (spend alternating Big / Small Pharma)."""
    return [
        row(
            respondent_id=f"F{i}",
            rd_spend_musd="1200" if i % 2 else "87.5",
            cro=cro,
            quality=str(1 + (i + j) % 5),
            speed=str(1 + (2 * i + j) % 5),
            cost=str(1 + (i + 2 * j) % 5),
        )
        for i in (1, 2, 3)
        for j, cro in enumerate(CANONICAL)
    ]


FILLER = len(filler())


def big_text() -> str:
    """10 MiB of text that needs CSV quoting (commas and quotes) and holds no line break."""
    unit = 'abc, "de" fgh '
    text = unit * (BIG_FIELD_BYTES // len(unit) + 1)
    return text[:BIG_FIELD_BYTES]


# --- writers -----------------------------------------------------------------------------------------


def csv_text(
    rows: Iterable[dict[str, Any] | Sequence[Any] | str], header: Sequence[str] = HEADER, terminator: str = "\n"
) -> str:
    """Header then rows: a dict by header name, a list as it is, a str as a raw line (unquoted)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=terminator)
    writer.writerow(header)
    for item in rows:
        if isinstance(item, str):
            out.write(item + terminator)
        elif isinstance(item, dict):
            writer.writerow(["" if item.get(name) is None else item[name] for name in header])
        else:
            writer.writerow(item)
    return out.getvalue()


def _text(path: Path, text: str, encoding: str = "utf-8") -> None:
    path.write_bytes(text.encode(encoding))


def _parquet(path: Path, columns: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)


# --- the cases ---------------------------------------------------------------------------------------

GOOD_LINE = ",".join(GOOD[name] for name in HEADER)
HEADER_LINE = ",".join(HEADER)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _header_only(path: Path) -> None:
    _text(path, HEADER_LINE + "\n")


def _separated(separator: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        lines = [HEADER_LINE, GOOD_LINE, GOOD_LINE.replace("R1", "R2").replace("Northwind Clinical", "Bluefen")]
        _text(path, "".join(line.replace(",", separator) + "\n" for line in lines))

    return write


def _latin1(path: Path) -> None:
    # Valid but for the encoding: a ü in a respondent id.
    _text(path, csv_text([row(respondent_id="M\u00fcller-1"), row(respondent_id="R2", cro="Bluefen")]), "latin-1")


def _utf16_bom(path: Path) -> None:
    _text(path, csv_text([row(), row(respondent_id="R2")]), "utf-16")  # BOM, native (little-endian) order


def _utf16_no_bom(encoding: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        _text(path, csv_text([row(), row(respondent_id="R2")]), encoding)

    return write


def _duplicate_header(path: Path) -> None:
    _text(path, csv_text([[*GOOD.values(), "Bluefen"]], header=[*HEADER, "cro"]))


def _missing_attribute(path: Path) -> None:
    header = [name for name in HEADER if name != "speed"]
    _text(path, csv_text([row()], header=header))


def _parquet_truncated(path: Path) -> None:
    rows = filler()
    _parquet(path, {name: [r[name] for r in rows] for name in HEADER})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _parquet_struct(path: Path) -> None:
    import pyarrow as pa

    rows = filler()[:3]
    columns: dict[str, Any] = {name: [r[name] for r in rows] for name in HEADER}
    columns["cro"] = pa.array([{"name": r["cro"], "id": i} for i, r in enumerate(rows)])
    _parquet(path, columns)


def _parquet_list(path: Path) -> None:
    import pyarrow as pa

    rows = filler()[:3]
    columns: dict[str, Any] = {name: [r[name] for r in rows] for name in HEADER}
    columns["quality"] = pa.array([[4], [3, 5], []], pa.list_(pa.int64()))
    _parquet(path, columns)


def _all_bad(path: Path) -> None:
    _text(
        path,
        csv_text(
            [
                row(respondent_id=""),  # 1 missing_respondent_id
                row(respondent_id="B2", rd_spend_musd="-5"),  # 2 invalid_rd_spend
                row(respondent_id="B3", cro="Nobody"),  # 3 unknown_cro
                row(respondent_id="B4", last_engaged="2024-2-3"),  # 4 invalid_last_engaged
                row(respondent_id="B5", last_engaged="2019-01-01"),  # 5 outside_recency_window
                row(respondent_id="B6", quality="6"),  # 6 invalid_rating
                row(respondent_id="B7", quality="", speed="n/a", cost=""),  # 7 no_ratings
                row(respondent_id="B8"),
                row(respondent_id="B8", cro="nwc"),  # 8, 9 duplicate_evaluation
                "B10,1200,Northwind,2023-06-01,4",  # 10 malformed_row
            ]
        ),
    )


def _utf8_bom(path: Path) -> None:
    path.write_bytes(codecs.BOM_UTF8 + csv_text([row(respondent_id="U1"), *filler()]).encode("utf-8"))


QUOTED_ID = 'Q"1, and\nQ2'
QUOTED_CRO = 'Northwind, "the" CRO\non two lines'
QUOTED_NOTE = 'one, "two"\r\nthree,,\n'


def _quoted(path: Path) -> None:
    header = [*HEADER, "note"]
    _text(
        path,
        csv_text(
            [
                {**row(respondent_id=QUOTED_ID), "note": QUOTED_NOTE},  # 1 fine: quoted id and note
                {**row(respondent_id="Q3", quality="4\n"), "note": "a,b"},  # 2 fine: the rating is trimmed
                {**row(respondent_id="Q4", cro=QUOTED_CRO), "note": '""'},  # 3 unknown_cro
                *({**r, "note": ""} for r in filler()),
            ],
            header=header,
        ),
    )


def _extra_column(path: Path) -> None:
    header = ["comments", *HEADER, "Unnamed: 9", "extra"]
    rows = [{**row(respondent_id="E1"), "comments": "great", "Unnamed: 9": "", "extra": "1"}, *filler()]
    _text(path, csv_text(rows, header=header))


RAGGED_MORE = "G1,1200,Northwind,2023-06-01,4,3,5,surplus"
RAGGED_FEWER = ",-5,Nobody,2024-02-30,9"


def _ragged(path: Path) -> None:
    _text(
        path,
        csv_text(
            [
                RAGGED_MORE,  # 1 one field too many, otherwise valid
                RAGGED_FEWER,  # 2 too few, and every field bad: malformed_row only
                row(respondent_id="G3"),  # 3 fine
                *filler(),
            ]
        ),
    )


def _big_ignored(path: Path) -> None:
    header = [*HEADER, "comments"]
    _text(
        path,
        csv_text(
            [{**row(respondent_id="BIG1"), "comments": big_text()}, *({**r, "comments": "short"} for r in filler())],
            header=header,
        ),
    )


def _big_cro(path: Path) -> None:
    _text(path, csv_text([row(respondent_id="BIG1", cro=big_text()), *filler()]))


def _xlsx_typed(path: Path) -> None:
    rows = [
        ["X1", 1200, "Northwind", 45321, 4, 3, 5],  # 1 a date serial: invalid_last_engaged
        ["X2", 1200, "Bluefen", 45321.5, 4, 3, 5],  # 2 a serial with a time: invalid
        ["X3", 1200, "Aldercrest", dt.date(2023, 6, 1), "=2+2", "=1+1", 5],  # 3 E4 saved 4; F4 none: blank; fine
        ["X4", 1200, '="Blue"&"fen"', dt.datetime(2023, 6, 1, 9, 30), 4, 3, 5],  # 4 C5 saved "Bluefen": fine
        ["X5", 1200, "Northwind", dt.date(2023, 6, 1), "=1", "=2", "=3"],  # 5 no saved values: no_ratings
        ["X6", 1200, "Northwind", "2023-06-01", "=10-4", 3, 5],  # 6 E7 saved 6: invalid_rating
        *([r[name] for name in HEADER] for r in filler()),
    ]
    write_xlsx(path, rows, HEADER)
    set_saved_value(path, "E4", "4")
    set_saved_value(path, "C5", "Bluefen", kind="str")
    set_saved_value(path, "E7", "6")


def _parquet_float_ratings(path: Path) -> None:
    import pyarrow as pa

    rows = filler()
    hostile = [  # respondent, spend (a string column), cro, quality (float64)
        ("P1", "1200", "Northwind", 4.0),  # 1 fine: 4.0 reads "4"
        ("P2", "87.5", "Bluefen", 3.5),  # 2 invalid_rating
        ("P3", " 1200 ", "Aldercrest", None),  # 3 fine: null is no rating (speed, cost answered)
        ("P4", "1200", "NWC", float("nan")),  # 4 invalid_rating: NaN reads "nan"
        ("P5", "1200", "Northwind", 5.0),  # 5 fine
        ("P6", "1200", "Bluefen", float("inf")),  # 6 invalid_rating
    ]
    n = len(hostile)
    _parquet(
        path,
        {
            "respondent_id": [h[0] for h in hostile] + [r["respondent_id"] for r in rows],
            "rd_spend_musd": pa.array([h[1] for h in hostile] + [r["rd_spend_musd"] for r in rows], pa.string()),
            "cro": [h[2] for h in hostile] + [r["cro"] for r in rows],
            "last_engaged": pa.array([dt.date(2023, 6, 1)] * (n + len(rows)), pa.date32()),
            "quality": pa.array([h[3] for h in hostile] + [float(r["quality"]) for r in rows], pa.float64()),
            "speed": pa.array([3] * n + [int(r["speed"]) for r in rows], pa.int32()),
            "cost": pa.array([5.0] * n + [float(r["cost"]) for r in rows], pa.float32()),
        },
    )


def _parquet_int_dates(path: Path) -> None:
    import pyarrow as pa

    # An int64 column holds no date: every row is invalid_last_engaged (so no filler rows).
    _parquet(
        path,
        {
            "respondent_id": ["I1", "I2", "I3"],
            "rd_spend_musd": pa.array([1200, 87, 1200], pa.int64()),
            "cro": ["Northwind", "Bluefen", "Aldercrest"],
            "last_engaged": pa.array([20230601, 45321, None], pa.int64()),
            "quality": pa.array([4, 3, 5], pa.int64()),
            "speed": pa.array([4, 3, 5], pa.int64()),
            "cost": pa.array([4, 3, 5], pa.int64()),
        },
    )


CRO_VARIANTS = [
    "  northwind clinical ",
    "NORTHWIND",
    "\tNwC\u00a0",
    "aldercrest RESEARCH",
    " ALDERCREST\t",
    "Aldercrest Research",
    "\u00a0bluefen",
    "BLUEFEN BIOMETRICS  ",
    "blueFen",
]


def _cro_variants(path: Path) -> None:
    _text(path, csv_text([row(respondent_id=f"V{i}", cro=cro) for i, cro in enumerate(CRO_VARIANTS, start=1)]))


RATINGS = ["4.0", " 4 ", "4,0", "1e0", "nan", "inf"]


def _ratings(path: Path) -> None:
    _text(
        path,
        csv_text([*(row(respondent_id=f"K{i}", quality=value) for i, value in enumerate(RATINGS, start=1)), *filler()]),
    )


DATES = ["2024-2-3", "2024-02-30"]


def _dates(path: Path) -> None:
    _text(
        path,
        csv_text(
            [
                *(row(respondent_id=f"D{i}", last_engaged=value) for i, value in enumerate(DATES, start=1)),
                row(respondent_id="D3", last_engaged="2024-02-29"),
                *filler(),
            ]
        ),
    )


def _duplicate_rater(path: Path) -> None:
    _text(
        path,
        csv_text(
            [
                row(respondent_id="T1", cro="Northwind Clinical"),  # 1 duplicate_evaluation
                row(respondent_id="T1", cro="Bluefen"),  # 2 fine: another CRO
                row(respondent_id="T1", cro=" nwc ", quality="2"),  # 3 duplicate_evaluation (alias of the same CRO)
                row(respondent_id="t1", cro="Northwind"),  # 4 fine: ids compare exactly
                *filler(),
            ]
        ),
    )


def _sql_lookalikes(path: Path) -> None:
    _text(
        path,
        csv_text(
            [
                row(respondent_id=SQL_TEXT),  # 1 plain data: accepted
                row(respondent_id="S2", cro=SQL_TEXT),  # 2 unknown_cro, kept verbatim
                row(respondent_id=HYPERLINK),  # 3 plain data: accepted
                row(respondent_id="S4", quality="=1+1"),  # 4 invalid_rating, kept verbatim
                row(respondent_id="S5", cro="Robert'); DROP TABLE raw_export;--", speed="$$ select 1 $$"),  # 5
                *filler(),
            ]
        ),
    )


def _tiny_valid(path: Path) -> None:
    # Two valid rows: every cell is below min_cell_size, so the published tables are empty.
    _text(path, csv_text([row(respondent_id="Y1"), row(respondent_id="Y2", cro="Bluefen")]))


# --- cases from an attacker's trial: messages that leaked or misled, rows lost without a word ---------


def _people(prefix: str, count: int) -> list[dict[str, Any]]:
    """Valid rows with distinctive respondent ids (`<prefix>001`, ...) and spends, three CROs in turn."""
    return [
        row(respondent_id=f"{prefix}{i:03d}", rd_spend_musd=str(1600 + 7 * i), cro=CANONICAL[i % 3])
        for i in range(1, count + 1)
    ]


LATIN1_LATE_LINE = 10  # the physical line of the Latin-1 byte: data row 9


def _latin1_late(path: Path) -> None:
    # The bad byte on data row 9, after 20 bytes of that row's data: a message quoting the bytes before it
    # would leak them (respondent R000009, spend 1642, the CRO's text).
    rows = _people("R000", 8)
    rows.append(row(respondent_id="R000009", rd_spend_musd="1642", cro="Bluefen Biom\u00e9trics"))
    _text(path, csv_text(rows), "latin-1")


HEADERLESS_FIRST = ("R777001", "1200", "Ironbark", "2023-06-01", "4", "3", "5")


def _headerless(path: Path) -> None:
    # The header row was not exported: the first data row stands where the header should be (a reader
    # used to list its cells as "the header has: R777001, 1200, Ironbark, ...").
    rows = [list(HEADERLESS_FIRST), ["R777002", "1350", "Northwind", "2023-07-01", "5", "4", "4"]]
    _text(path, "".join(",".join(r) + "\n" for r in rows))


def _headerless_repeated(path: Path) -> None:
    # The same, with a rating repeated in the first row (a reader used to say "names column '4' twice").
    rows = [["R777003", "1200", "Ironbark", "2023-06-01", "4", "3", "4"], list(HEADERLESS_FIRST)]
    _text(path, "".join(",".join(r) + "\n" for r in rows))


STRAY_QUOTE_LINE = 5  # physical line (the header is line 1) where the stray quote opens
STRAY_QUOTE_SWALLOWED = 6  # lines taken into the record after it, up to the next quote


def _stray_quote(path: Path) -> None:
    # One stray quote in the free-text `note` of data row 4 takes the following lines into one field,
    # until the next quote (row 10's quoted note): one malformed record instead of seven rows.
    header = [*HEADER, "note"]
    rows = [{**r, "note": ""} for r in _people("SQ", 12)]
    rows[9]["note"] = "Fine, thanks"  # quoted (it holds a comma): its opening quote closes the stray one
    lines = csv_text(rows, header=header).splitlines()
    lines[STRAY_QUOTE_LINE - 1] += '"Good service, but slow'
    _text(path, "\n".join(lines) + "\n")


def _stray_quote_to_end(path: Path) -> None:
    # A quote opened in the last column and never closed: every line after it is read into that field.
    lines = csv_text(_people("SE", 8)).splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ',"5 (see notes'
    _text(path, "\n".join(lines) + "\n")


def _two_row_header(path: Path) -> None:
    # A header over two rows, as a spreadsheet with merged group headings exports it.
    lines = ["respondent_id,rd_spend_musd,cro,last_engaged,Ratings,,", ",,,,quality,speed,cost"]
    body = csv_text(_people("TH", 3)).splitlines()[1:]
    _text(path, "\n".join([*lines, *body]) + "\n")


def _trailing_empty_header(path: Path) -> None:
    # Three trailing columns with no name and no value (a spreadsheet's used range): ignored.
    lines = csv_text(_people("TE", 2) + filler()).splitlines()
    _text(path, "\n".join(line + ",,," for line in lines) + "\n")


def _trailing_empty_header_values(path: Path) -> None:
    # The same three nameless columns, but data row 2 holds a value in the second of them (column 9).
    lines = [line + ",,," for line in csv_text(filler()).splitlines()]
    lines[2] = lines[2][: -len(",,,")] + ",,kept,"
    _text(path, "\n".join(lines) + "\n")


def _xlsx_merged_header(path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Respondent", None, None, None, "Ratings", None, None])
    sheet.merge_cells("A1:D1")
    sheet.merge_cells("E1:G1")
    sheet.append(list(HEADER))
    for r in _people("XM", 3):
        sheet.append([r[name] for name in HEADER])
    workbook.save(path)


def _xlsx_unsaved_formulas(path: Path) -> None:
    # last_engaged computed by a formula, in a workbook written by a program that saves no formula results
    # (as openpyxl does): every date would read blank.
    rows = [[r[name] for name in HEADER] for r in _people("XF", 6)]
    for number, cells in enumerate(rows, start=2):
        cells[3] = f"=DATE(2023,6,{number})"
    write_xlsx(path, rows, HEADER)


XLSX_HIDDEN_ROWS = (2, 4)  # source rows hidden in the sheet (still scored)


def _xlsx_hidden_rows(path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(HEADER))
    for r in [*_people("XH", 4), *filler()]:
        sheet.append([r[name] for name in HEADER])
    for source_row in XLSX_HIDDEN_ROWS:
        sheet.row_dimensions[source_row + 1].hidden = True
    workbook.save(path)


COLLIDING = ("source_row", "raw_text", "reasons", "Reasons", "CRO")
"""Export columns named like the quarantine's own columns, or like a contract column in other capitals."""


def _source_row_column(path: Path) -> None:
    # The survey platform's own row number, named source_row; row 2 is rejected (unknown_cro).
    rows = [
        {**r, "source_row": str(100 + i)}
        for i, r in enumerate([row(respondent_id="SR1"), row(respondent_id="SR2", cro="Nobody"), *filler()])
    ]
    _text(path, csv_text(rows, header=[*HEADER, "source_row"]))


def _colliding_columns(path: Path) -> None:
    # Rows 1 and 3 rejected (unknown_cro; malformed): the quarantine must keep every field apart from its
    # own source_row, reasons and raw_text, and `cro` apart from `CRO`.
    header = [*HEADER, *COLLIDING]
    extra = {"source_row": "77", "raw_text": "platform text", "reasons": "none given", "Reasons": "R", "CRO": "Acme"}
    rows: list[Any] = [
        {**row(respondent_id="CC1", cro="Nobody"), **extra},
        {**row(respondent_id="CC2"), **extra},
        "CC3,1200,Northwind,2023-06-01,4,3,5,78,t,r,R",  # one field short: malformed
        *({**r, **extra} for r in filler()),
    ]
    _text(path, csv_text(rows, header=header))


def _parquet_nan_ratings(path: Path) -> None:
    import pyarrow as pa

    # Float rating columns where NaN means "no answer" (as pandas writes a missing value).
    rows = filler()
    nan = float("nan")
    _parquet(
        path,
        {
            "respondent_id": [r["respondent_id"] for r in rows],
            "rd_spend_musd": pa.array([float(r["rd_spend_musd"]) for r in rows], pa.float64()),
            "cro": [r["cro"] for r in rows],
            "last_engaged": pa.array([dt.date(2023, 6, 1)] * len(rows), pa.date32()),
            "quality": pa.array([nan if i % 3 == 0 else float(r["quality"]) for i, r in enumerate(rows)], pa.float64()),
            "speed": pa.array([nan if i % 4 == 1 else float(r["speed"]) for i, r in enumerate(rows)], pa.float64()),
            "cost": pa.array([float(r["cost"]) for r in rows], pa.float32()),
        },
    )


WRITERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    # file-level errors
    "empty": ("empty.csv", _empty),
    "header_only": ("header_only.csv", _header_only),
    "semicolons": ("semicolons.csv", _separated(";")),
    "tabs": ("tabs.csv", _separated("\t")),
    "latin1": ("latin1.csv", _latin1),
    "utf16_bom": ("utf16_bom.csv", _utf16_bom),
    "utf16le_no_bom": ("utf16le.csv", _utf16_no_bom("utf-16-le")),
    "utf16be_no_bom": ("utf16be.csv", _utf16_no_bom("utf-16-be")),
    "duplicate_header": ("duplicate_header.csv", _duplicate_header),
    "missing_attribute": ("missing_attribute.csv", _missing_attribute),
    "parquet_truncated": ("truncated.parquet", _parquet_truncated),
    "parquet_struct": ("struct.parquet", _parquet_struct),
    "parquet_list": ("list.parquet", _parquet_list),
    "latin1_late": ("latin1_late.csv", _latin1_late),
    "headerless": ("headerless.csv", _headerless),
    "headerless_repeated": ("headerless_repeated.csv", _headerless_repeated),
    "stray_quote": ("stray_quote.csv", _stray_quote),
    "stray_quote_to_end": ("stray_quote_to_end.csv", _stray_quote_to_end),
    "two_row_header": ("two_row_header.csv", _two_row_header),
    "trailing_empty_header_values": ("trailing_empty_header_values.csv", _trailing_empty_header_values),
    "xlsx_merged_header": ("merged_header.xlsx", _xlsx_merged_header),
    "xlsx_unsaved_formulas": ("unsaved_formulas.xlsx", _xlsx_unsaved_formulas),
    "all_bad": ("all_bad.csv", _all_bad),
    # exports that publish
    "utf8_bom": ("utf8_bom.csv", _utf8_bom),
    "quoted": ("quoted.csv", _quoted),
    "extra_column": ("extra_column.csv", _extra_column),
    "ragged": ("ragged.csv", _ragged),
    "big_ignored": ("big_ignored.csv", _big_ignored),
    "big_cro": ("big_cro.csv", _big_cro),
    "xlsx_typed": ("typed.xlsx", _xlsx_typed),
    "parquet_float_ratings": ("float_ratings.parquet", _parquet_float_ratings),
    "parquet_int_dates": ("int_dates.parquet", _parquet_int_dates),
    "cro_variants": ("cro_variants.csv", _cro_variants),
    "ratings": ("ratings.csv", _ratings),
    "dates": ("dates.csv", _dates),
    "duplicate_rater": ("duplicate_rater.csv", _duplicate_rater),
    "sql_lookalikes": ("sql_lookalikes.csv", _sql_lookalikes),
    "tiny_valid": ("tiny_valid.csv", _tiny_valid),
    "trailing_empty_header": ("trailing_empty_header.csv", _trailing_empty_header),
    "xlsx_hidden_rows": ("hidden_rows.xlsx", _xlsx_hidden_rows),
    "source_row_column": ("source_row_column.csv", _source_row_column),
    "colliding_columns": ("colliding_columns.csv", _colliding_columns),
    "parquet_nan_ratings": ("nan_ratings.parquet", _parquet_nan_ratings),
}


FILE_LEVEL_ERRORS = (
    "empty",
    "header_only",
    "semicolons",
    "tabs",
    "latin1",
    "utf16_bom",
    "utf16le_no_bom",
    "utf16be_no_bom",
    "duplicate_header",
    "missing_attribute",
    "parquet_truncated",
    "parquet_struct",
    "parquet_list",
    "latin1_late",
    "headerless",
    "headerless_repeated",
    "stray_quote",
    "stray_quote_to_end",
    "two_row_header",
    "trailing_empty_header_values",
    "xlsx_merged_header",
    "xlsx_unsaved_formulas",
)
"""The cases that stop the run with a file-level error (tests/test_hostile.py states each message)."""

BIG = ("big_ignored", "big_cro")
"""The two 10 MB cases, which tests that need no 10 MB field leave out (`build(folder, SMALL)`)."""

SMALL = tuple(name for name in WRITERS if name not in BIG)


def field_texts(path: Path, first_row: bool = True) -> list[str]:
    """The text of every cell an export of the corpus holds: what no message or log line may quote.

    The first row is included unless `first_row` is false (in a headerless file it is data; in the
    others it is the header). CSV is decoded as it was written (UTF-16 by its byte-order mark or NUL
    bytes, else UTF-8, else Latin-1); an .xlsx gives every sheet's cells, formulas and saved values
    both; Parquet its values (never its column names). A Parquet file that cannot be read (the
    truncated case) gives the texts of `filler()`, which it was cut from."""
    if path.suffix == ".csv":
        data = path.read_bytes()
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            text = data.decode("utf-16")
        elif b"\x00" in data:
            text = data.decode("utf-16-be" if data[:1] == b"\x00" else "utf-16-le")
        else:
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
        records = list(csv.reader(io.StringIO(text, newline="")))
        return [cell for record in records[0 if first_row else 1 :] for cell in record]
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        texts = []
        for data_only in (False, True):
            workbook = load_workbook(path, data_only=data_only)
            for sheet in workbook.worksheets:
                for cells in sheet.iter_rows(min_row=1 if first_row else 2, values_only=True):
                    texts.extend(str(cell) for cell in cells if cell is not None)
        return texts
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except Exception:  # noqa: BLE001 - the truncated case
        rows = filler()
    return [text for r in rows for value in r.values() for text in _leaves(value)]


def _leaves(value: Any) -> list[str]:
    """The texts of a Parquet value: a nested value's leaves (a struct's values, a list's items)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [text for item in value.values() for text in _leaves(item)]
    if isinstance(value, list):
        return [text for item in value for text in _leaves(item)]
    return [str(value)]


def write_configs(folder: Path) -> dict[str, Path]:
    """`survey.yaml` (max_rejected_share 0.2) and `survey_lenient.yaml` (1.0) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, (name, share) in CONFIGS.items():
        paths[key] = folder / name
        paths[key].write_text(SURVEY_YAML.format(share=share), encoding="utf-8")
    return paths


def build(folder: str | Path, names: Iterable[str] | None = None) -> dict[str, Path]:
    """Write the exports named (all by default) and the YAMLs into `folder`; return {case name: export path}."""
    folder = Path(folder)
    write_configs(folder)
    paths = {}
    for name in WRITERS if names is None else names:
        file_name, writer = WRITERS[name]
        paths[name] = folder / file_name
        writer(paths[name])
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hostile/make_corpus.py FOLDER")
    target = Path(sys.argv[1])
    for case, written in build(target).items():
        print(f"{case:20} {written} ({written.stat().st_size} bytes)")
