"""CRO spellings of an export that match no name or alias of the year's ballot (quarantined as unknown_cro).

Contract:
- `unmatched_spellings(rejected, survey)` lists, from the quarantine validation made (its `reasons` and
  `fields`), every CRO spelling quarantined as unknown_cro with its rows, spellings that are one
  identity ignoring case (as exports are matched: `config.cro_keys`) counted as one; a blank CRO text
  is no spelling. `lost_cros` keeps those a run must not drop quietly: at least `min_evaluations` rows
  and not listed under the YAML's `not_rated`; the run then stops (`errors.UnmatchedCroError`, raised by
  `cro_awards.run.pipeline` after validation, before anything is written) with `unmatched_cro_message`: one
  paragraph naming each spelling, its rows and the YAML lines that add it as a CRO (`- name: ...`), as an
  alias of a CRO on the ballot (`aliases: [...]`, that of the CRO it is within a typo of, where there is
  one) or under `not_rated:` (accepting the loss).
- `near_misses(unknown, survey)`: the spellings within a typo of a configured name or alias
  (`edit_distance`, `near_miss_limit`), each with the CRO's `aliases:` line to write; what
  `cro-awards check` suggests.
The CRO spellings are what the CRO column names, never a respondent's data; nothing here reads another
field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from cro_awards.engine.identity import identity_key
from cro_awards.reading.config import SurveyConfig, cro_keys

# --- CRO spellings that match no CRO ------------------------------------------------------------------


@dataclass(frozen=True)
class UnmatchedSpelling:
    """A CRO spelling of the export that is no name or alias of the year's ballot: its rows are quarantined
    as unknown_cro. Spellings that differ only as names are matched (case, surrounding whitespace,
    invisible format characters) are one."""

    spelling: str
    """As the export writes it, trimmed (the identity form: `cro_awards.engine.identity`); the most frequent when
    several differ only in case (ties: the first in code point order)."""
    rows: int
    """The rows quarantined with unknown_cro that spell it (a row may have other reasons too)."""
    not_rated: bool = False
    """Listed under the YAML's `not_rated`: its loss accepted."""


def unmatched_spellings(rejected: pa.Table, survey: SurveyConfig) -> tuple[UnmatchedSpelling, ...]:
    """Every CRO spelling of the quarantine `rejected` (its `reasons` and `fields` columns) whose rows have
    unknown_cro, the most rows first (then by spelling). A blank CRO text is no spelling: not listed."""
    if rejected.num_rows == 0:
        return ()
    reasons = rejected.column("reasons").combine_chunks()
    flat = pc.list_flatten(reasons)
    unknown_rows = pc.filter(pc.list_parent_indices(reasons), pc.equal(flat, "unknown_cro"))
    fields = pc.take(rejected.column("fields"), unknown_rows)
    texts = identity_key(pc.map_lookup(fields, pa.scalar("cro"), "first"))
    counted = pc.value_counts(pc.drop_null(texts)).to_pylist()
    if not counted:
        return ()
    spellings = [item["values"] for item in counted]
    not_rated = set(cro_keys(list(survey.not_rated))) if survey.not_rated else set()
    grouped: dict[str, list[tuple[int, str]]] = {}
    for item, key in zip(counted, cro_keys(spellings), strict=True):
        grouped.setdefault(key, []).append((item["counts"], item["values"]))
    found = [
        UnmatchedSpelling(
            spelling=min(variants, key=lambda variant: (-variant[0], variant[1]))[1],
            rows=sum(count for count, _ in variants),
            not_rated=key in not_rated,
        )
        for key, variants in grouped.items()
    ]
    return tuple(sorted(found, key=lambda unmatched: (-unmatched.rows, unmatched.spelling)))


def lost_cros(spellings: Iterable[UnmatchedSpelling], survey: SurveyConfig) -> tuple[UnmatchedSpelling, ...]:
    """The spellings a run must not drop quietly: at least `min_evaluations` rows (enough to rate a CRO)
    and not listed under `not_rated`."""
    return tuple(s for s in spellings if s.rows >= survey.min_evaluations and not s.not_rated)


# --- near-miss CRO spellings ----------------------------------------------------------------------------


def edit_distance(first: str, second: str) -> int:
    """The edits between two texts (optimal string alignment): inserting, deleting or replacing a
    character, or swapping two adjacent ones, is one edit each ("Nortwhind" is one edit from "Northwind")."""
    before: list[int] = []
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, 1):
        current = [i] + [0] * len(second)
        for j, b in enumerate(second, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b))
            if i > 1 and j > 1 and a != b and a == second[j - 2] and first[i - 2] == b:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[-1]


def near_miss_limit(length: int) -> int:
    """The most edits a spelling may be from a configured name or alias of `length` characters (the
    shorter of the two) to count as a near miss: none below 4 characters (CHT and CRT are two names more
    often than a typo), 1 from 4, 2 from 10 (about a fifth of the length)."""
    return 0 if length < 4 else 1 if length < 10 else 2


