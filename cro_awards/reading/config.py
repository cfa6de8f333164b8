"""The survey year's configuration: `surveys/<year>.yaml`, validated into a `SurveyConfig`.

Contract (README, "The survey year's configuration"): unknown keys, a category naming an undefined
attribute, a name or alias standing for two CROs (ignoring case and surrounding spaces), two CROs with
one id, an id also listed as another CRO's former id, a name deriving no id where none is given,
`min_evaluations` below `min_cell_size`, a respondent screen that cannot judge (`Screens`: `allowed`
empty or blank, `min_ratings` below 2, `min_seconds` negative, a screen's column that is a contract
column, an attribute id or the other screen's column), a `not_rated` spelling that is blank, listed
twice or a configured CRO's name or alias, and bad values are configuration errors. They stop the run
before any export is read, with a message naming the file and the key. Overrides (from the command
line or a deployment's parameters) replace the YAML's method knobs and go through the same checks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from cro_awards.engine.errors import ConfigError, ExportError
from cro_awards.engine.identity import identity_key, register as register_identity
from cro_awards.reading.knobs import KNOBS, MethodKnobs

CONTRACT_COLUMNS = ("respondent_id", "rd_spend_musd", "cro", "last_engaged")
"""Export columns every survey year has, besides one column per attribute id."""

OVERRIDABLE_KEYS = KNOBS
"""Method knobs a run may override without editing the YAML (all of them); recorded in the manifest."""

REASON_CODES = (
    "malformed_row",
    "missing_respondent_id",
    "invalid_rd_spend",
    "unknown_cro",
    "invalid_last_engaged",
    "outside_recency_window",
    "invalid_rating",
    "no_ratings",
    "duplicate_evaluation",
    "not_qualified",
    "invalid_duration",
    "speeding",
    "straight_lining",
)
"""The quarantine's reason codes (data contract section 3), in the order a row's reasons are listed."""

WHITESPACE = " \t\r\n\u00a0"
"""What surrounds a field and is removed before it is read: spaces, tabs, line breaks, no-break spaces."""

_ID = re.compile(r"[a-z][a-z0-9_]*")
_NOT_ID_CHARACTERS = re.compile(r"[^a-z0-9]+")


def derive_id(name: str) -> str:
    """The id of a CRO whose YAML gives none (docs/contract.md): the name in Unicode NFKD, combining
    marks dropped, lower case, each run of characters other than a-z and 0-9 replaced by `_`, leading
    and trailing `_` removed ("Café Labs, Inc." -> `cafe_labs_inc`). May be empty ("株式会社") or start
    with a digit ("3D Trials" -> `3d_trials`): not a valid id, and the YAML must then give one."""
    decomposed = unicodedata.normalize("NFKD", name)
    unmarked = "".join(character for character in decomposed if not unicodedata.combining(character))
    return _NOT_ID_CHARACTERS.sub("_", unmarked.lower()).strip("_")


def category_label(category: str) -> str:
    """A category id as people read it (the tables' `category_label`, the report's headings):
    "capabilities" -> "Capabilities", "phase_iv" -> "Phase iv"."""
    return category.replace("_", " ").capitalize()


def cro_keys(spellings: list[str]) -> list[str]:
    """How an export's CRO text is matched: `lower(identity_key(text))` (cro_awards/engine/identity.py).

    Computed by DuckDB, whose `lower` is what matches export rows (sql/cro_aliases.sql): Python's
    `str.lower` differs on a few characters (`İ`), and the two must never disagree.
    """
    import duckdb

    connection = duckdb.connect()
    try:
        register_identity(connection)
        return [
            key
            for (key,) in connection.execute(
                "select lower(identity_key(spelling)) from unnest($spellings) with ordinality as t(spelling, i) "
                "order by i",
                {"spellings": spellings},
            ).fetchall()
        ]
    finally:
        connection.close()


class _YamlSection(BaseModel):
    """A section or entry of the YAML: an unknown key is an error, the model is immutable, and values are
    coerced as pydantic's lax mode does (a field that must not be coerced says `strict=True`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class RatingScale(_YamlSection):
    min: StrictInt = 1
    max: StrictInt = 5

    @model_validator(mode="after")
    def _ordered(self) -> RatingScale:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.min < 0:
            raise ValueError("ratings are non-negative integers: min must be >= 0")
        return self


