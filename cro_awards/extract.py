"""Extract: read a survey export (CSV, .xlsx or Parquet) into an Arrow table of text, renamed.

Contract:
- Output `Export.table`: `source_row` (int64, 1 = first data row; blank CSV lines are not rows) then
  every export column, renamed through the year's `columns`, as nullable strings holding the field's
  text (an .xlsx or Parquet cell is read by its value: dates as YYYY-MM-DD, whole numbers as digits).
  Only well-formed rows are in it.
- `Export.malformed`: CSV rows with more or fewer fields than the header, with their raw text; their
  other reasons are not sought.
- File-level problems raise `ExportError` naming the file and what to do: unreadable or unsupported
  file, not UTF-8 (with the encoding it looks like), no header or no data rows, a header naming a
  column twice, missing contract or attribute columns. A `columns` renaming onto a header the export
  already has raises `ConfigError` (it is the YAML that is wrong), before any data row is used.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cro_awards.config import CONTRACT_COLUMNS, WHITESPACE, LoadedConfig
from cro_awards.errors import ConfigError, ExportError

SUPPORTED_SUFFIXES = (".csv", ".xlsx", ".parquet")
_CHUNK = 1 << 20
_SEPARATORS = ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes"))


@dataclass(frozen=True)
class Export:
    """A read export: the well-formed rows as text, the malformed ones, and the file's identity."""

    path: Path
    sha256: str
    table: pa.Table
    malformed: pa.Table
    ignored_columns: tuple[str, ...] = ()
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def n_read(self) -> int:
        return self.table.num_rows + self.malformed.num_rows


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
    sheets = None
    try:
        if suffix == ".csv":
            digest, header, body, malformed = _read_csv(path)
        elif suffix == ".xlsx":
            digest, (header, body, malformed, sheets) = sha256_of(path), _read_xlsx(path)
        else:
            digest, header, body, malformed = sha256_of(path), *_read_parquet(path, config)
    except OSError as error:
        raise ExportError(f"{path}: cannot be read ({error.strerror or error}).") from None
    names, renamed, ignored = _check_header(path, header, config, sheets)
    if body.num_rows + len(malformed) == 0:
        raise ExportError(f"{path}: the export has a header but no data rows; export the survey responses again.")
    table = body.rename_columns(["source_row", *names])
    return Export(
        path=path,
        sha256=digest,
        table=table,
        malformed=_malformed_table(malformed, names),
        ignored_columns=ignored,
        renamed=renamed,
    )


def _check_header(
    path: Path, header: list[str], config: LoadedConfig, sheets: list[str] | None = None
) -> tuple[list[str], dict, tuple]:
    """The header's names after `columns`, the renamings and the ignored columns; `ExportError` when a
    contract column is missing. `sheets`: an .xlsx workbook's sheet names (the advice is the spreadsheet's)."""
    survey = config.survey
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ExportError(
                f"{path}: the header names column {name!r} twice; every column needs its own name. "
                "Rename or remove one of them in the export."
            )
        seen.add(name)
    renamed = {source: target for source, target in survey.columns.items() if source in seen and source != target}
    for source, target in renamed.items():
        if target in seen:
            raise ConfigError(
                f"{config.path}: key `columns`: renames {source!r} onto {target!r}, but {path.name} already has a "
                f"column {target!r}; remove the renaming or the duplicate column."
            )
    names = [renamed.get(name, name) for name in header]
    required = [*CONTRACT_COLUMNS, *survey.attributes]
    missing = [column for column in required if column not in names]
    if missing and sheets is not None:
        others = f" (the workbook's other sheets: {', '.join(repr(s) for s in sheets[1:])})" if sheets[1:] else ""
        raise ExportError(
            f"{path}: the first row of the first sheet ({sheets[0]!r}) is not the export's header: missing "
            f"column(s) {', '.join(missing)}. The header must be the sheet's first row and the responses the "
            f"workbook's first sheet: delete any title or note rows above the header, and move the sheet of "
            f"responses to the front{others}; or map differently named headers with `columns` in "
            f"{config.path.name}."
        )
    if missing:
        if len(header) == 1:
            separator = next((label for char, label in _SEPARATORS if char in header[0]), None)
            hint = f" (it looks separated by {separator})" if separator else ""
            raise ExportError(
                f"{path}: the header has a single column {header[0][:80]!r}; the file may not be "
                f"comma-separated{hint}. Export it as comma-separated CSV."
            )
        raise ExportError(
            f"{path}: missing column(s) {', '.join(missing)}. The header has: {', '.join(header)}. "
            f"Map differently named headers with `columns` in {config.path.name}."
        )
    ignored = tuple(name for name in names if name not in required)
    return names, renamed, ignored


