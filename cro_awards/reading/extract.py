"""Extract: read a survey export (CSV, .xlsx or Parquet) into Arrow tables of text, fields by position.

Contract:
- Output `Export.table`: `source_row` (int64, 1 = first data row; blank CSV lines are not rows) then
  one column per export column, by position: `field_1` ... `field_n`, nullable strings holding the
  field's text (an .xlsx or Parquet cell is read by its value: dates as YYYY-MM-DD, whole numbers as
  digits, a Parquet float NaN as no value). Each field carries its column's name as the header writes
  it, after the year's `columns` renaming, in its Arrow field metadata (`column_names(table)`;
  `Export.columns` too), so that no export column can collide with `source_row` or with another
  column differing only in case. Only well-formed rows are in it.
- `Export.malformed`: CSV rows with more or fewer fields than the header: `source_row`, the same
  `field_1` ... `field_n` (placed by position) and `raw_text`; their other reasons are not sought.
- File-level problems raise `ExportError` naming the file and what to do: unreadable or unsupported
  file, not UTF-8 (line, byte offset and the encoding it looks like), no header (a first row that
  looks like data) or no data rows, empty or repeated column names, missing contract or attribute
  columns, a column a configured respondent screen reads missing (the message names it and its YAML
  key, e.g. `screens.speeding.column`), a quote that swallows lines (a record over several lines that
  is malformed, or a quote never closed), a column of an .xlsx whose every filled cell is a formula
  without a saved value. A `columns` renaming onto a header the export already has raises
  `ConfigError` (it is the YAML that is wrong), before any data row is used.
- Messages (and `Export`'s notes) name files, lines, rows, columns and counts, never a field's
  content: where the first row may be data it is not echoed.
- The columns read are the contract's, the attributes' and those of the configured screens
  (`Screens.columns()`); any other column is ignored (`ignored_columns`, kept for the quarantine): a
  year without screens ignores the screen columns an export has.
- Notes for the log, `check` and the manifest: trailing CSV columns with no name and no value are
  dropped (`dropped_empty_columns`); rows hidden in the first sheet of an .xlsx are counted
  (`hidden_rows`; they are read like the others); formula cells without a saved value, read as blank,
  are counted per column (`formulas_without_saved_value`).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import mmap
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cro_awards.engine.errors import ConfigError, ExportError
from cro_awards.reading.config import CONTRACT_COLUMNS, WHITESPACE, LoadedConfig

SUPPORTED_SUFFIXES = (".csv", ".xlsx", ".parquet")
_CHUNK = 1 << 20
_SEPARATORS = ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes"))

COLUMN_NAME = b"column_name"
"""The Arrow field metadata key holding an export column's name (as written, after `columns`)."""


def field_name(position: int) -> str:
    """The positional name of export column `position` (1-based): `field_<position>`."""
    return f"field_{position}"


def column_names(table: pa.Table) -> list[str]:
    """The export column names of `Export.table` (every column after `source_row`), in header order:
    each field's metadata name; a field without one (a hand-made table) is named by its Arrow name."""
    return [
        (item.metadata or {}).get(COLUMN_NAME, item.name.encode("utf-8")).decode("utf-8")
        for item in list(table.schema)[1:]
    ]


@dataclass(frozen=True)
class Export:
    """A read export: the well-formed rows as text, the malformed ones, and the file's identity."""

    path: Path
    sha256: str
    table: pa.Table
    malformed: pa.Table
    ignored_columns: tuple[str, ...] = ()
    renamed: dict[str, str] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    dropped_empty_columns: int = 0
    hidden_rows: int = 0
    formulas_without_saved_value: dict[str, int] = field(default_factory=dict)

    @property
    def n_read(self) -> int:
        return self.table.num_rows + self.malformed.num_rows

    def column(self, name: str) -> pa.ChunkedArray:
        """The well-formed rows' texts of export column `name` (as renamed through `columns`)."""
        return self.table.column(1 + self.columns.index(name))

    def named(self, malformed: bool = False) -> pa.Table:
        """`table` (or `malformed`) with the export's column names instead of positional ones; for
        reading by eye and in tests: names may repeat `source_row` or `raw_text`."""
        if malformed:
            return self.malformed.rename_columns(["source_row", *self.columns, "raw_text"])
        return self.table.rename_columns(["source_row", *self.columns])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class _Sheet:
    """What reading an .xlsx noticed besides its cells (column indexes are 0-based header positions)."""

    names: list[str]
    hidden_rows: int = 0
    unsaved: dict[int, int] = field(default_factory=dict)  # column -> formula cells without a saved value
    filled: dict[int, int] = field(default_factory=dict)  # column -> cells holding a value


