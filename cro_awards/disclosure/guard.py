"""The differencing guard: a release must not let readers single out a few evaluations by subtracting it
from an earlier release of the same year (docs/contract.md, "The differencing guard").

Each draft keeps privately (`cro_awards.publication.publish`): its **contributions** (`contributions.parquet`, one
row per accepted evaluation with a counted rating, as the pipeline gives them, encoded by `encode`:
`respondent_id`, `cro`, `segment`, `h` (a stable 64-bit hash of the respondent id and the CRO) and
`mask_0`, ... (the bits of its counted attributes over a vocabulary kept in the schema's metadata with the
category membership)) and their **digests** (`cell_digests.parquet`, one row per published row: `kind`
(`attribute` or `composite`), `segment` (`big_pharma`, `small_pharma` or `overall`), `cro`, `key` (the
attribute or the category), `n` (its contributing evaluations) and `digest` (the XOR of their hashes)).

A published row's contributing evaluations: an attribute row (segment s, cro c, attribute a), the
evaluations of s and c counting a; a composite row (s, c, category k), those of s and c counting any
attribute of k; the `overall` rows take both segments. A row is published when that set is not empty.

`compare(new, old, min_cell_size)`: for every row published in both, the two sets must be equal or
differ (symmetric difference) by at least `min_cell_size` evaluations. The digests settle almost every
row at once (equal count and digest: the same set; counts apart by `min_cell_size` or more, or a lower
bound of the difference reaching it: far enough apart); only the rows left are compared exactly, from the
evaluation-level contributions of those rows' CROs. The hash is FNV-1a over the UTF-8 bytes of
`respondent_id`, a unit separator and `cro`, finished by SplitMix64's mixer: stable across processes,
machines and versions (never Python's salted `hash()`).

`check(new, earlier, min_cell_size)` compares a draft with each earlier release and returns the findings;
`refusal(...)` words them as one paragraph: how many rows, and the knob or export difference behind them
(from the two manifests), never a value, a cell's name or a respondent id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cro_awards.record.manifest import MANIFEST as MANIFEST, Manifest, knob_changes, read_manifest

CONTRIBUTIONS = "contributions.parquet"
DIGESTS = "cell_digests.parquet"
SEGMENTS = ("big_pharma", "small_pharma")
OVERALL = "overall"

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_SEPARATOR = "\x1f"

DIGEST_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("segment", pa.string()),
        ("cro", pa.string()),
        ("key", pa.string()),
        ("n", pa.int64()),
        ("digest", pa.uint64()),
    ]
)


# Hashing and digests -------------------------------------------------------------------------------------


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: spreads FNV's bits so that sums of hashes collide no more than chance."""
    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))