# --- CSV -------------------------------------------------------------------------------------------


def _check_utf8(path: Path) -> str:
    """SHA-256 of the file; raise `ExportError` if it is not UTF-8, saying what it looks like."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
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
                raise ExportError(
                    f"{path}: the file is not valid UTF-8 (first bad byte at offset {where}, "
                    f"{chunk[max(error.start - 20, 0) : error.start + 1]!r}); it looks like {_guess_encoding(chunk)}. "
                    "Re-export it as UTF-8 CSV (in Excel: Save As, 'CSV UTF-8') or convert it, e.g. "
                    f"`iconv -f latin1 -t utf-8 {path.name}`."
                ) from None
            offset += len(chunk)
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
        source_rows = np.arange(1, table.num_rows, dtype=np.int64)
        return digest, header, table.slice(1).add_column(0, "source_row", pa.array(source_rows, pa.int64())), []
    malformed: list[tuple[int, str]] = []
    blank_lines: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> None:
        (blank_lines if _is_blank_line(row.text) else malformed).append((row.number, row.text))

    table, _ = _parse_csv(path, positional, on_invalid, use_threads=False)
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
        raise ExportError(f"{path}: cannot be parsed as CSV ({error}).") from None
    return table, skipped


def _malformed_table(malformed: list[tuple[int, str]], names: list[str]) -> pa.Table:
    """Malformed rows: fields placed by position under the header's names, plus the raw text."""
    rows = []
    for number, text in malformed:
        fields = next(csv.reader(io.StringIO(text)), [])
        rows.append((number, text, fields))
    columns: dict[str, pa.Array] = {
        "source_row": pa.array([number for number, _, _ in rows], pa.int64()),
    }
    for index, name in enumerate(names):
        columns[name] = pa.array([fields[index] if index < len(fields) else None for _, _, fields in rows], pa.string())
    columns["raw_text"] = pa.array([text for _, text, _ in rows], pa.string())
    return pa.table(columns)


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


def _read_xlsx(path: Path) -> tuple[list[str], pa.Table, list, list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a damaged or foreign file
        raise ExportError(f"{path}: cannot be opened as an Excel workbook ({type(error).__name__}: {error}).") from None
    try:
        sheets = list(workbook.sheetnames)
        sheet = workbook.worksheets[0]
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
        number = 0
        for cells in rows:
            if cells is None or all(cell is None for cell in cells):
                continue
            number += 1
            extra = [cell for cell in cells[width:] if cell is not None]
            if extra:
                overflow.append((number, cells))
                continue
            for index in range(width):
                columns[index].append(cell_text(cells[index]) if index < len(cells) else None)
    finally:
        workbook.close()
    good = [n for n in range(1, number + 1)]
    bad_numbers = {n for n, _ in overflow}
    source_rows = pa.array([n for n in good if n not in bad_numbers], pa.int64())
    table = pa.table([source_rows, *(pa.array(c, pa.string()) for c in columns)], names=["source_row", *header])
    malformed = [(n, ",".join(_csv_field(cell_text(cell) or "") for cell in cells)) for n, cells in overflow]
    return header, table, malformed, sheets


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
            f"{path}: cannot be read as Parquet ({error}); the file may be truncated or not Parquet."
        ) from None
    header = [name.strip() for name in table.column_names]
    required = {*CONTRACT_COLUMNS, *config.survey.attributes, *config.survey.columns}
    texts = [
        _column_text(path, name, column, name in required) for name, column in zip(header, table.columns, strict=True)
    ]
    source_rows = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    return header, pa.table([source_rows, *texts], names=["source_row", *header]), []


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
    if (
        pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    ):
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
