"""Onboarding a survey year: start its YAML from the previous year's, and dry-run an export against it.

Contract:
- `new_year_text(previous_yaml_text, year)` returns the text of a new year's YAML made from the
  previous year's text, edited line by line so that comments, key order, quoting and formatting (line
  ends included) stay as they were: `survey_year` becomes `year`; `survey_close` moves by
  (year - previous survey_year) years, 29 February becoming 28 February in a year without one; a
  top-level `sample_export` (the previous year's bundled sample) is commented out under a note, since a
  new year has no sample yet; every CRO without an `id:` gets the id its name derives written out
  (`id: ...` first in its entry: the ids are carried, and a later rename of the name keeps the id).
  `formerly` and the respondent screens (`screens:`), like everything else, are carried as written
  (the review items name the screens carried and what to check). Nothing else changes. The previous text must
  itself be a valid survey configuration; `survey_year` and `survey_close` must each be written once,
  as a top-level `key: value` line (the usual form), and a CRO without an id must be an entry of a
  block list under a top-level `cros:` (`- {name: ...}` or `- name: ...`). The result is checked: it
  loads with `yaml.safe_load`, validates as a `SurveyConfig`, and differs from the previous year only
  in those keys and ids; otherwise `ConfigError`.
- `new_year(surveys_dir, year, from_year)` writes `<surveys_dir>/<year>.yaml` from
  `<surveys_dir>/<from_year>.yaml` and returns its path with the review items a person must go through
  before the year is run. It never overwrites: an existing target or a missing source is a
  `ConfigError` naming the file. The file appears complete or not at all.
- `check_export(config_path, export_path)` is a dry run of a year's configuration and an export,
  without Prefect: the configuration is loaded and validated, the export read and its rows judged by
  the same code as a run (`cro_awards.pipeline.run_pipeline`, through validation), all in memory.
  Nothing is published, quarantined or written. It
  returns a `CheckReport`: rows read / accepted / quarantined, the count per reason code, the first
  source rows per reason, what reading the export noticed (rows hidden in an .xlsx's first sheet, which
  are scored; formula cells without a saved value, read as blank, per column; trailing columns with no
  name and no value, ignored), `unmatched` (every CRO spelling quarantined as unknown_cro, with its
  rows and whether `not_rated` lists it: `unmatched.unmatched_spellings`), `near_misses`
  (`near_misses`: those within a typo of a configured name or alias, each with the alias to add),
  `screens` (per configured respondent screen, `screen_counts`: the rows per reason code, the rows it
  alone removes and, for the respondent-level screens, the respondents; all taken from the run's own
  validation, never judged a second time), `screened_alone` (the rows only the screens remove) and
  `passed` (a run would pass: the rejected share is within `max_rejected_share`, and no unmatched
  spelling has `min_evaluations` rows or more without `not_rated` listing it: `lost`, `stop` the
  paragraph a run would stop with); `exit_code` is what a run would exit with (`UnmatchedCroError`'s for
  a lost CRO, then `RejectedShareError`'s). A configuration error (`ConfigError`) or a file-level export
  error (`ExportError`) propagates, for the caller to print. The report holds codes, counts, column
  names and source row numbers only, and the CRO spellings that match no CRO (the name of a CRO is no
  respondent's data): never a respondent id or any other field's value.
- The near misses and the paragraph of a lost CRO come from `cro_awards.unmatched` (`near_misses`,
  `edit_distance`, `near_miss_limit`, `NearMiss`, re-exported here; `unmatched_cro_message`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pydantic import ValidationError

from cro_awards.config import Screens, SurveyConfig, load_config, load_yaml
from cro_awards.errors import ConfigError, RejectedShareError, UnmatchedCroError
from cro_awards.identity import identity_key
from cro_awards.pipeline import gate_failure, run_pipeline
from cro_awards.unmatched import (  # noqa: F401 - near-miss names re-exported: onboarding's contract
    NearMiss,
    UnmatchedSpelling,
    edit_distance,
    lost_cros,
    near_miss_limit,
    near_misses,
    unmatched_cro_message,
    unmatched_spellings,
)

EXAMPLES_PER_REASON = 5
"""How many source rows `CheckReport.examples` keeps per reason code (the first ones)."""

# --- a new survey year ---------------------------------------------------------------------------------

_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _key_line(key: str) -> re.Pattern[str]:
    """A top-level `key: value  # comment` line: key at column 0 (optionally quoted), a one-token value."""
    return re.compile(
        rf"""^(?P<head>(?P<q>["']?){re.escape(key)}(?P=q)[ \t]*:[ \t]*)"""
        r"""(?P<value>'[^'\r\n]*'|"[^"\r\n]*"|[^\s#'"][^\s#]*)"""
        r"""(?P<tail>[ \t]*(?:#.*)?)$"""
    )


def _top_level_key(key: str) -> re.Pattern[str]:
    """Any top-level line for `key` (whatever its value looks like)."""
    return re.compile(rf"""^(["']?){re.escape(key)}\1[ \t]*:(?:[ \t]|$)""")


def _split_lines(text: str) -> list[list[str]]:
    """[content, line end] pairs; joining them gives `text` back exactly."""
    lines = [[m.group(1), m.group(2)] for m in _LINE.finditer(text) if m.group(0)]
    return lines


def _shift_years(day: dt.date, years: int) -> dt.date:
    """`day` moved by `years` years; 29 February becomes 28 February in a year without one."""
    year = day.year + years
    if not 1 <= year <= 9999:
        raise ConfigError(f"survey_close {day.isoformat()} cannot be moved by {years} years.")
    return dt.date(year, day.month, min(day.day, calendar.monthrange(year, day.month)[1]))


def _parse(text: str, source: str) -> tuple[dict[str, Any], SurveyConfig]:
    raw = load_yaml(text, source)
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys (survey_year, cros, ...), found {type(raw).__name__}.")
    try:
        survey = SurveyConfig.model_validate(raw)
    except ValidationError as error:
        details = "; ".join(
            f"`{'.'.join(str(p) for p in e['loc'])}`: {e['msg'].removeprefix('Value error, ')}"
            if e["loc"]
            else e["msg"].removeprefix("Value error, ")
            for e in error.errors()
        )
        raise ConfigError(f"{source}: invalid survey configuration: {details}.") from None
    return raw, survey


@dataclass(frozen=True)
class _NewYear:
    text: str
    previous_year: int
    previous_close: dt.date
    close: dt.date
    sample_export_commented: bool
    stale_comment_lines: tuple[int, ...]
    survey: SurveyConfig
    ids_written: int = 0


def _edit_value(lines: list[list[str]], key: str, source: str, edit) -> None:
    """Apply `edit(value) -> value` to the one top-level `key: value` line of `lines`."""
    pattern, loose = _key_line(key), _top_level_key(key)
    found = [index for index, (content, _) in enumerate(lines) if loose.match(content)]
    if len(found) != 1:
        raise ConfigError(
            f"{source}: `{key}` must appear once as a top-level line `{key}: ...` to be edited in place "
            f"(found {len(found)}); write the new year's file by hand from the previous one."
        )
    index = found[0]
    match = pattern.match(lines[index][0])
    if not match:
        raise ConfigError(
            f"{source}: line {index + 1}: `{key}` is not written as a plain `{key}: value` line; "
            "write the new year's file by hand from the previous one."
        )
    lines[index][0] = match["head"] + edit(match["value"]) + match["tail"]


def _comment_out_sample_export(lines: list[list[str]], year: int, previous_year: int) -> bool:
    """Comment out a top-level `sample_export` (and its continuation lines) under a note; False if absent."""
    loose = _top_level_key("sample_export")
    found = [index for index, (content, _) in enumerate(lines) if loose.match(content)]
    for index in reversed(found):
        end = index + 1
        while end < len(lines) and lines[end][0][:1] in (" ", "\t") and lines[end][0].strip():
            end += 1
        for line in lines[index:end]:
            line[0] = "# " + line[0]
        ending = lines[index][1] or "\n"
        if not lines[index][1]:  # the key was the last line, without a line end
            lines[index][1] = ending
        note = f"# No bundled sample export for {year} yet (give --export); {previous_year}'s was:"
        lines.insert(index, [note, ending])
    return bool(found)


def _stale_comment_lines(lines: list[list[str]], previous_year: int, skip: set[int]) -> tuple[int, ...]:
    """1-based numbers of lines whose comment mentions the previous year (a hint, not a YAML parse)."""
    year = re.compile(rf"(?<![0-9]){previous_year}(?![0-9])")
    stale = []
    for number, (content, _) in enumerate(lines, 1):
        if number in skip:
            continue
        comment = re.search(r"(?:^|[ \t])#(.*)$", content)
        if comment and year.search(comment.group(1)):
            stale.append(number)
    return tuple(stale)


_ITEM = re.compile(r"(?P<prefix>(?P<indent> *)-[ ]+)(?P<rest>\S.*)?")


def _yaml_id(cro_id: str) -> str:
    """An id as a YAML scalar: plain, or quoted where YAML would read it otherwise (`yes`, `null`)."""
    return cro_id if yaml.safe_load(cro_id) == cro_id else f'"{cro_id}"'


def _write_ids(lines: list[list[str]], missing: dict[int, str], source: str) -> None:
    """Write `id: <id>` first in the entries of the top-level block list `cros:` at the positions of
    `missing` ({entry index: id}): `- {name: X}` -> `- {id: x, name: X}`, and `- name: X` -> `- id: x`
    followed by `  name: X` on its own line. `ConfigError` for a layout it cannot edit safely."""
    if not missing:
        return

    def refuse(why: str) -> ConfigError:
        ids = ", ".join(f"{cro_id}" for cro_id in missing.values())
        return ConfigError(
            f"{source}: {why}, so the CROs' ids cannot be written in place; add `id:` to each CRO of "
            f"{source} by hand first (the ids their names derive: {ids}), then start the new year again."
        )

    loose = _top_level_key("cros")
    found = [index for index, (content, _) in enumerate(lines) if loose.match(content)]
    if len(found) != 1 or not re.fullmatch(r"""["']?cros["']?[ \t]*:[ \t]*(#.*)?""", lines[found[0]][0]):
        raise refuse("`cros` is not written once as a top-level `cros:` line followed by its list")
    items: list[int] = []
    indent = None
    for index in range(found[0] + 1, len(lines)):
        content = lines[index][0]
        stripped = content.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not content[:1].isspace() and not content.startswith("-"):
            break  # the next top-level key
        match = _ITEM.fullmatch(content)
        if match and (indent is None or len(match["indent"]) == indent):
            indent = len(match["indent"])
            items.append(index)
    if "\t" in "".join(lines[index][0] for index in items) or len(items) < max(missing) + 1:
        raise refuse("the list under `cros:` is not one `- ` line per CRO")
    for entry in sorted(missing, reverse=True):  # from the end: inserted lines do not move earlier ones
        index = items[entry]
        match = _ITEM.fullmatch(lines[index][0])
        prefix, rest, cro_id = match["prefix"], match["rest"] or "", _yaml_id(missing[entry])
        if rest.startswith("{"):
            lines[index][0] = f"{prefix}{{id: {cro_id}, {rest[1:].lstrip()}"
        elif re.match(r"""["']?[A-Za-z_]+["']?[ \t]*:(?:[ \t]|$)""", rest):
            # the entry's first key moves to a line of its own, under `id:`; the file's line ends kept
            ending = lines[index][1] or next((end for _, end in lines if end), "\n")
            lines[index : index + 1] = [[f"{prefix}id: {cro_id}", ending], [" " * len(prefix) + rest, lines[index][1]]]
        else:
            raise refuse(f"line {index + 1} is not a CRO entry written `- {{name: ...}}` or `- name: ...`")


def _make_new_year(previous_yaml_text: str, year: int, source: str) -> _NewYear:
    if isinstance(year, bool) or not isinstance(year, int):
        raise ConfigError(f"the new survey year must be a whole number, not {year!r}.")
    bom = "\ufeff" if previous_yaml_text.startswith("\ufeff") else ""
    body = previous_yaml_text[len(bom) :]
    previous_raw, previous = _parse(body, source)
    close = _shift_years(previous.survey_close, year - previous.survey_year)

    lines = _split_lines(body)
    _edit_value(lines, "survey_year", source, lambda value: str(year))

    def new_close(value: str) -> str:
        found = _DATE.search(value)
        if not found or found.group(0) != previous.survey_close.isoformat():
            raise ConfigError(f"{source}: `survey_close` {value} is not written as YYYY-MM-DD; fix it first.")
        return value[: found.start()] + close.isoformat() + value[found.end() :]

    _edit_value(lines, "survey_close", source, new_close)
    missing = {
        index: cro.id for index, (cro, entry) in enumerate(zip(previous.cros, previous_raw["cros"], strict=True))
        if entry.get("id") is None
    }  # fmt: skip
    _write_ids(lines, missing, source)
    commented = _comment_out_sample_export(lines, year, previous.survey_year)
    notes = {
        number for number, (content, _) in enumerate(lines, 1) if content.startswith("# No bundled sample export for ")
    }
    commented_lines = {number + 1 for number in notes}
    stale = _stale_comment_lines(lines, previous.survey_year, notes | commented_lines)
    text = bom + "".join(content + ending for content, ending in lines)

    # The edit was by line: check it changed exactly what it meant to, and that the result is valid.
    new_raw, survey = _parse(text[len(bom) :], f"the {year} YAML made from {source}")
    expected = {
        key: value for key, value in previous_raw.items() if key not in ("survey_year", "survey_close", "sample_export")
    }
    expected["cros"] = [
        {"id": missing[index], **entry} if index in missing else entry
        for index, entry in enumerate(previous_raw["cros"])
    ]
    got = {key: value for key, value in new_raw.items() if key not in ("survey_year", "survey_close")}
    if got != expected or survey.survey_year != year or survey.survey_close != close or "sample_export" in new_raw:
        raise ConfigError(
            f"{source}: editing the file line by line changed more than survey_year, survey_close, "
            "sample_export and the CROs' ids (an unusual layout); write the new year's file by hand from the "
            "previous one."
        )
    return _NewYear(
        text=text,
        previous_year=previous.survey_year,
        previous_close=previous.survey_close,
        close=close,
        sample_export_commented=commented,
        stale_comment_lines=stale,
        survey=survey,
        ids_written=len(missing),
    )


def new_year_text(previous_yaml_text: str, year: int, *, source: str = "the previous year's YAML") -> str:
    """The YAML text of survey year `year`, made from the previous year's text (see the module contract).

    `source` names the previous file in error messages. Raises `ConfigError` if the previous text is not
    a valid configuration or cannot be edited line by line safely.
    """
    return _make_new_year(previous_yaml_text, year, source).text


def new_year(surveys_dir: Path, year: int, from_year: int) -> tuple[Path, list[str]]:
    """Write `<surveys_dir>/<year>.yaml` from `<surveys_dir>/<from_year>.yaml`; return it and the review items.

    Raises `ConfigError` (naming the file) if the target exists, the source is missing or unreadable, or
    the source is not a valid configuration.
    """
    surveys_dir = Path(surveys_dir)
    source = surveys_dir / f"{from_year}.yaml"
    target = surveys_dir / f"{year}.yaml"
    if target.exists() or target.is_symlink():
        raise ConfigError(
            f"{target}: already exists; edit it, or remove it first to start it again from {source.name}."
        )
    if not source.is_file():
        raise ConfigError(f"{source}: no such survey configuration to start {target.name} from; check --from.")
    try:
        with source.open(encoding="utf-8", newline="") as stream:
            previous_text = stream.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{source}: cannot be read ({getattr(error, 'strerror', None) or error}).") from None
    made = _make_new_year(previous_text, year, str(source))
    if made.previous_year != from_year:
        raise ConfigError(
            f"{source}: its survey_year is {made.previous_year}, not {from_year}; rename the file or fix survey_year."
        )
    _write_new(target, made.text)
    return target, _review_items(made, source, target)


def _write_new(target: Path, text: str) -> None:
    """Create `target` with `text`, complete or not at all, never replacing an existing file."""
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        try:
            os.link(temporary, target)  # atomic, and fails if the target appeared meanwhile
        except FileExistsError:
            raise ConfigError(f"{target}: already exists; edit it, or remove it first.") from None
    except OSError as error:
        raise ConfigError(f"{target}: cannot be written ({error.strerror or error}).") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def _screens_review_item(survey: SurveyConfig, previous_year: int, year: int) -> str:
    """The review item for respondent screens carried from the previous year: what they are, what to check."""
    screens, carried, checks = survey.screens, [], []
    if screens.qualification:
        allowed = ", ".join(screens.qualification.allowed)
        carried.append(f"qualification ({screens.qualification.column} in: {allowed})")
        checks.append(
            f"that the {year} questionnaire words the qualifying roles the same way (`screens.qualification.allowed`)"
        )
    if screens.straight_lining:
        carried.append(f"straight_lining (min_ratings {screens.straight_lining.min_ratings})")
    if screens.speeding:
        carried.append(f"speeding ({screens.speeding.column} below {screens.speeding.min_seconds:g} s)")
        checks.append(f"that min_seconds still suits the length of the {year} questionnaire")
    columns = ", ".join(screens.columns())
    needs = f"; the export must have the column(s) {columns}" if columns else ""
    return (
        f"respondent screens carried over from {previous_year}: {'; '.join(carried)}. Check the thresholds"
        + "".join(f" and {check}" for check in checks)
        + f"{needs}; `cro-awards check` shows how many rows each screen would remove"
    )


def _review_items(made: _NewYear, source: Path, target: Path) -> list[str]:
    survey, year = made.survey, made.survey.survey_year
    leap_note = (
        f"; 29 February does not exist in {made.close.year}"
        if (made.previous_close.month, made.previous_close.day) == (2, 29) and made.close.day == 28
        else ""
    )
    items = [
        f"survey_close is now {made.close.isoformat()} (was {made.previous_close.isoformat()}{leap_note}): "
        "check the survey's real closing date",
        f"review the ballot: {len(survey.cros)} CROs carried over from {source.name}; add new CROs, drop those "
        "no longer on the ballot, and add every spelling seen in the export as an alias",
        f"review attributes ({len(survey.attributes)}) and categories ({len(survey.categories)}: "
        f"{', '.join(survey.categories)}) against the {year} questionnaire; labels as the questionnaire words them",
    ]
    if made.ids_written:
        items.append(
            f"{made.ids_written} CRO id(s) written out, as {made.previous_year}'s names derive them: an id is how "
            "the tables follow a CRO from year to year, so keep it; a renamed CRO keeps its id (change `name`, "
            "keep the old name as an alias), and a CRO with a new id (a merger) lists the old ones under `formerly`"
        )
    if survey.screens.configured:
        items.append(_screens_review_item(survey, made.previous_year, year))
    if survey.columns:
        items.append(
            f"check the {len(survey.columns)} header mappings under `columns` carried over from {source.name} "
            f"against the {year} export's headers"
        )
    else:
        items.append("map the export's headers under `columns` if they differ from the contract's column names")
    if made.sample_export_commented:
        items.append(f"sample_export was commented out: {year} has no bundled sample, so give --export when running")
    if made.stale_comment_lines:
        lines = ", ".join(str(n) for n in made.stale_comment_lines)
        items.append(
            f"comments still mention {made.previous_year} (line{'s' if len(made.stale_comment_lines) > 1 else ''} "
            f"{lines}): update them"
        )
    items.append(f"drop the export in and run `cro-awards check --config {target} --export <file>`")
    return items


# --- what each respondent screen would remove ----------------------------------------------------------

SCREEN_REASONS = {
    "qualification": ("not_qualified",),
    "straight_lining": ("straight_lining",),
    "speeding": ("invalid_duration", "speeding"),
}
"""Each screen of `screens:` (the spec's order) -> the reason codes it gives, in the contract's order."""

RESPONDENT_LEVEL_REASONS = frozenset({"not_qualified", "speeding"})
"""Reasons given to every row of a respondent screened out on any of their rows (the spec)."""


@dataclass(frozen=True)
class ScreenCount:
    """What one configured respondent screen removes from an export, as the run's own validation judged
    it (`Validation.rows_by_reason`; nothing is judged again here). Counts only, never a field's value."""

    screen: str
    """The screen's key under `screens:` (qualification, straight_lining, speeding)."""
    setting: str
    """The screen as configured, in words: "decision_role in: final decision maker, shared decision maker"."""
    rows_by_reason: dict[str, int]
    """Each of the screen's reason codes -> the rows quarantined with it (0 included)."""
    rows: int
    """Rows with any of the screen's codes (a row may have other reasons too)."""
    rows_alone: int
    """Of `rows`, those no other reason quarantines: what the screen alone removes."""
    respondents: int | None = None
    """The respondent-level screens (qualification, speeding): the distinct respondent ids (as identities)
    of the rows with not_qualified or speeding; None for straight_lining, which judges each evaluation."""


def _setting(screens: Screens, screen: str) -> str:
    if screen == "qualification":
        return f"{screens.qualification.column} in: {', '.join(screens.qualification.allowed)}"
    if screen == "straight_lining":
        return f"at least {screens.straight_lining.min_ratings} valid ratings, all equal"
    return f"{screens.speeding.column} below {screens.speeding.min_seconds:g} seconds"


def _reasons_of_rows(rows_by_reason: dict[str, list[int]]) -> dict[int, set[str]]:
    """{source row: its reason codes}, from code -> source rows."""
    reasons: dict[int, set[str]] = {}
    for code, rows in rows_by_reason.items():
        for row in rows:
            reasons.setdefault(row, set()).add(code)
    return reasons


def screen_counts(
    screens: Screens, rows_by_reason: dict[str, list[int]], respondents: dict[int, str | None]
) -> tuple[ScreenCount, ...]:
    """What each configured screen removes, in the spec's order (none configured: an empty tuple).

    `rows_by_reason` is the run's own (`Validation.rows_by_reason()`: code -> source rows); `respondents`
    maps each quarantined source row to its respondent's identity (None: no respondent id), for the
    respondent-level screens' count of respondents."""
    reasons_of_row = _reasons_of_rows(rows_by_reason)
    counts = []
    for screen, codes in SCREEN_REASONS.items():
        if getattr(screens, screen) is None:
            continue
        rows = {row for code in codes for row in rows_by_reason.get(code, ())}
        respondent_rows = {
            row for code in codes if code in RESPONDENT_LEVEL_REASONS for row in rows_by_reason.get(code, ())
        }
        counts.append(
            ScreenCount(
                screen=screen,
                setting=_setting(screens, screen),
                rows_by_reason={code: len(rows_by_reason.get(code, ())) for code in codes},
                rows=len(rows),
                rows_alone=sum(1 for row in rows if reasons_of_row[row] <= set(codes)),
                respondents=(
                    len({respondents.get(row) for row in respondent_rows} - {None})
                    if any(code in RESPONDENT_LEVEL_REASONS for code in codes)
                    else None
                ),
            )
        )
    return tuple(counts)


def screened_alone(screens: Screens, rows_by_reason: dict[str, list[int]]) -> int:
    """The rows that only the configured screens' reasons quarantine (no other reason would): what the
    screens together take from the awards."""
    screen_codes = {code for screen, codes in SCREEN_REASONS.items() if getattr(screens, screen) for code in codes}
    reasons_of_row = _reasons_of_rows(rows_by_reason)
    return sum(1 for codes in reasons_of_row.values() if codes & screen_codes and codes <= screen_codes)


def _respondents(rejected: pa.Table) -> dict[int, str | None]:
    """{source row: its respondent id as an identity (`cro_awards.identity`), None when blank} of the
    quarantined rows (read from their fields as written)."""
    rows = rejected.select(["source_row", "fields"]).to_pylist()
    texts = pa.array([dict(row["fields"] or {}).get("respondent_id") for row in rows], pa.string())
    return dict(zip((row["source_row"] for row in rows), identity_key(texts).to_pylist(), strict=True))


# --- a dry run of an export -----------------------------------------------------------------------------
IGNORED_COLUMNS_NAMED = 5
"""How many ignored columns `check` names before "and N more"."""


def _named_columns(names: tuple[str, ...], count: int) -> str:
    """`: 'Notes', 'extra'` (at most IGNORED_COLUMNS_NAMED, then `and N more`); empty when none is named."""
    if not names:
        return ""
    shown = ", ".join(repr(name) for name in names[:IGNORED_COLUMNS_NAMED])
    more = count - min(len(names), IGNORED_COLUMNS_NAMED)
    return f": {shown}" + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class CheckReport:
    """What a dry run found: counts per reason code and example source rows; never a field's value."""

    config_file: str
    export_file: str
    survey_year: int
    read: int
    accepted: int
    quarantined: int
    quarantined_by_reason: dict[str, int]
    examples: dict[str, list[int]]
    max_rejected_share: float
    passed: bool
    renamed_columns: int = 0
    ignored_columns: int = 0
    ignored_column_names: tuple[str, ...] = ()
    """The ignored columns' headers, in the export's order (the count above is their number)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    hidden_rows: int = 0
    formulas_without_saved_value: dict[str, int] = field(default_factory=dict)
    empty_columns_ignored: int = 0
    near_misses: tuple[NearMiss, ...] = ()
    unmatched: tuple[UnmatchedSpelling, ...] = ()
    """Every CRO spelling quarantined as unknown_cro, with its rows, the most rows first."""
    min_evaluations: int = 10
    stop: str = ""
    """The paragraph a run would stop with for `lost` (`unmatched_cro_message`); empty when none."""
    screens: tuple[ScreenCount, ...] = ()
    """What each configured respondent screen removes (empty: the year configures none)."""
    screened_alone: int = 0
    """Rows quarantined only by the screens' reasons (no other reason would)."""
    min_cell_size: int = 3
    not_counted: dict[str, dict[str, int]] = field(default_factory=dict)
    """segment -> {"cells", "ratings"}: what a run would count nowhere (cells rated by fewer than
    min_cell_size respondents)."""

    @property
    def rejected_share(self) -> float:
        return self.quarantined / self.read if self.read else 0.0

    @property
    def within_rejected_share(self) -> bool:
        """The rejected-share gate's verdict (`pipeline.gate_failure`)."""
        return self.rejected_share <= self.max_rejected_share

    @property
    def lost(self) -> tuple[UnmatchedSpelling, ...]:
        """The unmatched spellings that would stop a run: at least min_evaluations rows, not in not_rated."""
        return tuple(s for s in self.unmatched if s.rows >= self.min_evaluations and not s.not_rated)

    @property
    def exit_code(self) -> int:
        """What `cro-awards check` exits with: what a run would (0 when it would pass)."""
        if self.lost:
            return UnmatchedCroError.exit_code
        return 0 if self.passed else RejectedShareError.exit_code

    def _render_unmatched(self) -> list[str]:
        if not self.unmatched:
            return []
        lines = [
            "CRO spellings that match no name or alias (quarantined as unknown_cro), with their rows; one in at "
            f"least min_evaluations = {self.min_evaluations} rows stops a run unless not_rated lists it:"
        ]
        width = max(len(repr(unmatched.spelling)) for unmatched in self.unmatched)
        for unmatched in self.unmatched:
            if unmatched.not_rated:
                note = "  not_rated: left out knowingly"
            elif unmatched.rows >= self.min_evaluations:
                note = "  STOPS A RUN (below)"
            else:
                note = ""
            lines.append(f"  {unmatched.spelling!r:<{width}}  {unmatched.rows:>6} row(s){note}")
        blank = self.quarantined_by_reason.get("unknown_cro", 0) - sum(unmatched.rows for unmatched in self.unmatched)
        if blank:
            lines.append(f"  and {blank} row{'' if blank == 1 else 's'} with the CRO blank")
        return lines

    def _render_screens(self) -> list[str]:
        if not self.screens:
            return [
                f"Respondent screens: not configured in {self.config_file} (qualification, straight_lining and "
                "speeding are optional: docs/how-to-add-a-survey-year.md)."
            ]
        lines = ["Respondent screens, the rows each removes (a row may have other reasons too):"]
        for count in self.screens:
            reasons = ", ".join(f"{code} {rows}" for code, rows in count.rows_by_reason.items())
            who = f", {count.respondents} respondent(s)" if count.respondents is not None else ""
            lines.append(
                f"  {count.screen} ({count.setting}): {count.rows} row(s) ({reasons}{who}); "
                f"{count.rows_alone} for this screen alone"
            )
        share = self.screened_alone / self.read if self.read else 0.0
        lines.append(
            f"  Together the screens remove {self.screened_alone} row(s) that no other reason would "
            f"({share:.1%} of the rows read)."
        )
        return lines

    def render(self) -> str:
        """The report for a terminal: plain text, one fact a line."""
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"Check of {self.export_file} against {self.config_file} (survey year {self.survey_year}): {verdict}",
            f"Rows read {self.read}, accepted {self.accepted}, quarantined {self.quarantined} "
            f"({self.rejected_share:.1%} rejected; max_rejected_share {self.max_rejected_share:.1%})",
        ]
        if self.overrides:
            lines.append("Overrides: " + ", ".join(f"{key}={value}" for key, value in self.overrides.items()))
        if self.renamed_columns or self.ignored_columns:
            lines.append(
                f"Columns: {self.renamed_columns} renamed through `columns`, {self.ignored_columns} ignored "
                f"(not in the contract){_named_columns(self.ignored_column_names, self.ignored_columns)}"
            )
        if self.empty_columns_ignored:
            lines.append(f"Columns: {self.empty_columns_ignored} trailing column(s) with no name and no value ignored")
        if self.hidden_rows:
            lines.append(
                f"Hidden rows: {self.hidden_rows} row(s) of the first sheet are hidden in the spreadsheet; they are "
                "read and scored like the others"
            )
        for column, count in self.formulas_without_saved_value.items():
            lines.append(
                f"Formulas: {count} cell(s) of column {column!r} hold formulas with no saved value and are read as "
                "blank: open the workbook in the spreadsheet program and save it"
            )
        if self.quarantined_by_reason:
            width = max(len(code) for code in self.quarantined_by_reason)
            lines.append("Quarantined rows by reason (a row may have several), with the first source rows:")
            for code, count in self.quarantined_by_reason.items():
                rows = ", ".join(str(row) for row in self.examples.get(code, []))
                more = ", ..." if count > len(self.examples.get(code, [])) else ""
                lines.append(f"  {code:<{width}}  {count:>6}  rows {rows}{more}")
        else:
            lines.append("Every row is valid.")
        lines += self._render_screens()
        if self.not_counted:
            big, small = self.not_counted["big_pharma"], self.not_counted["small_pharma"]
            lines.append(
                f"Not counted (a CRO's attribute rated by fewer than min_cell_size = {self.min_cell_size} respondents "
                f"of a segment counts nowhere): Big Pharma {big['cells']} cell(s), {big['ratings']} rating(s); "
                f"Small Pharma {small['cells']} cell(s), {small['ratings']} rating(s)."
            )
        lines += self._render_unmatched()
        if self.near_misses:
            lines.append(
                "CRO spellings that match no name or alias but are close to one (quarantined as unknown_cro); "
                f"add each as an alias in {self.config_file} to keep its rows:"
            )
            for miss in self.near_misses:
                others = f" (as close to {', '.join(miss.also_close)})" if miss.also_close else ""
                lines.append(
                    f"  {miss.spelling!r} in {miss.rows} row(s) is {miss.distance} edit(s) from {miss.close_to!r}: "
                    f"CRO {miss.cro_id} ({miss.cro_name!r}){others}; in its entry write  {miss.aliases_line}"
                )
        if self.stop:
            lines.append(f"A run would stop: {self.stop}")
        if not self.within_rejected_share:
            lines.append(
                f"A run would fail: {self.rejected_share:.1%} of the rows rejected is more than max_rejected_share. "
                "Fix the export (source row 1 is its first data row) or the configuration, and check again."
            )
        lines.append("Dry run: nothing was published, quarantined or written.")
        return "\n".join(lines)


def check_export(
    config_path: str | Path, export_path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> CheckReport:
    """Dry-run `export_path` (default: the YAML's sample_export) against the survey year `config_path`
    (see the module contract).

    `overrides` are method knobs as for a run (e.g. `{"max_rejected_share": 0.3}`). Raises `ConfigError`
    for an invalid configuration and `ExportError` for a file-level problem with the export.
    """
    loaded = load_config(config_path, overrides)
    export = loaded.export_path(export_path)
    result = run_pipeline(loaded, export, through="validate")
    validation = result.validation
    rows_by_reason = validation.rows_by_reason()
    counts = validation.counts
    screens = loaded.survey.screens
    unmatched = unmatched_spellings(validation.rejected, loaded.survey)
    lost = lost_cros(unmatched, loaded.survey)
    config_file = Path(config_path).name
    return CheckReport(
        config_file=config_file,
        export_file=export.name,
        survey_year=loaded.survey.survey_year,
        read=counts["read"],
        accepted=counts["accepted"],
        quarantined=counts["quarantined"],
        quarantined_by_reason={code: len(rows) for code, rows in rows_by_reason.items()},
        examples={code: rows[:EXAMPLES_PER_REASON] for code, rows in rows_by_reason.items()},
        max_rejected_share=float(loaded.survey.max_rejected_share),
        passed=gate_failure(validation, loaded, export) is None and not lost,
        renamed_columns=len(result.export.renamed),
        ignored_columns=len(result.export.ignored_columns),
        ignored_column_names=tuple(result.export.ignored_columns),
        overrides=dict(loaded.overrides),
        hidden_rows=result.export.hidden_rows,
        formulas_without_saved_value=dict(result.export.formulas_without_saved_value),
        empty_columns_ignored=result.export.dropped_empty_columns,
        near_misses=tuple(near_misses({s.spelling: s.rows for s in unmatched}, loaded.survey)),
        unmatched=unmatched,
        min_evaluations=loaded.survey.min_evaluations,
        stop=unmatched_cro_message(lost, loaded.survey, config_file, export.name) if lost else "",
        screens=screen_counts(screens, rows_by_reason, _respondents(validation.rejected) if screens.configured else {}),
        screened_alone=screened_alone(screens, rows_by_reason),
        min_cell_size=loaded.survey.min_cell_size,
        not_counted=result.not_counted,
    )