def evaluation_hashes(respondent_id: pa.Array | pa.ChunkedArray, cro: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A stable 64-bit hash of each (respondent_id, cro) pair (module contract), as a uint64 array."""
    joined = pc.binary_join_element_wise(respondent_id, cro, _SEPARATOR)
    if isinstance(joined, pa.ChunkedArray):
        joined = joined.combine_chunks() if joined.num_chunks else pa.array([], pa.string())
    joined = joined.cast(pa.large_string())
    size = len(joined)
    if size == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[joined.offset : joined.offset + size + 1]
    data = np.frombuffer(joined.buffers()[2], dtype=np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashes = np.full(size, _FNV_OFFSET, dtype=np.uint64)
    shortest, longest = int(lengths.min()), int(lengths.max())
    with np.errstate(over="ignore"):
        for position in range(longest):
            if position < shortest:
                hashes ^= data[starts + position]
                hashes *= _FNV_PRIME
            else:
                rows = np.flatnonzero(lengths > position)
                hashes[rows] = (hashes[rows] ^ data[starts[rows] + position]) * _FNV_PRIME
    return _mix(hashes)


def categories(table: pa.Table) -> dict[str, list[str]]:
    """The category membership the contributions were counted under (their schema's metadata)."""
    return {str(k): [str(a) for a in v] for k, v in _metadata(table, b"categories", {}).items()}


def vocabulary(table: pa.Table) -> list[str]:
    """The attributes, in the order of the bits of an encoded table's masks."""
    return [str(a) for a in _metadata(table, b"attributes", [])]


def _metadata(table: pa.Table | pa.Schema, key: bytes, default: Any) -> Any:
    metadata = (table.schema if isinstance(table, pa.Table) else table).metadata or {}
    try:
        value = json.loads(metadata.get(key, b"null"))
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def _words(n_attributes: int) -> int:
    return max(1, -(-n_attributes // 64))


def _masks(table: pa.Table) -> np.ndarray:
    """An encoded table's masks: one row per evaluation, one uint64 column per 64 attributes."""
    names = sorted((n for n in table.column_names if n.startswith("mask_")), key=lambda n: int(n[5:]))
    return np.column_stack([table[n].to_numpy() for n in names]) if names else np.zeros((table.num_rows, 1), np.uint64)


def _bits(attributes: list[str], members: list[str], words: int) -> np.ndarray:
    """The mask (one uint64 per word) of `members` over the vocabulary `attributes` (unknown ones: none)."""
    where = {attribute: index for index, attribute in enumerate(attributes)}
    mask = np.zeros(words, np.uint64)
    for member in members:
        if member in where:
            mask[where[member] // 64] |= np.uint64(1) << np.uint64(where[member] % 64)
    return mask


def encode(contributions: pa.Table) -> pa.Table:
    """The contributions as a draft keeps them (`contributions.parquet`): the pipeline's
    (`cro_awards.method.transform.contributions`: `respondent_id`, `cro`, `segment`, `mask_0`, ... (bit i set: the
    i-th attribute of the vocabulary counted), the vocabulary (`attributes`) and the category membership
    (`categories`) in the schema's metadata) with `h`, each evaluation's stable hash, after `segment`."""
    if "mask_0" not in contributions.column_names:
        raise ValueError("contributions without mask_0: not the pipeline's (cro_awards.method.transform.contributions)")
    hashes = evaluation_hashes(contributions["respondent_id"], contributions["cro"])
    return contributions.add_column(3, "h", pa.array(hashes, pa.uint64()))


class _Side:
    """An encoded table's evaluations for comparing: the hashes, masks and segments, grouped by CRO."""

    def __init__(self, table: pa.Table) -> None:
        self.attributes, self.categories = vocabulary(table), categories(table)
        self.words = _words(len(self.attributes))
        cro = pc.dictionary_encode(table["cro"]).combine_chunks()
        order = np.argsort(cro.indices.to_numpy(zero_copy_only=False), kind="stable")
        indices = cro.indices.to_numpy(zero_copy_only=False)[order]
        self.h = table["h"].to_numpy()[order]
        self.masks = _masks(table)[order]
        self.small = pc.equal(table["segment"], "small_pharma").to_numpy(zero_copy_only=False)[order]
        starts = np.flatnonzero(np.r_[True, indices[1:] != indices[:-1]]) if len(indices) else np.zeros(0, int)
        ends = np.r_[starts[1:], len(indices)] if len(indices) else np.zeros(0, int)  # no evaluation counted
        names = cro.dictionary.to_pylist()
        self.cros = {names[indices[start]]: (int(start), int(end)) for start, end in zip(starts, ends, strict=True)}

    def members(self, kind: str, key: str) -> list[str]:
        return [key] if kind == "attribute" else self.categories.get(key, [])

    def hashes(self, cell: Cell) -> np.ndarray:
        """The hashes of the cell's contributing evaluations."""
        kind, segment, cro, key = cell
        start, end = self.cros.get(cro, (0, 0))
        wanted = _bits(self.attributes, self.members(kind, key), self.words)
        hit = ((self.masks[start:end] & wanted) != 0).any(axis=1)
        if segment != OVERALL:
            hit &= self.small[start:end] == (segment == "small_pharma")
        return self.h[start:end][hit]


def digests(encoded: pa.Table) -> pa.Table:
    """One row per published row of an encoded table (`encode`): its count of contributing evaluations and
    their digest, the XOR of their hashes (the same set: the same digest; another: a different one but
    with odds of 2^-64)."""
    side = _Side(encoded)
    rows: dict[str, list[Any]] = {name: [] for name in DIGEST_SCHEMA.names}
    keys = [("attribute", a) for a in side.attributes] + [("composite", k) for k in sorted(side.categories)]
    for cro, (start, end) in sorted(side.cros.items()):
        h, masks, small = side.h[start:end], side.masks[start:end], side.small[start:end]
        for kind, key in keys:
            hit = ((masks & _bits(side.attributes, side.members(kind, key), side.words)) != 0).any(axis=1)
            parts = {"big_pharma": hit & ~small, "small_pharma": hit & small}
            for segment, selected in parts.items():
                n = int(selected.sum())
                if n:
                    _append(rows, kind, segment, cro, key, n, np.bitwise_xor.reduce(h[selected]))
            n = int(hit.sum())
            if n:
                _append(rows, kind, OVERALL, cro, key, n, np.bitwise_xor.reduce(h[hit]))
    return pa.table(rows, schema=DIGEST_SCHEMA)


def _append(rows: dict[str, list[Any]], *values: Any) -> None:
    for name, value in zip(DIGEST_SCHEMA.names, values, strict=True):
        rows[name].append(int(value) if isinstance(value, np.integer) else value)


# Comparing ----------------------------------------------------------------------------------------------


Cell = tuple[str, str, str, str]
"""(kind, segment, cro, key) of a published row."""


def _digest_map(table: pa.Table) -> dict[Cell, tuple[int, int]]:
    columns = [table[name].to_pylist() for name in ("kind", "segment", "cro", "key", "n", "digest")]
    return {(k, s, c, key): (n, d) for k, s, c, key, n, d in zip(*columns, strict=True)}


def suspects(new: pa.Table, old: pa.Table, min_cell_size: int) -> list[Cell]:
    """Rows published in both whose digests do not settle the check: their symmetric difference may be
    between 1 and `min_cell_size` - 1."""
    old_map = _digest_map(old)
    left = []
    for cell, (n, digest) in _digest_map(new).items():
        if cell not in old_map:
            continue
        old_n, old_digest = old_map[cell]
        if n == old_n and digest == old_digest:
            continue  # the same evaluations
        # the symmetric difference is at least |n - old_n|, of its parity, and not 0 (the digests differ)
        bound = abs(n - old_n) or 2
        if bound >= min_cell_size:
            continue
        left.append(cell)
    return left


_COMPARED = ["cro", "segment", "h"]


def _read_encoded(path: Path, cros: list[str]) -> pa.Table:
    schema = pq.read_schema(path)
    columns = _COMPARED + [name for name in schema.names if name.startswith("mask_")]
    table = pq.read_table(path, columns=columns, filters=[("cro", "in", cros)])
    return table.replace_schema_metadata(schema.metadata)


def differences(new: Path, old: Path, cells: list[Cell]) -> dict[Cell, int]:
    """The exact symmetric difference of the contributing evaluations of each of `cells`, between the
    folders `new` and `old` (each holding `contributions.parquet`, encoded)."""
    if not cells:
        return {}
    cros = sorted({cro for _, _, cro, _ in cells})
    new_side = _Side(_read_encoded(new / CONTRIBUTIONS, cros))
    old_side = _Side(_read_encoded(old / CONTRIBUTIONS, cros))
    return {
        cell: int(np.setxor1d(new_side.hashes(cell), old_side.hashes(cell), assume_unique=True).size) for cell in cells
    }


def compare(new: Path, old: Path, min_cell_size: int) -> list[Cell]:
    """The rows published in both folders' drafts whose contributing evaluations differ by at least one
    and fewer than `min_cell_size` (module contract)."""
    left = suspects(pq.read_table(new / DIGESTS), pq.read_table(old / DIGESTS), min_cell_size)
    exact = differences(new, old, left)
    return [cell for cell in left if 0 < exact[cell] < min_cell_size]


# Checking a release -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """Rows of a draft too close to an earlier release's (`compare`), and what differs between the two."""

    earlier_run_id: str
    attribute_rows: int
    composite_rows: int
    behind: str
    """The export or knob difference between the two runs, in words (no value of the data)."""

    @property
    def rows(self) -> int:
        return self.attribute_rows + self.composite_rows

    def as_json(self) -> dict[str, Any]:
        return {
            "earlier_run_id": self.earlier_run_id,
            "attribute_rows": self.attribute_rows,
            "composite_rows": self.composite_rows,
            "behind": self.behind,
        }


def behind(new: Manifest, old: Manifest) -> str:
    """What differs between two runs' manifests: the export (by sha256), the knobs (effective configuration,
    `knob_changes`, and overrides), the survey's YAML; no value of the data."""
    reasons = []
    if new.export.sha256 != old.export.sha256:
        reasons.append(
            f"the export differs (sha256 {str(new.export.sha256)[:12]} against {str(old.export.sha256)[:12]})"
        )
    knobs = knob_changes(old, new)
    if knobs:
        pairs = (f"{k.knob} {json.dumps(k.after)} against {json.dumps(k.before)}" for k in knobs)
        reasons.append("knobs differ: " + ", ".join(pairs))
    if new.overrides != old.overrides and not knobs:
        new_overrides, old_overrides = (json.dumps(o, sort_keys=True) for o in (new.overrides, old.overrides))
        reasons.append(f"the overrides differ ({new_overrides} against {old_overrides})")
    if new.config.sha256 != old.config.sha256:
        reasons.append("the survey's YAML differs")
    if not reasons:
        reasons.append("neither the export nor the knobs differ (the code or its rules changed)")
    return "; ".join(reasons)


def check(new: Path, earlier: dict[str, Path], minimum: int) -> list[Finding]:
    """Compare the draft in `new` with each earlier release (run id -> folder holding its guard files);
    return a finding per earlier release with rows too close."""
    findings = []
    new_manifest = read_manifest(new, or_empty=True)
    for run_id, folder in earlier.items():
        cells = compare(new, folder, minimum)
        if cells:
            findings.append(
                Finding(
                    earlier_run_id=run_id,
                    attribute_rows=sum(1 for kind, *_ in cells if kind == "attribute"),
                    composite_rows=sum(1 for kind, *_ in cells if kind == "composite"),
                    behind=behind(new_manifest, read_manifest(folder, or_empty=True)),
                )
            )
    return findings


def _rows(attribute_rows: int, composite_rows: int) -> str:
    parts = []
    if attribute_rows:
        parts.append(f"{attribute_rows} attribute row{'s' if attribute_rows != 1 else ''}")
    if composite_rows:
        parts.append(f"{composite_rows} composite row{'s' if composite_rows != 1 else ''}")
    return " and ".join(parts)


def refusal(survey_year: int, run_id: str, findings: list[Finding], minimum: int) -> str:
    """The one paragraph of a refused release (module contract)."""
    total = sum(f.rows for f in findings)
    against = "; ".join(
        f"against run {f.earlier_run_id}: {_rows(f.attribute_rows, f.composite_rows)} (behind them: {f.behind})"
        for f in findings
    )
    return (
        f"the differencing guard refused to release run {run_id} of survey year {survey_year}: {total} published "
        f"row{'s' if total != 1 else ''} rest{'s' if total == 1 else ''} on evaluations that differ from an earlier "
        f"release's by at least one and fewer than min_cell_size ({minimum}), so a reader holding both could single "
        f"those evaluations out ({against}). Nothing was released; readers see what they saw. If the difference is "
        f'intended, release again with --accept-difference "<reason>" (the release deployment\'s accept_difference), '
        "which the release log records."
    )
