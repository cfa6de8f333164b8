"""Reading exports: CSV text, .xlsx and Parquet typed cells, `columns` renaming, file-level errors.

The survey is `helpers_exports.CONFIG_YAML` (contract columns + attributes quality, speed, cost).
"""

from __future__ import annotations

import codecs
import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pytest

from cro_awards.engine.errors import ConfigError, ExportError
from cro_awards.reading.extract import read_export
from helpers_exports import (
    HEADER,
    csv_text,
    load,
    row,
    run_rules,
    set_dimension,
    set_saved_value,
    write_config,
    write_csv,
    write_parquet,
    write_xlsx,
)

GOOD_LINE = "R1,1200,Northwind,2023-06-01,4,3,5"
HEADER_LINE = ",".join(HEADER)


@pytest.fixture
def config(tmp_path: Path):
    return load(write_config(tmp_path))


def texts(table: pa.Table) -> list[dict]:
    """The table's rows, a blank field (null or '') as ''."""
    return [{key: ("" if value is None else value) for key, value in r.items()} for r in table.to_pylist()]


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_is_read_as_text_with_source_row(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_text(f"{HEADER_LINE}\n{GOOD_LINE}\nR2, 087.50 ,  nwc ,2023-01-31,n/a,,04\n", encoding="utf-8")
    export = read_export(path, config)
    assert export.named().column_names == ["source_row", *HEADER]
    assert export.named().schema.field("source_row").type == pa.int64()
    assert all(export.named().schema.field(name).type == pa.string() for name in HEADER)
    assert texts(export.named()) == [
        {
            "source_row": 1,
            "respondent_id": "R1",
            "rd_spend_musd": "1200",
            "cro": "Northwind",
            "last_engaged": "2023-06-01",
            "quality": "4",
            "speed": "3",
            "cost": "5",
        },
        {
            "source_row": 2,
            "respondent_id": "R2",
            "rd_spend_musd": " 087.50 ",
            "cro": "  nwc ",
            "last_engaged": "2023-01-31",
            "quality": "n/a",
            "speed": "",
            "cost": "04",
        },
    ]
    assert export.malformed.num_rows == 0
    assert export.n_read == 2
    assert export.ignored_columns == ()
    assert len(export.sha256) == 64


def test_csv_blank_lines_are_not_rows_and_quoted_fields_are_one_field(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_text(
        f"{HEADER_LINE}\n"
        "\n"
        f"{GOOD_LINE}\n"
        "\n\n"
        'R2,1200,"Northwind, ""the"" CRO\non two lines",2023-06-01,4,3,5\n'
        "\n"
        "R3,1200,Bluefen,2023-06-01,4,3,5\n"
        "\n",
        encoding="utf-8",
        newline="",
    )
    export = read_export(path, config)
    assert export.named().select(["source_row", "respondent_id", "cro"]).to_pylist() == [
        {"source_row": 1, "respondent_id": "R1", "cro": "Northwind"},
        {"source_row": 2, "respondent_id": "R2", "cro": 'Northwind, "the" CRO\non two lines'},
        {"source_row": 3, "respondent_id": "R3", "cro": "Bluefen"},
    ]


def test_csv_crlf_line_endings(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_bytes(f"{HEADER_LINE}\r\n{GOOD_LINE}\r\n\r\nR2,1,Bluefen,2023-06-01,1,2,3\r\n".encode())
    export = read_export(path, config)
    assert export.named().select(["source_row", "respondent_id", "cost"]).to_pylist() == [
        {"source_row": 1, "respondent_id": "R1", "cost": "5"},
        {"source_row": 2, "respondent_id": "R2", "cost": "3"},
    ]


def test_csv_malformed_rows_are_set_apart_with_their_text(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_text(
        f"{HEADER_LINE}\n"
        f"{GOOD_LINE}\n"
        "R2,1200,Northwind,2023-06-01,4,3\n"  # 6 fields
        "\n"
        "R3,1200,Northwind,2023-06-01,4,3,5,extra\n"  # 8 fields
        f"{GOOD_LINE.replace('R1', 'R4')}\n",
        encoding="utf-8",
    )
    export = read_export(path, config)
    assert export.named()["source_row"].to_pylist() == [1, 4]
    assert export.named()["respondent_id"].to_pylist() == ["R1", "R4"]
    assert export.malformed["source_row"].to_pylist() == [2, 3]
    assert export.named(malformed=True)["raw_text"].to_pylist() == [
        "R2,1200,Northwind,2023-06-01,4,3",
        "R3,1200,Northwind,2023-06-01,4,3,5,extra",
    ]
    assert export.named(malformed=True)["respondent_id"].to_pylist() == ["R2", "R3"]
    assert export.n_read == 4


def test_utf8_bom_is_fine(tmp_path, config):
    path = tmp_path / "bom.csv"
    path.write_bytes(codecs.BOM_UTF8 + f"{HEADER_LINE}\n{GOOD_LINE}\n".encode())
    export = read_export(path, config)
    assert export.named().column_names == ["source_row", *HEADER]
    assert export.named()["respondent_id"].to_pylist() == ["R1"]


def test_header_names_are_trimmed(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_text(" respondent_id ,rd_spend_musd,cro,last_engaged,\tquality,speed,cost \n" + GOOD_LINE + "\n")
    export = read_export(path, config)
    assert export.named().column_names == ["source_row", *HEADER]


# --- columns renaming and extra columns -------------------------------------------------------


def test_columns_renaming_and_ignored_columns(tmp_path):
    config = load(write_config(tmp_path, extra='columns:\n  "Resp ID": respondent_id\n  "Quality score": quality\n'))
    header = ["Resp ID", "rd_spend_musd", "cro", "last_engaged", "Quality score", "speed", "cost", "comments"]
    path = write_csv(tmp_path / "e.csv", [["R1", "1200", "Northwind", "2023-06-01", "4", "3", "5", "great"]], header)
    export = read_export(path, config)
    assert export.named().column_names == ["source_row", *HEADER, "comments"]
    assert export.named()["respondent_id"].to_pylist() == ["R1"]
    assert export.named()["quality"].to_pylist() == ["4"]
    assert export.ignored_columns == ("comments",)
    assert export.renamed == {"Resp ID": "respondent_id", "Quality score": "quality"}
    assert run_rules(config.path, path) == {}


def test_columns_renaming_of_a_header_the_export_lacks_is_harmless(tmp_path):
    config = load(write_config(tmp_path, extra='columns:\n  "Resp ID": respondent_id\n'))
    path = write_csv(tmp_path / "e.csv", [row()])
    export = read_export(path, config)
    assert export.named()["respondent_id"].to_pylist() == ["R1"]
    assert export.renamed == {}


def test_columns_renaming_onto_an_existing_header_is_a_config_error(tmp_path):
    config_path = write_config(tmp_path, extra='columns:\n  "Resp ID": respondent_id\n')
    header = ["Resp ID", *HEADER]
    path = write_csv(tmp_path / "e.csv", [["X", "R1", "1200", "Northwind", "2023-06-01", "4", "3", "5"]], header)
    with pytest.raises(ConfigError) as raised:
        read_export(path, load(config_path))
    message = str(raised.value)
    assert str(config_path.resolve()) in message
    problem = message.replace(str(config_path.resolve()), "")
    assert "`columns`" in problem
    assert "'Resp ID'" in problem and "'respondent_id'" in problem


# --- file-level errors ----------------------------------------------------------------------------


def _latin1(path: Path) -> None:
    path.write_bytes(f"{HEADER_LINE}\nR1,1200,Caf\u00e9 Clinical,2023-06-01,4,3,5\n".encode("latin-1"))


def _utf16(path: Path) -> None:
    path.write_bytes(f"{HEADER_LINE}\n{GOOD_LINE}\n".encode("utf-16"))  # with a byte-order mark


def _semicolons(path: Path) -> None:
    path.write_text(f"{HEADER_LINE.replace(',', ';')}\n{GOOD_LINE.replace(',', ';')}\n", encoding="utf-8")


def _tabs(path: Path) -> None:
    path.write_text(f"{HEADER_LINE.replace(',', chr(9))}\n{GOOD_LINE.replace(',', chr(9))}\n", encoding="utf-8")


def _truncated_parquet(path: Path) -> None:
    write_parquet(path, {name: ["x"] * 3 for name in HEADER})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _notes_first(path):
    """A workbook whose first sheet holds notes and whose second holds the responses."""
    from openpyxl import Workbook

    workbook = Workbook()
    notes = workbook.active
    notes.title = "Notes"
    notes.append(["Exported from the survey platform"])
    notes.append(["Questions: see the questionnaire"])
    responses = workbook.create_sheet("Responses")
    responses.append(list(HEADER))
    responses.append(["R1", 1, "Northwind", "2023-06-01", 4, 3, 5])
    workbook.save(path)


FILE_ERRORS = {
    # name: (file name, writer, fragments the message must hold)
    "unsupported suffix": (
        "export.txt",
        lambda p: p.write_text(f"{HEADER_LINE}\n{GOOD_LINE}\n"),
        ["unsupported", ".txt"],
    ),
    "missing file": ("absent.csv", lambda p: None, ["no such file"]),
    "latin-1": ("latin1.csv", _latin1, ["not valid UTF-8", "Latin-1"]),
    "utf-16 with BOM": ("utf16.csv", _utf16, ["not UTF-8", "UTF-16"]),
    "empty file": ("empty.csv", lambda p: p.write_bytes(b""), ["empty"]),
    "header only": ("header.csv", lambda p: p.write_text(f"{HEADER_LINE}\n"), ["no data rows"]),
    "header only, blank lines": ("header2.csv", lambda p: p.write_text(f"{HEADER_LINE}\n\n\n"), ["no data rows"]),
    "column twice": (
        "twice.csv",
        lambda p: p.write_text(f"{HEADER_LINE},cro\n{GOOD_LINE},Bluefen\n"),
        ["'cro'", "twice"],
    ),
    "missing contract column": (
        "nodate.csv",
        lambda p: write_csv(p, [["R1", "1", "Northwind", "4", "3", "5"]], [h for h in HEADER if h != "last_engaged"]),
        ["missing column", "last_engaged"],
    ),
    "missing attribute column": (
        "nocost.csv",
        lambda p: write_csv(p, [["R1", "1", "Northwind", "2023-06-01", "4", "3"]], HEADER[:-1]),
        ["missing column", "cost"],
    ),
    "semicolon separated": ("semi.csv", _semicolons, ["may not be comma-separated", "semicolons"]),
    "tab separated": ("tabs.csv", _tabs, ["may not be comma-separated", "tabs"]),
    "truncated parquet": ("cut.parquet", _truncated_parquet, ["Parquet", "truncated"]),
    "not a workbook": ("fake.xlsx", lambda p: p.write_text(f"{HEADER_LINE}\n{GOOD_LINE}\n"), ["Excel workbook"]),
    "workbook header only": ("header.xlsx", lambda p: write_xlsx(p, []), ["no data rows"]),
    "workbook missing attribute": (
        "nocost.xlsx",
        lambda p: write_xlsx(p, [["R1", 1, "Northwind", "2023-06-01", 4, 3]], HEADER[:-1]),
        ["missing column", "cost"],
    ),
    "workbook opening with a title row": (
        "titled.xlsx",
        lambda p: write_xlsx(p, [HEADER, ["R1", 1, "Northwind", "2023-06-01", 4, 3, 5]], ["CRO survey 2024 export"]),
        ["first row of the first sheet", "delete any title or note rows above the header"],
    ),
    "workbook whose first sheet is notes": (
        "notes.xlsx",
        _notes_first,
        ["first sheet ('Notes')", "'Responses'", "move the sheet of responses to the front"],
    ),
    "parquet no rows": (
        "zero.parquet",
        lambda p: write_parquet(p, {n: pa.array([], pa.string()) for n in HEADER}),
        ["no data rows"],
    ),
    "parquet missing contract column": (
        "noid.parquet",
        lambda p: write_parquet(p, {n: ["x"] for n in HEADER if n != "respondent_id"}),
        ["missing column", "respondent_id"],
    ),
    "ends inside a character": (
        "cut.csv",
        lambda p: p.write_bytes(f"{HEADER_LINE}\n{GOOD_LINE},\u00e9".encode()[:-1]),
        ["not valid UTF-8"],
    ),
}


@pytest.mark.parametrize("name", list(FILE_ERRORS))
def test_file_level_error(tmp_path, config, name):
    file_name, writer, fragments = FILE_ERRORS[name]
    path = tmp_path / file_name
    writer(path)
    with pytest.raises(ExportError) as raised:
        read_export(path, config)
    message = str(raised.value)
    assert str(path) in message
    problem = message.replace(str(path), "")  # the fragments must come from the text, not the file's name
    for fragment in fragments:
        assert fragment in problem


# --- .xlsx typed cells ----------------------------------------------------------------------------


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    """Rows of typed cells; formulas without a saved value (as openpyxl writes them) and with one."""
    path = write_xlsx(
        tmp_path / "typed.xlsx",
        [
            # 1: numbers, a datetime with a time of day, a float 4.0 (read "4"), an int
            ["R1", 1200, "Northwind", dt.datetime(2024, 2, 3, 10, 0), 4.0, 3, 5],
            # 2: a float 3.5 rating, a date cell, a decimal rd spend
            ["R2", 87.5, "Bluefen", dt.date(2023, 6, 1), 3.5, 2, 1],
            # 3: formulas: quality saved value 4 (set below), speed none saved, cro saved text, id a number
            [123, 1200, '="Alder"&"crest"', dt.date(2023, 6, 1), "=2+2", "=1+1", "n/a"],
            # 4: text cells as in a CSV
            ["R4", "1200", " nwc ", "2023-06-01", " 04 ", "N/A", ""],
            # 5: every rating a formula without a saved value -> no ratings; date a datetime at midnight
            ["R5", 1200.0, "Northwind", dt.datetime(2024, 2, 29, 0, 0), "=1", "=2", "=3"],
            # 6: a float written "4.0" in the file (set below) and a whole float rd spend 1200.0
            ["R6", 1200.0, "Bluefen", dt.datetime(2022, 8, 29, 23, 59), 0, 9, 4],
        ],
    )
    set_saved_value(path, "E4", "4")  # =2+2 saved as 4
    set_saved_value(path, "C4", "Aldercrest", kind="str")
    set_saved_value(path, "E7", "4.0")  # 0 -> a number written with a decimal point
    return path


def test_xlsx_cells_are_read_by_value(workbook, config):
    export = read_export(workbook, config)
    assert export.named().column_names == ["source_row", *HEADER]
    assert texts(export.named()) == [
        {
            "source_row": 1,
            "respondent_id": "R1",
            "rd_spend_musd": "1200",
            "cro": "Northwind",
            "last_engaged": "2024-02-03",
            "quality": "4",
            "speed": "3",
            "cost": "5",
        },
        {
            "source_row": 2,
            "respondent_id": "R2",
            "rd_spend_musd": "87.5",
            "cro": "Bluefen",
            "last_engaged": "2023-06-01",
            "quality": "3.5",
            "speed": "2",
            "cost": "1",
        },
        {
            "source_row": 3,
            "respondent_id": "123",
            "rd_spend_musd": "1200",
            "cro": "Aldercrest",
            "last_engaged": "2023-06-01",
            "quality": "4",
            "speed": "",
            "cost": "n/a",
        },
        {
            "source_row": 4,
            "respondent_id": "R4",
            "rd_spend_musd": "1200",
            "cro": " nwc ",
            "last_engaged": "2023-06-01",
            "quality": " 04 ",
            "speed": "N/A",
            "cost": "",
        },
        {
            "source_row": 5,
            "respondent_id": "R5",
            "rd_spend_musd": "1200",
            "cro": "Northwind",
            "last_engaged": "2024-02-29",
            "quality": "",
            "speed": "",
            "cost": "",
        },
        {
            "source_row": 6,
            "respondent_id": "R6",
            "rd_spend_musd": "1200",
            "cro": "Bluefen",
            "last_engaged": "2022-08-29",
            "quality": "4",
            "speed": "9",
            "cost": "4",
        },
    ]


def test_xlsx_rules(workbook, config):
    assert run_rules(config.path, workbook) == {
        2: ["invalid_rating"],  # 3.5
        5: ["no_ratings"],  # formulas with no saved value are blank
        6: ["invalid_rating"],  # 9
    }


def test_xlsx_blank_rows_are_not_rows(tmp_path, config):
    path = write_xlsx(
        tmp_path / "gaps.xlsx",
        [["R1", 1, "Northwind", "2023-06-01", 4, 3, 5], [None] * 7, ["R2", 1, "Bluefen", "2023-06-01", 4, 3, 5]],
    )
    export = read_export(path, config)
    assert export.named().select(["source_row", "respondent_id"]).to_pylist() == [
        {"source_row": 1, "respondent_id": "R1"},
        {"source_row": 2, "respondent_id": "R2"},
    ]


# --- Parquet typed columns ------------------------------------------------------------------------


@pytest.fixture
def parquet_file(tmp_path: Path) -> Path:
    return write_parquet(
        tmp_path / "typed.parquet",
        {
            "respondent_id": pa.array(["R1", "R2", None, "R4", "R5"], pa.string()),
            "rd_spend_musd": pa.array([1200.0, 87.5, 5.0, None, 12.0], pa.float64()),
            "cro": pa.array(["Northwind", "Bluefen", "nwc", "Aldercrest", "Nobody"]).dictionary_encode(),
            "last_engaged": pa.array(
                [
                    dt.datetime(2024, 2, 3, 10, 0),
                    dt.datetime(2023, 6, 1),
                    dt.datetime(2022, 8, 28, 23, 0),
                    dt.datetime(2024, 2, 29, 23, 59),
                    None,
                ],
                pa.timestamp("us"),
            ),
            "quality": pa.array([4.0, 3.5, None, 5.0, 1.0], pa.float64()),
            "speed": pa.array([3, 2, None, 6, 1], pa.int64()),
            "cost": pa.array(["n/a", "5", None, "4", "x"], pa.string()),
            "comments": pa.array([decimal.Decimal("1.50"), None, None, None, None], pa.decimal128(5, 2)),
        },
    )


def test_parquet_cells_are_read_by_value(parquet_file, config):
    export = read_export(parquet_file, config)
    assert export.named().column_names == ["source_row", *HEADER, "comments"]
    assert export.ignored_columns == ("comments",)
    assert texts(export.named()) == [
        {
            "source_row": 1,
            "respondent_id": "R1",
            "rd_spend_musd": "1200",
            "cro": "Northwind",
            "last_engaged": "2024-02-03",
            "quality": "4",
            "speed": "3",
            "cost": "n/a",
            "comments": "1.50",
        },
        {
            "source_row": 2,
            "respondent_id": "R2",
            "rd_spend_musd": "87.5",
            "cro": "Bluefen",
            "last_engaged": "2023-06-01",
            "quality": "3.5",
            "speed": "2",
            "cost": "5",
            "comments": "",
        },
        {
            "source_row": 3,
            "respondent_id": "",
            "rd_spend_musd": "5",
            "cro": "nwc",
            "last_engaged": "2022-08-28",
            "quality": "",
            "speed": "",
            "cost": "",
            "comments": "",
        },
        {
            "source_row": 4,
            "respondent_id": "R4",
            "rd_spend_musd": "",
            "cro": "Aldercrest",
            "last_engaged": "2024-02-29",
            "quality": "5",
            "speed": "6",
            "cost": "4",
            "comments": "",
        },
        {
            "source_row": 5,
            "respondent_id": "R5",
            "rd_spend_musd": "12",
            "cro": "Nobody",
            "last_engaged": "",
            "quality": "1",
            "speed": "1",
            "cost": "x",
            "comments": "",
        },
    ]


def test_parquet_rules(parquet_file, config):
    assert run_rules(config.path, parquet_file) == {
        2: ["invalid_rating"],  # 3.5
        3: ["missing_respondent_id", "outside_recency_window", "no_ratings"],
        4: ["invalid_rd_spend", "invalid_rating"],  # null spend; speed 6
        5: ["unknown_cro", "invalid_last_engaged", "invalid_rating"],  # cost "x"
    }


def test_parquet_date_and_decimal_columns(tmp_path, config):
    path = write_parquet(
        tmp_path / "dates.parquet",
        {
            "respondent_id": pa.array([1, 2], pa.int64()),
            "rd_spend_musd": pa.array([decimal.Decimal("1200.00"), decimal.Decimal("87.50")], pa.decimal128(8, 2)),
            "cro": ["Northwind", "Bluefen"],
            "last_engaged": pa.array([dt.date(2024, 2, 29), dt.date(2022, 8, 29)], pa.date32()),
            "quality": pa.array([4, 5], pa.int32()),
            "speed": pa.array([None, None], pa.null()),
            "cost": pa.array([2.0, 1.0], pa.float32()),
        },
    )
    export = read_export(path, config)
    assert texts(export.named()) == [
        {
            "source_row": 1,
            "respondent_id": "1",
            "rd_spend_musd": "1200",
            "cro": "Northwind",
            "last_engaged": "2024-02-29",
            "quality": "4",
            "speed": "",
            "cost": "2",
        },
        {
            "source_row": 2,
            "respondent_id": "2",
            "rd_spend_musd": "87.50",
            "cro": "Bluefen",
            "last_engaged": "2022-08-29",
            "quality": "5",
            "speed": "",
            "cost": "1",
        },
    ]
    assert run_rules(config.path, path) == {}


def test_csv_text_of_helper_roundtrip():
    """The helper writes what the tests mean (a guard on the other tests' inputs)."""
    assert csv_text([row(cro="a, b")]).splitlines() == [HEADER_LINE, 'R1,1200,"a, b",2023-06-01,4,3,5']


# --- fixed bugs, kept as regressions --------------------------------------------------------------------


def test_xlsx_with_understated_dimension_is_read_whole(tmp_path, config):
    path = write_xlsx(tmp_path / "dim.xlsx", [["R1", 1200, "Northwind", "2023-06-01", 4, 3, 5]])
    set_dimension(path, "A1")
    export = read_export(path, config)
    assert texts(export.named()) == [
        {
            "source_row": 1,
            "respondent_id": "R1",
            "rd_spend_musd": "1200",
            "cro": "Northwind",
            "last_engaged": "2023-06-01",
            "quality": "4",
            "speed": "3",
            "cost": "5",
        },
    ]


def test_small_typed_float_is_read_as_a_plain_decimal(tmp_path, config):
    path = write_parquet(
        tmp_path / "small.parquet",
        {name: pa.array([0.00005]) if name == "rd_spend_musd" else [row()[name]] for name in HEADER},
    )
    assert read_export(path, config).named()["rd_spend_musd"].to_pylist() == ["0.00005"]


def test_parquet_naming_a_column_twice(tmp_path, config):
    import pyarrow.parquet as pq

    path = tmp_path / "dup.parquet"
    pq.write_table(
        pa.table([pa.array([row()[n]]) for n in HEADER] + [pa.array(["Bluefen"])], names=[*HEADER, "cro"]), path
    )
    with pytest.raises(ExportError) as raised:
        read_export(path, config)
    message = str(raised.value)
    assert str(path) in message
    assert "twice" in message.replace(str(path), "")


def test_csv_whitespace_only_lines_and_a_blank_line_before_the_header_are_not_rows(tmp_path, config):
    body = csv_text([row(respondent_id="R1"), row(respondent_id="R2")]).splitlines()
    path = tmp_path / "blanks.csv"
    path.write_text("\n".join(["", body[0], body[1], "   ", "\t", body[2], "1,2"]) + "\n", encoding="utf-8")
    export = read_export(path, config)
    assert export.named()["source_row"].to_pylist() == [1, 2]
    assert export.named()["respondent_id"].to_pylist() == ["R1", "R2"]
    assert export.malformed["source_row"].to_pylist() == [3]
    assert export.named(malformed=True)["raw_text"].to_pylist() == ["1,2"]


# --- fields by position; messages that name no field's content ----------------------------------------


def test_fields_are_positional_and_carry_their_column_names(tmp_path, config):
    from cro_awards.reading.extract import COLUMN_NAME, column_names

    header = [*HEADER, "source_row", "CRO", "raw_text"]
    path = write_csv(tmp_path / "e.csv", [[*row().values(), "77", "Acme", "x"]], header)
    path.write_text(path.read_text() + "R2,1,Bluefen\n")  # malformed: placed by position
    export = read_export(path, config)
    assert export.columns == tuple(header)
    assert export.table.column_names == ["source_row", *(f"field_{i}" for i in range(1, 11))]
    assert [f.metadata[COLUMN_NAME].decode() for f in list(export.table.schema)[1:]] == header
    assert column_names(export.table) == header
    assert export.table["source_row"].to_pylist() == [1]
    assert export.column("source_row").to_pylist() == ["77"] and export.column("CRO").to_pylist() == ["Acme"]
    assert export.column("cro").to_pylist() == ["Northwind Clinical"]
    assert export.malformed.column_names == ["source_row", *(f"field_{i}" for i in range(1, 11)), "raw_text"]
    assert export.malformed["raw_text"].to_pylist() == ["R2,1,Bluefen"]
    assert export.named(malformed=True).column_names == ["source_row", *header, "raw_text"]
    assert export.ignored_columns == ("source_row", "CRO", "raw_text")


def test_header_looking_like_data_is_not_echoed(tmp_path, config):
    path = tmp_path / "headerless.csv"
    path.write_text("R777001,1200,Ironbark,2023-06-01,4,3,4\nR777002,1350,Bluefen,2023-07-01,5,4,4\n")
    with pytest.raises(ExportError) as raised:
        read_export(path, config)
    problem = str(raised.value).replace(str(path), "")
    assert "the first row looks like data, not a header: none of its 7 cells" in problem
    assert "R777001" not in problem and "Ironbark" not in problem and "twice" not in problem


def test_missing_column_message_names_counts_and_the_surveys_columns_only(tmp_path, config):
    header = ["respondent_id", "rd_spend_musd", "CRO", "last_engaged", "quality", "speed", "Kosten"]
    path = write_csv(tmp_path / "e.csv", [list(row().values())], header)
    with pytest.raises(ExportError) as raised:
        read_export(path, config)
    problem = str(raised.value).replace(str(path), "")
    assert "missing column(s) cro, cost" in problem
    assert "The header has 7 column(s), of which 5 are the survey's" in problem
    assert "Column(s) cro appear with other capitals" in problem
    assert "Kosten" not in problem  # a name the survey does not know is not repeated


def test_empty_column_names_are_named_by_position(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_text(f"{HEADER_LINE},,note,\n{GOOD_LINE},,hello,x\n")
    with pytest.raises(ExportError) as raised:
        read_export(path, config)
    problem = str(raised.value).replace(str(path), "")
    assert "the header has 2 empty column names (columns 8, 10 of 10)" in problem
    assert "name those columns or delete them" in problem and "hello" not in problem


def test_trailing_nameless_columns_without_values_are_dropped(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_text(f"{HEADER_LINE},,,\n{GOOD_LINE},, ,\nR2,1,Bluefen,2023-06-01,4,3,5,,,\n")
    export = read_export(path, config)
    assert export.columns == HEADER and export.dropped_empty_columns == 3
    assert export.table.num_columns == 1 + len(HEADER)
    assert run_rules(config.path, path) == {}


def test_latin1_message_names_the_line_and_offset_never_the_bytes(tmp_path, config):
    path = tmp_path / "late.csv"
    rows = [row(respondent_id=f"R00000{i}") for i in range(1, 9)] + [row(respondent_id="R000009", cro="Dunmor\u00e9")]
    path.write_bytes(csv_text(rows).encode("latin-1"))
    with pytest.raises(ExportError) as raised:
        read_export(path, config)
    problem = str(raised.value).replace(str(path), "")
    assert "line 10 holds a byte that is not UTF-8" in problem and "byte offset" in problem
    for leaked in ("R000009", "Dunmor", "\\x", "b'"):
        assert leaked not in problem


def test_a_quote_left_open_on_the_last_line_swallowing_nothing_reads_as_written(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_text(f'{HEADER_LINE}\n{GOOD_LINE}\nR2,1200,Bluefen,2023-06-01,4,3,"5\n', encoding="utf-8")
    export = read_export(path, config)
    assert export.column("cost").to_pylist() == ["5", "5\n"]
    assert run_rules(config.path, path) == {}


def test_a_stray_quote_swallowing_lines_to_the_end_of_the_file_is_a_file_level_error(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_text(
        f'{HEADER_LINE}\n{GOOD_LINE}\nR2,1200,Bluefen,2023-06-01,4,3,"5\nR3,1,Bluefen,2023-06-01,1,1,1\n'
        "R4,1,Bluefen,2023-06-01,1,1,1\n",
        encoding="utf-8",
    )
    with pytest.raises(ExportError) as raised:
        read_export(path, config)
    problem = str(raised.value).replace(str(path), "")
    assert "line 3: a quote opens a field there that is never closed" in problem
    assert "the 2 lines after it" in problem and "R3" not in problem


def test_a_malformed_record_over_several_lines_names_where_its_quote_opened(tmp_path, config):
    path = tmp_path / "e.csv"
    path.write_bytes(
        (
            f"{HEADER_LINE}\r\n{GOOD_LINE}\r\n"
            'R2,1200,"Blue\r\nfen",2023-06-01,4,3,5\r\n'  # a well-formed quoted line break: legal
            'R3,1200,Bluefen,2023-06-01,4,3,"5\r\nR4,1,Bluefen,2023-06-01,1,1,1\r\nR5,1,"Bluefen",x,1,1,1\r\n'
        ).encode()
    )
    with pytest.raises(ExportError) as raised:
        read_export(path, config)
    problem = str(raised.value).replace(str(path), "")
    assert "line 5: a quote opens a field there that runs on to line 7, taking the 2 lines after it" in problem
    assert "one record of 11 fields where the header has 7" in problem


def test_xlsx_hidden_rows_are_counted_and_read(tmp_path, config):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(HEADER))
    for number in range(1, 5):
        sheet.append([f"R{number}", 1200, "Northwind", "2023-06-01", 4, 3, 5])
    sheet.append([])  # a blank row is no row, hidden or not
    sheet.append(["R5", 1200, "Bluefen", "2023-06-01", 4, 3, 5])
    for sheet_row in (3, 6, 7):  # source rows 2 and 5 (row 6 is blank)
        sheet.row_dimensions[sheet_row].hidden = True
    path = tmp_path / "hidden.xlsx"
    workbook.save(path)
    export = read_export(path, config)
    assert export.hidden_rows == 2
    assert export.column("respondent_id").to_pylist() == ["R1", "R2", "R3", "R4", "R5"]


def test_xlsx_formulas_without_saved_value(workbook, config):
    # The fixture: E4 has a saved value; F4 and E6, F6, G6 none.
    assert read_export(workbook, config).formulas_without_saved_value == {"quality": 1, "speed": 2, "cost": 1}


def test_xlsx_column_of_formulas_without_saved_value_is_a_file_level_error(tmp_path, config):
    rows = [[f"R{i}", 1200, "Northwind", f"=DATE(2023,6,{i})", 4, 3, 5] for i in range(1, 4)]
    path = write_xlsx(tmp_path / "f.xlsx", rows)
    with pytest.raises(ExportError) as raised:
        read_export(path, config)
    problem = str(raised.value).replace(str(path), "")
    assert "3 cells of column 'last_engaged' (column D) hold formulas with no saved value" in problem
    assert "Open the workbook in the spreadsheet program and save it" in problem
    # One saved value: the column is not blank throughout; the other two are counted (a warning).
    set_saved_value(path, "D2", "45078")
    assert read_export(path, config).formulas_without_saved_value == {"last_engaged": 2}


# --- the respondent screens' columns ----------------------------------------------------------------------

SCREENS_YAML = """\
screens:
  qualification: {column: decision_role, allowed: [final decision maker]}
  straight_lining: {min_ratings: 3}
  speeding: {column: duration_seconds, min_seconds: 120}
"""
SCREENED_HEADER = (*HEADER, "decision_role", "duration_seconds")
SCREENED_ROW = ["R1", "1200", "Northwind", "2023-06-01", "4", "3", "5", "Final decision maker", "300"]


@pytest.mark.parametrize(
    ("dropped", "key"),
    [("decision_role", "screens.qualification.column"), ("duration_seconds", "screens.speeding.column")],
)
def test_a_screens_column_missing_is_a_file_level_error_naming_it_and_its_key(tmp_path, dropped, key):
    config_path = write_config(tmp_path, extra=SCREENS_YAML)
    keep = [index for index, name in enumerate(SCREENED_HEADER) if name != dropped]
    path = write_csv(tmp_path / "e.csv", [[SCREENED_ROW[i] for i in keep]], [SCREENED_HEADER[i] for i in keep])
    with pytest.raises(ExportError) as raised:
        read_export(path, load(config_path))
    message = str(raised.value)
    assert message.startswith(str(path))
    problem = message.replace(str(path), "")
    assert f"missing column '{dropped}'" in problem and f"`{key}`" in problem and config_path.name in problem
    assert "map its header" in problem and "remove the screen" in problem  # what to do
    assert "It also lacks" not in problem


def test_both_screen_columns_missing_are_named_together(tmp_path):
    config_path = write_config(tmp_path, extra=SCREENS_YAML)
    path = write_csv(tmp_path / "e.csv", [SCREENED_ROW[:7]], HEADER)
    with pytest.raises(ExportError) as raised:
        read_export(path, load(config_path))
    problem = str(raised.value).replace(str(path), "")
    assert "missing column 'decision_role'" in problem and "`screens.qualification.column`" in problem
    assert "It also lacks 'duration_seconds' (`screens.speeding.column`)" in problem


def test_a_screens_column_in_other_capitals_is_missing_and_the_message_says_why(tmp_path):
    config_path = write_config(tmp_path, extra=SCREENS_YAML)
    header = [*HEADER, "Decision_Role", "duration_seconds"]
    path = write_csv(tmp_path / "e.csv", [SCREENED_ROW], header)
    with pytest.raises(ExportError, match="The header has 'Decision_Role': names are compared exactly"):
        read_export(path, load(config_path))


def test_a_screens_column_is_mapped_by_columns_like_any_other(tmp_path):
    renames = 'columns:\n  "Decision role": decision_role\n  "Duration (s)": duration_seconds\n'
    config = load(write_config(tmp_path, extra=SCREENS_YAML + renames))
    header = [*HEADER, "Decision role", "Duration (s)", "comments"]
    path = write_csv(tmp_path / "e.csv", [[*SCREENED_ROW, "ok"]], header)
    export = read_export(path, config)
    assert export.columns == (*SCREENED_HEADER, "comments")
    assert export.column("decision_role").to_pylist() == ["Final decision maker"]
    assert export.ignored_columns == ("comments",)  # the screens' columns are read, not ignored
    assert run_rules(config.path, path) == {}


def test_a_year_without_screens_ignores_screen_columns_and_needs_none(tmp_path, config):
    with_columns = write_csv(tmp_path / "with.csv", [SCREENED_ROW], SCREENED_HEADER)
    export = read_export(with_columns, config)
    assert export.ignored_columns == ("decision_role", "duration_seconds")
    without = write_csv(tmp_path / "without.csv", [SCREENED_ROW[:7]], HEADER)
    assert read_export(without, config).ignored_columns == ()
    assert run_rules(config.path, with_columns) == run_rules(config.path, without) == {}


def test_only_the_configured_screens_columns_are_required(tmp_path):
    config_path = write_config(tmp_path, extra="screens:\n  straight_lining: {min_ratings: 3}\n")
    path = write_csv(tmp_path / "e.csv", [SCREENED_ROW[:7]], HEADER)  # straight-lining reads the ratings
    assert read_export(path, load(config_path)).ignored_columns == ()


def test_xlsx_screen_column_of_formulas_without_saved_value_is_a_file_level_error(tmp_path):
    config = load(write_config(tmp_path, extra=SCREENS_YAML))
    rows = [[f"R{i}", 1200, "Northwind", "2023-06-01", 4, 3, 5, "Final decision maker", "=60*5"] for i in (1, 2)]
    path = write_xlsx(tmp_path / "f.xlsx", rows, SCREENED_HEADER)
    with pytest.raises(ExportError, match="2 cells of column 'duration_seconds' .* hold formulas with no saved value"):
        read_export(path, config)
    # a year without screens does not read the column: the formulas are only counted
    plain = load(write_config(tmp_path, name="plain.yaml"))
    assert read_export(path, plain).formulas_without_saved_value == {"duration_seconds": 2}
