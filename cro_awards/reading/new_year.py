"""A new survey year's YAML, started from the previous year's (`cro-awards new-year`).

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
"""

from __future__ import annotations

import calendar
import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from cro_awards.engine.errors import ConfigError
from cro_awards.reading.config import SurveyConfig, load_yaml

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
