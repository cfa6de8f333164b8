"""The method knobs: each defined once, here, with its type, bounds, default and description.

Everything else derives from `MethodKnobs`: the YAML's checks (`SurveyConfig` extends it), the overrides
a run accepts (`config.load_config`'s `overrides`, `config.OVERRIDABLE_KEYS`), the flow's parameters and
their bounds in the Prefect UI's Custom run form (`flows.awards`), the command line's `--flags`
(`cli.main`), the manifest's `effective` configuration and the report's list of knobs. Adding a knob
means adding a field here and the code that uses it, nothing else.

Every knob can be set in the year's YAML and overridden by a run; an override goes through the same
checks as the YAML (the same bounds, the same message), whoever passes it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt
from pydantic.fields import FieldInfo

AwardRule = Literal["official", "shrunk", "adjusted"]
"""The rules that can name the awards (docs/method.md): the official one, or the shrinkage reading."""

Number = StrictInt | StrictFloat
"""A knob that takes any number: YAML's `1000` and `1000.0` both; text such as `"1000"` is refused."""


class MethodKnobs(BaseModel):
    """The method's knobs (docs/method.md): what a year's YAML sets and a run may override."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recency_months: Annotated[
        StrictInt,
        Field(
            ge=0,
            le=1200,
            description="months before survey_close that an evaluation's last engagement may lie",
        ),
    ] = 18
    big_pharma_min_rd_spend_musd: Annotated[
        Number,
        Field(
            ge=0,
            le=1e12,
            allow_inf_nan=False,
            description="R&D spend (USD millions) from which a sponsor is Big Pharma",
        ),
    ] = 1000
    min_evaluations: Annotated[
        StrictInt,
        Field(
            ge=1,
            le=1_000_000,
            description="evaluations a CRO needs in a cell to be eligible for awards",
        ),
    ] = 10
    min_cros_for_awards: Annotated[
        StrictInt,
        Field(
            ge=1,
            le=10_000,
            description="eligible CROs a cell needs for any award",
        ),
    ] = 3
    champion_sd_multiplier: Annotated[
        Number,
        Field(
            ge=0,
            le=10,
            allow_inf_nan=False,
            description="champions score at least this many weighted SDs above the weighted mean",
        ),
    ] = 1.0
    min_cell_size: Annotated[
        StrictInt,
        Field(
            ge=3,
            le=1_000_000,
            description="a CRO's attribute rated by fewer respondents of a segment counts nowhere (confidentiality); "
            "a run may raise it, never lower it below the YAML's value",
        ),
    ] = 3
    max_rejected_share: Annotated[
        Number,
        Field(
            ge=0,
            le=1,
            allow_inf_nan=False,
            description="a larger share of rejected evaluations fails the run (0.2 = 20%)",
        ),
    ] = 0.2
    bootstrap_replicates: Annotated[
        StrictInt,
        Field(
            ge=0,
            le=10_000,
            description="respondent-level resampling replicates behind every interval and probability (0: none)",
        ),
    ] = 1000
    """At most 10,000: more changes no interval's ends at two decimals, and the resampling's time grows
    with the replicates (bench/README.md, "Where the figures come from")."""
    robust_award_probability: Annotated[
        Number,
        Field(
            ge=0,
            le=1,
            allow_inf_nan=False,
            description="an award is robust when the probability that it is deserved is at least this",
        ),
    ] = 0.8
    award_rule: Annotated[
        AwardRule,
        Field(
            description="the rule that names the awards: official (highest composite; weighted mean + k SD) or "
            "shrunk (the empirical Bayes reading) or adjusted (the official rule on the leniency-adjusted composites)",
        ),
    ] = "official"
    bootstrap_seed: Annotated[
        StrictInt,
        Field(
            ge=0,
            le=2**63 - 1,
            description="seed of the resampling (a rerun draws the same replicates)",
        ),
    ] = 20240229


KNOBS: tuple[str, ...] = tuple(MethodKnobs.model_fields)
"""Every knob's name, in the model's order (the order of the command line, the UI and the report)."""


def field(name: str) -> FieldInfo:
    return MethodKnobs.model_fields[name]


def description(name: str) -> str:
    return field(name).description or name


def choices(name: str) -> tuple[str, ...] | None:
    """The values a knob chosen from a list takes (e.g. award_rule), else None."""
    annotation = field(name).annotation
    return tuple(get_args(annotation)) if get_origin(annotation) is Literal else None


def python_type(name: str) -> type:
    """`int` for a whole-number knob, `float` for one that takes any number, `str` for a choice (the
    command line's type)."""
    if choices(name):
        return str
    return int if field(name).annotation is int else float


def annotation(name: str) -> Any:
    """The knob's type as a flow parameter's annotation (a choice stays a Literal, so the form lists it)."""
    found = choices(name)
    return Literal[found] if found else python_type(name)


def bounds(name: str) -> dict[str, Any]:
    """The knob's bounds as pydantic `Field` keywords (`ge`, `le`, ...)."""
    found: dict[str, Any] = {}
    for item in field(name).metadata:
        for key in ("ge", "gt", "le", "lt"):
            value = getattr(item, key, None)
            if value is not None:
                found[key] = value
    return found


def describe_bounds(name: str) -> str:
    """E.g. `0 to 10` (or `official, shrunk or adjusted`), for help texts."""
    if choices(name):
        *first, last = choices(name)
        return f"{', '.join(first)} or {last}" if first else last
    limits = bounds(name)
    low, high = limits.get("ge", limits.get("gt")), limits.get("le", limits.get("lt"))
    return f"{_number(low)} to {_number(high)}"


def _number(value: float) -> str:
    """A bound as people read it, never in exponent notation: `1,000,000`, `2^63 - 1`, `0.05`."""
    if value == 2**63 - 1:
        return "2^63 - 1"
    if float(value).is_integer():
        return f"{int(value):,}"
    return format(Decimal(str(value)), "f")