class Cro(_YamlSection):
    """One CRO of the ballot. `id` (what the tables' `cro` holds) is always set once validated: given,
    or derived from `name` (`derive_id`). `formerly` lists the ids it had before a rename or merger."""

    id: str | None = None
    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    formerly: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("id") is None and isinstance(data.get("name"), str):
            derived = derive_id(data["name"])
            if _ID.fullmatch(derived):
                return {**data, "id": derived}
        return data

    @field_validator("name", "aliases")
    @classmethod
    def _not_blank(cls, value: Any) -> Any:
        texts = [value] if isinstance(value, str) else list(value)
        if texts and identity_key(pa.array(texts, pa.string())).null_count:
            raise ValueError("a CRO name or alias must not be blank (nor only spaces or invisible characters)")
        return value

    @field_validator("id", "formerly")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        for text in [value] if isinstance(value, str) else list(value or ()):
            if not _ID.fullmatch(text):
                raise ValueError(
                    f"CRO id {text!r} must be lower-case letters, digits and _, starting with a letter "
                    "(e.g. northwind_clinical)"
                )
        return value

    @model_validator(mode="after")
    def _identified(self) -> Cro:
        if self.id is None:
            raise ValueError(
                f"the name {self.name!r} gives no usable id (derived: {derive_id(self.name)!r}; an id is "
                "lower-case letters a-z, digits and _, starting with a letter): give this CRO an `id:`, "
                "e.g. `id: cro_one`"
            )
        if self.id in self.formerly:
            raise ValueError(
                f"{self.name!r} lists its own id `{self.id}` under `formerly`: `formerly` names the ids it had "
                f"before a rename or merger; remove `{self.id}` from it"
            )
        if len(set(self.formerly)) != len(self.formerly):
            raise ValueError(f"{self.name!r} lists a former id twice under `formerly`; keep one")
        return self


class Qualification(_YamlSection):
    """Who may rate (docs/contract.md, "Respondent screens"): export column `column` (named as after
    `columns`) must hold one of `allowed`, compared as names are (`lower(identity_key(text))`: ignoring
    case, surrounding whitespace, invisible format characters); blank is never allowed."""

    column: str = Field(min_length=1)
    allowed: tuple[str, ...]

    @field_validator("allowed")
    @classmethod
    def _not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(
                "lists no answer: every respondent would be screened out; list the answers that qualify, "
                "e.g. [final decision maker, shared decision maker]"
            )
        if identity_key(pa.array(list(value), pa.string())).null_count:
            raise ValueError(
                "an allowed value must not be blank (nor only spaces or invisible characters): a blank answer is "
                "never a qualification; list the answers that qualify, e.g. [final decision maker]"
            )
        return value


class StraightLining(_YamlSection):
    """The same answer everywhere: an evaluation with at least `min_ratings` valid ratings, all equal."""

    min_ratings: StrictInt = Field(ge=2)


class Speeding(_YamlSection):
    """Answered too fast: export column `column` holds the seconds the questionnaire took; a well-formed
    duration below `min_seconds` is speeding, a blank or malformed one `invalid_duration`."""

    column: str = Field(min_length=1)
    min_seconds: float = Field(ge=0, allow_inf_nan=False, strict=True)


class Screens(_YamlSection):
    """The respondent screens of a year (YAML `screens:`), each optional: with none configured
    (`Screens()`) no screen column is read and no row gets a screen's reason. Not method knobs: no run
    overrides them."""

    qualification: Qualification | None = None
    straight_lining: StraightLining | None = None
    speeding: Speeding | None = None

    @model_validator(mode="after")
    def _distinct_columns(self) -> Screens:
        if self.qualification and self.speeding and self.qualification.column == self.speeding.column:
            raise ValueError(
                f"screens.qualification.column and screens.speeding.column both name `{self.speeding.column}`: a "
                "column cannot hold both the respondent's role and the questionnaire's duration; name two columns"
            )
        return self

    @property
    def configured(self) -> bool:
        """Whether any screen is configured."""
        return any((self.qualification, self.straight_lining, self.speeding))

    def column_keys(self) -> dict[str, str]:
        """The export columns the configured screens read -> the YAML key naming each
        (`screens.qualification.column`, `screens.speeding.column`), qualification first."""
        keys = {}
        if self.qualification:
            keys[self.qualification.column] = "screens.qualification.column"
        if self.speeding:
            keys[self.speeding.column] = "screens.speeding.column"
        return keys

    def columns(self) -> tuple[str, ...]:
        """The export columns the configured screens need (as named after `columns`), qualification first."""
        return tuple(self.column_keys())