@dataclass(frozen=True)
class NearMiss:
    """A CRO spelling of the export that matches no name or alias but is within `near_miss_limit` edits
    of one: likely the configured CRO, and lost to unknown_cro unless the YAML adds it as an alias."""

    spelling: str
    """As the export writes it, trimmed (the identity form: `cro_awards.engine.identity`); the most frequent
    when several spellings differ only in case."""
    rows: int
    cro_id: str
    cro_name: str
    close_to: str
    """The configured name or alias it is closest to."""
    distance: int
    aliases_line: str
    """The CRO's `aliases:` with the spelling added, as a YAML line to put in its entry."""
    also_close: tuple[str, ...] = ()
    """Other CROs' ids as close: the spelling may be theirs."""


def _flow_scalar(text: str) -> str:
    """`text` as an item of a YAML flow list: plain where YAML reads it back as written, else quoted."""
    try:
        plain = yaml.safe_load(f"[{text}]") == [text]
    except yaml.YAMLError:
        plain = False
    return text if plain and "#" not in text else json.dumps(text, ensure_ascii=False)


def near_misses(unknown: dict[str, int], survey: SurveyConfig) -> list[NearMiss]:
    """The near misses among `unknown` ({spelling as trimmed: rows}, spellings that matched no CRO),
    compared on the key exports are matched by (`config.cro_keys`), the most rows first. Each names the
    closest CRO (ties by the ballot's order) and any other as close."""
    configured = [(spelling, cro) for cro in survey.cros for spelling in (cro.name, *cro.aliases)]
    configured_keys = cro_keys([spelling for spelling, _ in configured])
    grouped: dict[str, list[tuple[int, str]]] = {}
    for (spelling, rows), key in zip(unknown.items(), cro_keys(list(unknown)), strict=True):
        if key is not None:
            grouped.setdefault(key, []).append((rows, spelling))
    found = []
    for key, spellings in grouped.items():
        distances = [(edit_distance(key, other), index, other) for index, other in enumerate(configured_keys)]
        scored = [
            (distance, index)
            for distance, index, other in distances
            if 0 < distance <= near_miss_limit(min(len(key), len(other)))
        ]
        if not scored:
            continue
        distance, index = min(scored)
        spelling_matched, cro = configured[index]
        others = dict.fromkeys(configured[i][1].id for d, i in scored if d == distance and configured[i][1] is not cro)
        _, spelling = min(spellings, key=lambda item: (-item[0], item[1]))
        aliases = ", ".join(_flow_scalar(alias) for alias in (*cro.aliases, spelling))
        found.append(
            NearMiss(
                spelling=spelling,
                rows=sum(count for count, _ in spellings),
                cro_id=cro.id,
                cro_name=cro.name,
                close_to=spelling_matched,
                distance=distance,
                aliases_line=f"aliases: [{aliases}]",
                also_close=tuple(others),
            )
        )
    return sorted(found, key=lambda miss: (-miss.rows, miss.spelling))


def _block_scalar(text: str) -> str:
    """`text` as the value of a YAML `key: value` line: plain where YAML reads it back as written, else quoted."""
    try:
        plain = yaml.safe_load(f"name: {text}") == {"name": text}
    except yaml.YAMLError:
        plain = False
    return text if plain and "#" not in text else json.dumps(text, ensure_ascii=False)


def _rows(count: int) -> str:
    return f"{count} row{'' if count == 1 else 's'}"


def unmatched_cro_message(
    lost: tuple[UnmatchedSpelling, ...], survey: SurveyConfig, config_file: str, export_file: str
) -> str:
    """The paragraph for CRO spellings a run would drop quietly (see the module contract)."""
    one = len(lost) == 1
    named = [f"{unmatched.spelling!r} ({_rows(unmatched.rows)})" for unmatched in lost]
    listing = named[0] if one else ", ".join(named[:-1]) + " and " + named[-1]
    misses = {miss.spelling: miss for miss in near_misses({s.spelling: s.rows for s in lost}, survey)}
    alias_lines = []
    for unmatched in lost:
        miss = misses.get(unmatched.spelling)
        alias_lines.append(
            f"`{miss.aliases_line}` (in {miss.cro_id}'s entry: it is a typo away from {miss.close_to!r})"
            if miss
            else f"`aliases: [{_flow_scalar(unmatched.spelling)}]` (added to the CRO's own aliases)"
        )
    name_lines = ", ".join(f"`- name: {_block_scalar(unmatched.spelling)}`" for unmatched in lost)
    not_rated = ", ".join(_flow_scalar(text) for text in (*survey.not_rated, *(s.spelling for s in lost)))
    them, is_ = ("it", "it is") if one else ("them", "each is")
    return (
        f"{export_file}: the CRO spelling{'' if one else 's'} {listing} match{'es' if one else ''} no name or "
        f"alias in {config_file}, and {'its rows are' if one else 'each has'} at least min_evaluations = "
        f"{survey.min_evaluations}{'' if one else ' rows'}, enough to rate a CRO: the run stops rather than drop "
        f"{them} from the awards (quarantined as unknown_cro); nothing was written. Say in {config_file} what "
        f"{is_}, then run again: a new CRO, under `cros:` write {name_lines}; another spelling of a CRO on the "
        f"ballot, in that CRO's entry write {'; '.join(alias_lines)}; or a CRO this year leaves out of the awards "
        f"knowingly (its rows quarantined as unknown_cro), at the top level write `not_rated: [{not_rated}]`. "
        "`cro-awards check` lists every CRO spelling that matches no name or alias, with its rows."
    )