def read_export(path: str | Path, config: LoadedConfig) -> Export:
    """Read `path` by its suffix, apply `columns`, check the header; see the module contract."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ExportError(
            f"{path}: unsupported export type {suffix or '(no suffix)'!r}; "
            "give a .csv (UTF-8, comma-separated), .xlsx or .parquet file."
        )
    if not path.is_file():
        raise ExportError(f"{path}: no such file; check the --export path.")
    sheet: _Sheet | None = None
    try:
        if suffix == ".csv":
            digest, header, body, malformed = _read_csv(path)
        elif suffix == ".xlsx":
            digest, (header, body, malformed, sheet) = sha256_of(path), _read_xlsx(path)
        else:
            digest, header, body, malformed = sha256_of(path), *_read_parquet(path, config)
    except OSError as error:
        raise ExportError(f"{path}: cannot be read ({error.strerror or type(error).__name__}).") from None
    header, body, dropped = _drop_trailing_empty_columns(header, body)
    names, renamed, ignored = _check_header(path, header, config, sheet)
    formulas = _check_formulas(path, names, config, sheet) if sheet is not None else {}
    if body.num_rows + len(malformed) == 0:
        raise ExportError(f"{path}: the export has a header but no data rows; export the survey responses again.")
    return Export(
        path=path,
        sha256=digest,
        table=_positional(body.columns, names),
        malformed=_malformed_table(malformed, names),
        ignored_columns=ignored,
        renamed=renamed,
        columns=tuple(names),
        dropped_empty_columns=dropped,
        hidden_rows=sheet.hidden_rows if sheet is not None else 0,
        formulas_without_saved_value=formulas,
    )


def _schema(names: list[str], raw_text: bool = False) -> pa.Schema:
    fields = [pa.field(field_name(i), pa.string(), metadata={COLUMN_NAME: n}) for i, n in enumerate(names, 1)]
    return pa.schema(
        [pa.field("source_row", pa.int64()), *fields, *([pa.field("raw_text", pa.string())] if raw_text else [])]
    )


def _positional(columns: list, names: list[str]) -> pa.Table:
    """source_row then field_1 ... field_n, each field naming its column in its metadata (no copy)."""
    return pa.Table.from_arrays(columns, schema=_schema(names))


def _is_blank_column(column: pa.ChunkedArray) -> bool:
    trimmed = pc.utf8_trim(column.cast(pa.string()), WHITESPACE)
    return not pc.any(pc.fill_null(pc.not_equal(trimmed, ""), False)).as_py()


def _drop_trailing_empty_columns(header: list[str], body: pa.Table) -> tuple[list[str], pa.Table, int]:
    """Drop the trailing columns with no name whose every value is blank: (header, body, how many)."""
    keep = len(header)
    while keep and header[keep - 1] == "" and _is_blank_column(body.column(keep)):
        keep -= 1
    if keep == len(header):
        return header, body, 0
    return header[:keep], body.select(range(keep + 1)), len(header) - keep


def _column_label(index: int, spreadsheet: bool) -> str:
    """Column `index` (0-based) as the user finds it: its letter in a spreadsheet, else its number."""
    if not spreadsheet:
        return str(index + 1)
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _check_header(
    path: Path, header: list[str], config: LoadedConfig, sheet: _Sheet | None = None
) -> tuple[list[str], dict, tuple]:
    """The header's names after `columns`, the renamings and the ignored columns; `ExportError` when the
    header is not one (a first row of data), names a column twice or not at all, or lacks a contract or
    attribute column. `sheet`: an .xlsx workbook's (the advice is the spreadsheet's). A header that may be
    data is never echoed: only its size and the names it shares with the configuration are told."""
    survey = config.survey
    required = [*CONTRACT_COLUMNS, *survey.attributes]
    screened = survey.screens.column_keys()
    empty = [index for index, name in enumerate(header) if name == ""]
    _refuse_a_row_of_data(path, header, config, sheet, required, empty)
    _refuse_empty_names(path, header, config, sheet, required, empty)
    _refuse_repeated_names(path, header)
    renamed = _renamings(path, header, config)
    names = [renamed.get(name, name) for name in header]
    _refuse_missing_columns(path, header, names, config, required)
    _refuse_missing_screen_columns(path, names, config, screened)
    ignored = tuple(name for name in names if name not in required and name not in screened)
    return names, renamed, ignored


def _plural(count: int) -> str:
    return "s" if count > 1 else ""


def _where_empty(empty: list[int], sheet: _Sheet | None) -> str:
    """`columns C, D` (a spreadsheet's letters) or `column 3` (a number): where the empty names are."""
    return f"column{_plural(len(empty))} {', '.join(_column_label(i, sheet is not None) for i in empty)}"


def _refuse_a_row_of_data(
    path: Path, header: list[str], config: LoadedConfig, sheet: _Sheet | None, required: list[str], empty: list[int]
) -> None:
    """`ExportError` when no name of `header` is a column the survey knows (any capitals): a title row, a
    sheet other than the responses first, another separator than the comma, or data with no header."""
    survey = config.survey
    known = {*survey.columns, *survey.columns.values(), *required, *survey.screens.column_keys()}
    if {name.casefold() for name in known} & {name.casefold() for name in header}:
        return
    blanks = (
        f"; the row has {len(empty)} empty column name{_plural(len(empty))} ({_where_empty(empty, sheet)}): a header "
        "over two rows (merged cells) must be made one row"
        if empty
        else ""
    )
    if sheet is not None:
        sheets = sheet.names
        others = f" (the workbook's other sheets: {', '.join(repr(s) for s in sheets[1:])})" if sheets[1:] else ""
        raise ExportError(
            f"{path}: the first row of the first sheet ({sheets[0]!r}) is not the export's header: none of its "
            f"{len(header)} cell(s) is a column name the survey knows{blanks} (missing column(s) "
            f"{', '.join(required)}). The header must be the sheet's first row and the responses the workbook's "
            "first sheet: delete any title or note rows above the header, and move the sheet of responses to the "
            f"front{others}; or map differently named headers with `columns` in {config.path.name}."
        )
    if len(header) == 1:
        separator = next((label for char, label in _SEPARATORS if char in header[0]), None)
        hint = f" (it looks separated by {separator})" if separator else ""
        raise ExportError(
            f"{path}: the header row is a single column that names no column of the survey; the file may not be "
            f"comma-separated{hint}. Export it as comma-separated CSV."
        )
    raise ExportError(
        f"{path}: the first row looks like data, not a header: none of its {len(header)} cells is a column "
        f"name the survey knows ({', '.join(CONTRACT_COLUMNS)} and the {len(survey.attributes)} attribute "
        f"columns){blanks}. The export's first row must be its header: add it (export with column headers), "
        f"or map differently named headers with `columns` in {config.path.name}."
    )


def _refuse_empty_names(
    path: Path, header: list[str], config: LoadedConfig, sheet: _Sheet | None, required: list[str], empty: list[int]
) -> None:
    """`ExportError` when a column has no name (`empty`: their positions), saying whether the header also
    lacks required columns (a header over two rows)."""
    if not empty:
        return
    columns = config.survey.columns
    missing = [column for column in required if column not in {columns.get(n, n) for n in header}]
    merged = (
        f" It also lacks column(s) {', '.join(missing)}: a header over two rows (merged cells) must be made one row."
        if missing
        else ""
    )
    several = len(empty) > 1
    raise ExportError(
        f"{path}: the header has {len(empty)} empty column name{_plural(len(empty))} ({_where_empty(empty, sheet)} of "
        f"{len(header)}); every column needs its own name: name {'those columns' if several else 'it'} "
        f"or delete {'them' if several else 'it'} in the export (trailing columns with no name are "
        f"ignored only while every value in them is empty).{merged}"
    )


def _refuse_repeated_names(path: Path, header: list[str]) -> None:
    """`ExportError` naming the first column the header names twice."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ExportError(
                f"{path}: the header names column {name!r} twice; every column needs its own name. "
                "Rename or remove one of them in the export."
            )
        seen.add(name)


def _renamings(path: Path, header: list[str], config: LoadedConfig) -> dict[str, str]:
    """The YAML's `columns` renamings that apply to `header` (source -> target); `ConfigError` when one
    renames a column onto another the export already has."""
    present = set(header)
    renamed = {
        source: target for source, target in config.survey.columns.items() if source in present and source != target
    }
    for source, target in renamed.items():
        if target in present:
            raise ConfigError(
                f"{config.path}: key `columns`: renames {source!r} onto {target!r}, but {path.name} already has a "
                f"column {target!r}; remove the renaming or the duplicate column."
            )
    return renamed


def _refuse_missing_columns(
    path: Path, header: list[str], names: list[str], config: LoadedConfig, required: list[str]
) -> None:
    """`ExportError` naming the contract and attribute columns `names` (after `columns`) lacks, and those
    of them present with other capitals."""
    missing = [column for column in required if column not in names]
    if not missing:
        return
    found = [column for column in required if column in names]
    other_case = [column for column in missing if column.casefold() in {n.casefold() for n in names}]
    case_note = (
        f" Column(s) {', '.join(other_case)} appear with other capitals: names are compared exactly; rename "
        "them or map them with `columns`."
        if other_case
        else ""
    )
    raise ExportError(
        f"{path}: missing column(s) {', '.join(missing)}. The header has {len(header)} column(s), of which "
        f"{len(found)} are the survey's ({', '.join(found) or 'none'}).{case_note} Map differently named "
        f"headers with `columns` in {config.path.name}."
    )


def _refuse_missing_screen_columns(
    path: Path, names: list[str], config: LoadedConfig, screened: dict[str, str]
) -> None:
    """`ExportError` naming the first column a configured respondent screen reads (`screened`: column ->
    its YAML key) that `names` lacks, then the others."""
    unscreened = [column for column in screened if column not in names]
    if not unscreened:
        return
    column, key = unscreened[0], screened[unscreened[0]]
    also = "".join(f" It also lacks {other!r} (`{screened[other]}`)." for other in unscreened[1:])
    cased = [name for name in names if name.casefold() == column.casefold()]
    case_note = f" The header has {cased[0]!r}: names are compared exactly." if cased else ""
    raise ExportError(
        f"{path}: missing column {column!r}, which `{key}` in {config.path.name} names (a respondent screen "
        f"reads it).{also}{case_note} Export that column with the responses, map its header onto {column!r} with "
        f"`columns`, or remove the screen from {config.path.name} if this year does not screen by it."
    )


def _check_formulas(path: Path, names: list[str], config: LoadedConfig, sheet: _Sheet) -> dict[str, int]:
    """Formula cells without a saved value, per column (in header order); `ExportError` when every
    filled cell of a column the survey reads is such a formula (the whole column would read blank)."""
    required = {*CONTRACT_COLUMNS, *config.survey.attributes, *config.survey.screens.columns()}
    for index, count in sorted(sheet.unsaved.items()):
        if names[index] in required and not sheet.filled.get(index):
            raise ExportError(
                f"{path}: {count} cell{'s' if count > 1 else ''} of column {names[index]!r} (column "
                f"{_column_label(index, True)}) hold formulas with no saved value, and no other cell of that column "
                "holds a value: the workbook was saved without its formulas' results, which would read as blanks. "
                "Open the workbook in the spreadsheet program and save it (that saves each formula's value), "
                "then run again."
            )
    return {names[index]: count for index, count in sorted(sheet.unsaved.items())}


# --- CSV -------------------------------------------------------------------------------------------


def _check_utf8(path: Path) -> str:
    """SHA-256 of the file; raise `ExportError` if it is not UTF-8, saying where and what it looks like."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 1
    with path.open("rb") as stream:
        head = stream.read(4)
        stream.seek(0)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (len(head) >= 2 and b"\x00" in head[:2]):
            raise ExportError(
                f"{path}: the file is not UTF-8: it looks like UTF-16 (byte-order mark or NUL bytes). "
                "Re-export it as UTF-8 CSV (in Excel: Save As, 'CSV UTF-8')."
            )
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                where = offset + error.start
                line = lines + chunk.count(b"\n", 0, error.start)
                raise ExportError(
                    f"{path}: the file is not valid UTF-8: line {line} holds a byte that is not UTF-8 (at byte "
                    f"offset {where} of the file); it looks like {_guess_encoding(chunk)}. Re-export it as UTF-8 "
                    "CSV (in Excel: Save As, 'CSV UTF-8') or convert it, e.g. "
                    f"`iconv -f latin1 -t utf-8 {path.name}`."
                ) from None
            offset += len(chunk)
            lines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ExportError(f"{path}: the file is not valid UTF-8: it ends inside a multi-byte character.") from None
    return digest.hexdigest()


def _guess_encoding(sample: bytes) -> str:
    if sample.count(b"\x00") > len(sample) // 10:
        return "UTF-16"
    try:
        sample.decode("cp1252")
        return "Latin-1 / Windows-1252"
    except UnicodeDecodeError:
        return "a single-byte encoding such as Latin-1"


def _is_blank_line(text: str) -> bool:
    return not text.strip(WHITESPACE)


def _read_csv(path: Path) -> tuple[str, list[str], pa.Table, list[tuple[int, str]]]:
    digest = _check_utf8(path)
    with path.open(encoding="utf-8-sig", newline="") as stream:
        try:
            header = next((record for record in csv.reader(stream) if not _is_blank_line("".join(record))), None)
        except csv.Error as error:
            raise ExportError(f"{path}: the header row cannot be parsed as CSV ({error}).") from None
    if not header:
        raise ExportError(f"{path}: the file is empty (no header row); export the survey responses again.")
    header = [name.strip(WHITESPACE) for name in header]
    positional = [f"f{i}" for i in range(len(header))]
    # Fast path: every core parses, which numbers no record. Where a record is not a well-formed row
    # (ragged, or a line holding only whitespace), read again on one thread, which numbers them.
    table, irregular = _parse_csv(path, positional, lambda row: None, use_threads=True)
    if not irregular:
        _check_unclosed_quote(path, table)
        source_rows = np.arange(1, table.num_rows, dtype=np.int64)
        return digest, header, table.slice(1).add_column(0, "source_row", pa.array(source_rows, pa.int64())), []
    malformed: list[tuple[int, str]] = []
    blank_lines: list[int] = []
    swallowing: list[pacsv.InvalidRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> None:
        if not swallowing and ("\n" in row.text or "\r" in row.text):
            swallowing.append(row)  # a malformed record over several lines: a stray quote (raised below)
        (blank_lines if _is_blank_line(row.text) else malformed).append((row.number, row.text))

    table, _ = _parse_csv(path, positional, on_invalid, use_threads=False)
    if swallowing:
        _raise_swallowing_quote(path, swallowing[0])
    _check_unclosed_quote(path, table)
    # The reader numbers every record it parses (1 = the header), blank-looking lines included:
    # number the data rows 1, 2, ... skipping the header and lines holding only whitespace.
    records = table.num_rows + len(malformed) + len(blank_lines)
    kind = np.zeros(records + 1, dtype=np.int8)  # by record number: 0 row, 1 blank line, 2 malformed
    kind[[number for number, _ in blank_lines]] = 1
    kind[[number for number, _ in malformed]] = 2
    kind[0] = 1
    kind[np.flatnonzero(kind == 0)[0]] = 1  # the header: the first record that is not a blank line
    data_row = np.cumsum(kind != 1)  # a record's data row number (1-based) if it is not a blank line
    good = data_row[kind == 0]
    malformed = [(int(data_row[number]), text) for number, text in malformed]
    return digest, header, table.slice(1).add_column(0, "source_row", pa.array(good, pa.int64())), malformed


def _parse_csv(path: Path, positional: list[str], on_invalid, use_threads: bool) -> tuple[pa.Table, bool]:
    """Every record as text (the header too, as the first row); and whether any record was skipped as
    not a well-formed row (each is passed to `on_invalid` first)."""
    skipped = False

    def handler(row: pacsv.InvalidRow) -> str:
        nonlocal skipped
        skipped = True
        on_invalid(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=use_threads, column_names=positional, block_size=16 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in positional},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as error:
        # Arrow's message may quote the record: say what is wrong without it.
        if "straddl" in str(error):
            raise ExportError(
                f"{path}: cannot be parsed as CSV: a record is longer than 16 MB (often a quote that is never "
                "closed); check the export's quotes and export it again."
            ) from None
        raise ExportError(
            f"{path}: cannot be parsed as CSV ({type(error).__name__}); export it again as comma-separated CSV."
        ) from None
    return table, skipped


# A quote that swallows lines: RFC 4180 lets a quoted field hold line breaks, so a stray quote makes the
# reader take the following lines into one field, until the next quote or the end of the file. A
# well-formed record with such a field is legal; a malformed one, or a field running to the end of the
# file, is a file-level error naming the line where the quote opened (never the text).


def _line_break(data: bytes | mmap.mmap) -> bytes:
    """The file's line break: LF (also in CRLF files), or CR in a file with no LF."""
    return b"\n" if data.find(b"\n") >= 0 else b"\r"


def _count(data: mmap.mmap, byte: bytes, end: int) -> int:
    """How many `byte`s `data` holds before offset `end` (read in chunks)."""
    return sum(data[start : min(start + _CHUNK, end)].count(byte) for start in range(0, end, _CHUNK))


def _opening_quote(text: str) -> int:
    """Index in `text` (one record) of the quote opening the first quoted field that holds a line break,
    reading quotes as the CSV reader does (special at a field's start, doubled inside); -1 if none."""
    index, at_field_start = 0, True
    while index < len(text):
        if at_field_start and text[index] == '"':
            opened, index = index, index + 1
            while True:
                close = text.find('"', index)
                end = len(text) if close < 0 else close
                if "\n" in text[index:end] or "\r" in text[index:end]:
                    return opened
                if close < 0:
                    return -1
                if text.startswith('""', close):
                    index = close + 2
                    continue
                index = close + 1
                break
            at_field_start = False
            continue
        at_field_start = text[index] == ","
        index += 1
    return -1


def _breaks(text: str, line_break: bytes) -> int:
    return text.rstrip("\r\n").count(line_break.decode("ascii"))


def _raise_swallowing_quote(path: Path, row: pacsv.InvalidRow) -> None:
    """A malformed record over several lines: name the line its quote opened on and the lines swallowed."""
    text = row.text
    record = text.encode("utf-8")
    quote = max(_opening_quote(text), 0)
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        line_break = _line_break(data)
        start = data.find(record)
        offset = (start if start >= 0 else 0) + len(text[:quote].encode("utf-8"))
        line = 1 + _count(data, line_break, offset)
    swallowed = _breaks(text[quote:], line_break)
    fields = f"{row.actual_columns} fields where the header has {row.expected_columns}"
    raise ExportError(
        f"{path}: line {line}: a quote opens a field there that runs on to line {line + swallowed}, taking the "
        f"{swallowed} line{'s' if swallowed > 1 else ''} after it into one record of {fields}: a stray or unclosed "
        "quote. Close the quote (or remove it) in the export and run again; a field holding commas, quotes or "
        "line breaks must be quoted, with its quotes doubled."
    )


def _check_unclosed_quote(path: Path, table: pa.Table) -> None:
    """`ExportError` when the file ends inside a quoted field: the last record's last field holds line
    breaks and runs, after an opening quote, to the end of the file (a quote never closed)."""
    if table.num_rows < 2:  # the header alone
        return
    value = table.column(table.num_columns - 1)[-1].as_py() or ""
    if "\n" not in value and "\r" not in value:
        return
    size = path.stat().st_size
    for written in dict.fromkeys((value, value.replace('"', '""'))):
        tail = written.encode("utf-8")
        if len(tail) + 1 > size:
            continue
        with path.open("rb") as stream:
            stream.seek(size - len(tail) - 1)
            if stream.read() != b'"' + tail:
                continue
            with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
                line_break = _line_break(data)
                line = 1 + _count(data, line_break, size - len(tail) - 1)
        swallowed = _breaks(written, line_break)
        if not swallowed:  # a quote left open on the last line swallows nothing: the field reads as written
            return
        raise ExportError(
            f"{path}: line {line}: a quote opens a field there that is never closed: it runs to the end of the "
            f"file, taking the {swallowed} line{'s' if swallowed != 1 else ''} after it into one field: a stray "
            "or unclosed quote. Close the quote (or remove it) in the export and run again; a field holding "
            "commas, quotes or line breaks must be quoted, with its quotes doubled."
        )


def _malformed_table(malformed: list[tuple[int, str]], names: list[str]) -> pa.Table:
    """Malformed rows: source_row, fields placed by position (field_1 ... field_n), the raw text."""
    rows = []
    for number, text in malformed:
        fields = next(csv.reader(io.StringIO(text)), [])
        rows.append((number, text, fields))
    columns: list[pa.Array] = [pa.array([number for number, _, _ in rows], pa.int64())]
    for index in range(len(names)):
        columns.append(pa.array([fields[index] if index < len(fields) else None for _, _, fields in rows], pa.string()))
    columns.append(pa.array([text for _, text, _ in rows], pa.string()))
    return pa.Table.from_arrays(columns, schema=_schema(names, raw_text=True))


# --- typed files (.xlsx, Parquet): a cell is read by its value ---------------------------------------


def cell_text(value: object) -> str | None:
    """The text of a typed cell: dates as YYYY-MM-DD, whole numbers as digits, None for an empty cell."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        if value != value or value in (float("inf"), float("-inf")):
            return repr(value)
        return format(decimal.Decimal(repr(value)), "f")
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        return str(int(value)) if value == value.to_integral_value() else format(value, "f")
    return str(value)


_CELL_REFERENCE = re.compile(r"([A-Z]+)([0-9]+)")


def _sheet_marks(path: Path, member: str) -> tuple[set[int], list[tuple[int, int]]]:
    """(the hidden rows, the formula cells without a saved value as (row, column)) of a worksheet's XML,
    rows 1-based and columns 0-based as the sheet numbers them. A formula's saved value is its `<v>`;
    openpyxl and some generators write none (or an empty one), which reads as a blank cell."""
    import zipfile
    from xml.etree.ElementTree import iterparse

    from openpyxl.utils import column_index_from_string

    hidden: set[int] = set()
    unsaved: list[tuple[int, int]] = []
    row_number, column = 0, -1
    container = None
    with zipfile.ZipFile(path) as archive, archive.open(member) as stream:
        for event, element in iterparse(stream, events=("start", "end")):
            tag = element.tag.rpartition("}")[2]
            if event == "start":
                if tag == "sheetData":
                    container = element
                elif tag == "row":
                    number = element.get("r")
                    row_number, column = (int(number) if number else row_number + 1), -1
                    if element.get("hidden") in ("1", "true"):
                        hidden.add(row_number)
                continue
            if tag == "c":
                reference = _CELL_REFERENCE.fullmatch(element.get("r") or "")
                column = column_index_from_string(reference.group(1)) - 1 if reference else column + 1
                children = {child.tag.rpartition("}")[2]: child for child in element}
                saved = children.get("v")
                if "f" in children and (saved is None or (not saved.text and element.get("t") != "str")):
                    unsaved.append((row_number, column))
            elif tag == "row" and container is not None:
                container.clear()  # rows read: keep memory flat
    return hidden, unsaved


def _read_xlsx(path: Path) -> tuple[list[str], pa.Table, list, _Sheet]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a damaged or foreign file
        raise ExportError(f"{path}: cannot be opened as an Excel workbook ({type(error).__name__}: {error}).") from None
    try:
        sheets = list(workbook.sheetnames)
        sheet = workbook.worksheets[0]
        member = getattr(sheet, "_worksheet_path", None)
        sheet.reset_dimensions()  # some writers declare a used range too small; read every cell there is
        rows = sheet.iter_rows(values_only=True)
        header_cells = next(rows, None)
        if header_cells is None or all(cell is None for cell in header_cells):
            raise ExportError(
                f"{path}: the first row of the first sheet ({sheets[0]!r}) is empty: the header must be the sheet's "
                "first row and the responses the workbook's first sheet (delete rows above the header; move the "
                "sheet of responses to the front)."
            )
        header = [(cell_text(cell) or "").strip() for cell in header_cells]
        while header and header[-1] == "":
            header.pop()
        width = len(header)
        columns: list[list[str | None]] = [[] for _ in range(width)]
        overflow: list[tuple[int, tuple]] = []
        data_rows: list[int] = []  # the sheet row of each data row
        number = 0
        for sheet_row, cells in enumerate(rows, start=2):
            if cells is None or all(cell is None for cell in cells):
                continue
            number += 1
            data_rows.append(sheet_row)
            extra = [cell for cell in cells[width:] if cell is not None]
            if extra:
                overflow.append((number, cells))
                continue
            for index in range(width):
                columns[index].append(cell_text(cells[index]) if index < len(cells) else None)
    except ExportError:
        raise
    except Exception as error:  # a damaged cell: its message may quote it, so only its type is told
        raise ExportError(
            f"{path}: a cell of the first sheet cannot be read ({type(error).__name__}); the workbook may be "
            "damaged: open it in the spreadsheet program, save it, and run again."
        ) from None
    finally:
        workbook.close()
    marks = _Sheet(names=sheets)
    if member:
        try:
            hidden, unsaved = _sheet_marks(path, member)
        except Exception:  # noqa: BLE001 - only notes: a sheet openpyxl read is never refused for them
            hidden, unsaved = set(), []
        marks.hidden_rows = len(hidden.intersection(data_rows))
        for sheet_row, index in unsaved:
            if sheet_row >= 2 and index < width:
                marks.unsaved[index] = marks.unsaved.get(index, 0) + 1
    marks.filled = {index: len(values) - values.count(None) for index, values in enumerate(columns)}
    bad_numbers = {n for n, _ in overflow}
    source_rows = pa.array([n for n in range(1, number + 1) if n not in bad_numbers], pa.int64())
    table = pa.Table.from_arrays(
        [source_rows, *(pa.array(c, pa.string()) for c in columns)], names=["source_row", *map(str, range(width))]
    )
    malformed = [(n, ",".join(_csv_field(cell_text(cell) or "") for cell in cells)) for n, cells in overflow]
    return header, table, malformed, marks


def _csv_field(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _read_parquet(path: Path, config: LoadedConfig) -> tuple[list[str], pa.Table, list]:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        duplicated = next((name for name in names if names.count(name) > 1), None)
        if duplicated is not None:
            raise ExportError(
                f"{path}: the file names column {duplicated!r} twice; every column needs its own name. "
                "Rename or remove one of them in the export."
            )
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ExportError(
            f"{path}: cannot be read as Parquet ({type(error).__name__}); the file may be truncated or not Parquet."
        ) from None
    header = [name.strip() for name in table.column_names]
    required = {*CONTRACT_COLUMNS, *config.survey.attributes, *config.survey.screens.columns(), *config.survey.columns}
    texts = [
        _column_text(path, name, column, name in required) for name, column in zip(header, table.columns, strict=True)
    ]
    source_rows = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    return header, pa.Table.from_arrays([source_rows, *texts], names=["source_row", *map(str, range(len(header)))]), []


def _column_text(path: Path, name: str, column: pa.ChunkedArray, required: bool) -> pa.ChunkedArray:
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string())
    if pa.types.is_null(kind):
        return pa.chunked_array([pa.nulls(len(column), pa.string())])
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return pc.cast(column, pa.string())
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return pc.strftime(pc.cast(column, pa.timestamp("s")) if pa.types.is_date(kind) else column, format="%Y-%m-%d")
    if pa.types.is_floating(kind):  # NaN is how numeric columns say "no value": null, like a missing cell
        return pa.chunked_array(
            [pa.array([None if v is None or v != v else cell_text(v) for v in column.to_pylist()], pa.string())]
        )
    if pa.types.is_decimal(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pa.chunked_array([pa.array([cell_text(_binary_text(v)) for v in column.to_pylist()], pa.string())])
    if not required:  # an ignored column of nested values: kept as JSON text for the quarantine
        return pa.chunked_array(
            [pa.array([None if v is None else json.dumps(v, default=str) for v in column.to_pylist()], pa.string())]
        )
    raise ExportError(
        f"{path}: column {name!r} has type {kind}, which is not a field of an export; "
        "write it as text, a number or a date."
    )


def _binary_text(value: object) -> object:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    return value