def _check_ids(cros: tuple[Cro, ...]) -> None:
    """Each CRO's id is its own, and no id on the ballot is also another CRO's former id."""
    by_id: dict[str, Cro] = {}
    for cro in cros:
        first = by_id.setdefault(cro.id, cro)
        if first is not cro:
            raise ValueError(
                f"cros: {first.name!r} and {cro.name!r} have the same id `{cro.id}` (a CRO without `id:` gets "
                "the one its name derives): give them distinct `id:` keys, or list them as one CRO with "
                "the other's name as an alias"
            )
    claimed: dict[str, Cro] = {}
    for cro in cros:
        for former in cro.formerly:
            first = claimed.setdefault(former, cro)
            if first is not cro:
                raise ValueError(
                    f"cros: {first.name!r} (`{first.id}`) and {cro.name!r} (`{cro.id}`) both list `{former}` under "
                    f"`formerly`, so both would inherit its history: a former id belongs to one CRO (its rename, or "
                    f"a merger into it). If `{former}` split, the parts are new entities, formed from `{former}` but "
                    f"not continuing it: remove `{former}` from the `formerly` of both (each keeps its own distinct "
                    f"id, with no history before this year), or keep it under the one CRO that continues `{former}`"
                )
    for cro in cros:
        for former in cro.formerly:
            if former in by_id:
                raise ValueError(
                    f"cros: `{former}` is listed under `formerly` of {cro.name!r} but is also the id of "
                    f"{by_id[former].name!r} on this year's ballot: a former id is no longer in use; remove it "
                    f"from `formerly`, or give {by_id[former].name!r} another id"
                )


MAX_ATTRIBUTES = 128
"""Attributes a year may have: each evaluation's counted attributes are a 128-bit mask
(`sql/int_contributions.sql`)."""


class SurveyConfig(MethodKnobs):
    """One survey year: questionnaire, ballot and the method knobs (`cro_awards.reading.knobs`, docs/method.md)."""

    survey_year: StrictInt = Field(ge=1900, le=2999)
    survey_close: dt.date
    rating_scale: RatingScale = RatingScale()
    sample_export: str | None = None
    cros: tuple[Cro, ...] = Field(min_length=1)
    attributes: dict[str, str] = Field(min_length=1, max_length=MAX_ATTRIBUTES)
    categories: dict[str, tuple[str, ...]] = Field(min_length=1)
    columns: dict[str, str] = Field(default_factory=dict)
    screens: Screens = Screens()
    not_rated: tuple[str, ...] = ()
    """CRO spellings of the export that the year knowingly leaves out of the awards: their rows are
    quarantined as unknown_cro like any spelling matching no name or alias, but however many rows one has,
    it does not stop the run (a spelling with at least `min_evaluations` rows that is neither a CRO's name
    or alias nor listed here stops it: `errors.UnmatchedCroError`). Matched as names are (ignoring case,
    surrounding whitespace, invisible format characters); none may be blank, listed twice, or a name or
    alias of a configured CRO (its rows would be that CRO's, not lost)."""

    @field_validator("survey_close", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            raise ValueError("must be a date (YYYY-MM-DD), not a date and time")
        if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError(f"{value!r} is not a YYYY-MM-DD date")
        return value

    @field_validator("attributes", "categories")
    @classmethod
    def _ids(cls, value: dict) -> dict:
        for key in value:
            if not isinstance(key, str) or not _ID.fullmatch(key):
                raise ValueError(f"id {key!r} must be lower-case letters, digits and _ (e.g. data_quality)")
            if key in CONTRACT_COLUMNS or key == "source_row":
                raise ValueError(f"id {key!r} is a contract column name; choose another id")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SurveyConfig:
        for category, attribute_ids in self.categories.items():
            if not attribute_ids:
                raise ValueError(f"categories.{category}: a category needs at least one attribute")
            undefined = [a for a in attribute_ids if a not in self.attributes]
            if undefined:
                raise ValueError(
                    f"categories.{category} names undefined attribute(s) {', '.join(undefined)}: "
                    "define them under `attributes` or fix the spelling"
                )
            if len(set(attribute_ids)) != len(attribute_ids):
                raise ValueError(f"categories.{category} lists an attribute twice")
        owner: dict[str, str] = {}
        spellings = [(spelling, cro.name) for cro in self.cros for spelling in (cro.name, *cro.aliases)]
        for key, (spelling, name) in zip(cro_keys([s for s, _ in spellings]), spellings, strict=True):
            if owner.setdefault(key, name) != name:
                raise ValueError(
                    f"cros: {spelling!r} stands for both {owner[key]!r} and {name!r} "
                    "(names and aliases are matched as identities: ignoring case, surrounding whitespace, "
                    "invisible format characters and Unicode compatibility forms such as NFC/NFD spellings)"
                )
        names = [cro.name for cro in self.cros]
        if len(set(names)) != len(names):
            raise ValueError("cros: a CRO is listed twice")
        self._check_not_rated(owner)
        _check_ids(self.cros)
        if self.min_evaluations < self.min_cell_size:
            raise ValueError(
                f"min_evaluations ({self.min_evaluations}) is below min_cell_size ({self.min_cell_size}): "
                "every CRO with a composite would be eligible (a composite rests on a cell of at least min_cell_size "
                "ratings), so min_evaluations would decide nothing; raise min_evaluations to at least min_cell_size"
            )
        if self.award_rule != "official" and self.bootstrap_replicates == 0:
            raise ValueError(
                f"award_rule {self.award_rule} needs the resampling's figures: set bootstrap_replicates above 0 "
                "(e.g. 1000) or award_rule official"
            )
        targets = list(self.columns.values())
        if len(set(targets)) != len(targets):
            raise ValueError("columns: two export headers are renamed onto the same column")
        for column, key in self.screens.column_keys().items():
            if column in CONTRACT_COLUMNS or column in self.attributes:
                kind = "a contract column" if column in CONTRACT_COLUMNS else "an attribute id"
                raise ValueError(
                    f"key `{key}`: `{column}` is {kind}; a screen reads a column of its own (e.g. decision_role, "
                    "duration_seconds): name that column, mapping its header with `columns` if need be"
                )
        return self

    def _check_not_rated(self, owner: dict[str, str]) -> None:
        """`not_rated`: no blank spelling, none twice, none a name or alias of a CRO (`owner`: key -> CRO name)."""
        if not self.not_rated:
            return
        if identity_key(pa.array(list(self.not_rated), pa.string())).null_count:
            raise ValueError(
                "not_rated: a spelling must not be blank (nor only spaces or invisible characters); list the "
                "CRO spellings whose rows the year leaves out knowingly, e.g. [Initech Trials]"
            )
        seen: dict[str, str] = {}
        for spelling, key in zip(self.not_rated, cro_keys(list(self.not_rated)), strict=True):
            if key in owner:
                raise ValueError(
                    f"not_rated: {spelling!r} is a name or alias of {owner[key]!r}, so its rows are that CRO's "
                    f"and rated; remove it from not_rated, or from {owner[key]!r}'s entry to leave its rows out"
                )
            if key in seen:
                same = "" if seen[key] == spelling else f" (as {seen[key]!r}: matched ignoring case and spaces)"
                raise ValueError(f"not_rated: {spelling!r} is listed twice{same}; keep one")
            seen[key] = spelling

    def category_rows(self) -> list[tuple[str, str]]:
        """(category, attribute) pairs: an attribute in two categories appears twice."""
        return [(category, attribute) for category, ids in self.categories.items() for attribute in ids]


class LoadedConfig(BaseModel):
    """A validated configuration with where it came from: what the manifest records."""

    model_config = ConfigDict(frozen=True)

    path: Path
    sha256: str
    overrides: dict[str, Any]
    survey: SurveyConfig

    def resolve(self, relative: str) -> Path:
        """A path from the YAML (e.g. `sample_export`), relative to the YAML's own folder."""
        return (self.path.parent / relative).resolve()

    def export_path(self, given: str | Path | None) -> Path:
        """The export to read: `given`, else the YAML's `sample_export`; `ExportError` when neither is set."""
        if given:
            return Path(given)
        if not self.survey.sample_export:
            raise ExportError(f"{self.path}: no export given and the YAML names no sample_export; pass --export.")
        return self.resolve(self.survey.sample_export)


def _describe(error: dict, overrides: dict[str, Any], raw: dict[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return message
    location = ".".join(str(part) for part in error["loc"])
    source = "override" if error["loc"][0] in overrides else "key"
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling; README lists the keys)"
    if error["type"] == "missing":
        message = "required key is missing"
    return f"{source} `{location}`{_which_cro(error['loc'], raw)}: {message}"


def _which_cro(location: tuple, raw: dict[str, Any]) -> str:
    """` (CRO 'Acme', entry 2 of cros)` for an error inside an entry of `cros`: the CRO by its name, else its
    id, else the entry before it; empty elsewhere."""
    cros = raw.get("cros")
    if len(location) < 2 or location[0] != "cros" or not isinstance(location[1], int) or not isinstance(cros, list):
        return ""
    index = location[1]
    if not 0 <= index < len(cros):
        return ""
    entry = cros[index]
    name = entry.get("name") if isinstance(entry, dict) else None
    cro_id = entry.get("id") if isinstance(entry, dict) else None
    if isinstance(name, str) and name.strip():
        who = f"CRO {name!r}"
    elif isinstance(cro_id, str) and cro_id.strip():
        who = f"CRO with id {cro_id!r}"
    else:
        previous = cros[index - 1] if index > 0 else None
        after = previous.get("name") or previous.get("id") if isinstance(previous, dict) else None
        who = "a CRO without a name or id" + (f", after {after!r}" if isinstance(after, str) else "")
    return f" ({who}, entry {index + 1} of cros)"


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} is written twice (lines {seen[key]} and {key_node.start_mark.line + 1}); keep one",
                    key_node.start_mark,
                )
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _where(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def _problem(error: yaml.YAMLError) -> str:
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    return "; ".join(str(p) for p in parts if p) or type(error).__name__


def load_yaml(text: str | bytes, source: str | Path) -> Any:
    """Parse YAML safely (no Python tags; a duplicate key refused); `ConfigError` naming `source` otherwise."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML{_where(error)}: {_problem(error)}.") from None
    except RecursionError:
        raise ConfigError(
            f"{source}: not valid YAML for a survey configuration: it is nested too deeply to read; "
            "a survey configuration is a few levels deep (see docs/contract.md, section 1)."
        ) from None


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> LoadedConfig:
    """Read and validate `path`, applying `overrides` (method knobs only); raise `ConfigError` if invalid."""
    path = Path(path)
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    try:
        raw_bytes = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the survey configuration ({error.strerror}).") from None
    raw = load_yaml(raw_bytes, path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (survey_year, cros, ...), found {type(raw).__name__}.")
    unknown = sorted(set(overrides) - set(OVERRIDABLE_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: override(s) {', '.join(unknown)} cannot be overridden; "
            f"overridable keys are {', '.join(OVERRIDABLE_KEYS)}."
        )
    try:
        survey = SurveyConfig.model_validate({**raw, **overrides})
    except ValidationError as error:
        details = "; ".join(_describe(e, overrides, raw) for e in error.errors())
        raise ConfigError(f"{path}: invalid survey configuration: {details}.") from None
    if "min_cell_size" in overrides:
        promised = SurveyConfig.model_validate(raw).min_cell_size
        if survey.min_cell_size < promised:
            raise ConfigError(
                f"{path}: override min_cell_size = {survey.min_cell_size} is below the YAML's min_cell_size = "
                f"{promised}: respondents were promised that no answer shared by fewer than {promised} respondents "
                f"counts in anything published. A run may raise min_cell_size, never lower it; give at least "
                f"{promised}, or leave it out."
            )
    return LoadedConfig(
        path=path.resolve(),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        overrides=overrides,
        survey=survey,
    )
