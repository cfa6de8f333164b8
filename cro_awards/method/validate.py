"""Validate: judge every staged row with the Great Expectations suites of `expectations/`.

Contract (nodes of the run's graph, `cro_awards.engine.graph`): each judging node runs one suite on the distinct
values a rule depends on and writes the values it rejects, which a model of `sql/` binds to map the
verdicts back to the rows: `judge_evaluations` (every staged evaluation: reason -> failing source rows),
`judge_rating_values` (each distinct rating text once: `int_invalid_ratings`), and for the respondent
screens a year configures (`SCREEN_NODES`) `judge_qualifications`, `judge_durations` and
`judge_equal_ratings` (`int_screen_*`, which carry not_qualified and speeding to every row of the
respondent). `reasons_node(survey)` gathers them into `rejection_reasons` (source_row, reason,
reason_order, attributes), one row per (quarantined export row, reason), sorted by source_row and
reason_order; `attributes` is, for `invalid_rating`, the attribute ids whose rating is invalid (sorted by
id; never empty), and null for every other reason. Every reason but `malformed_row` (found by the
reader) comes from an expectation whose `meta.reason` names it; the suites take the year's values
(scale, CRO spellings, recency window, the screens' settings) as parameters. An expectation that raises
instead of judging is a bug: `ValidationBug` is raised, never a quarantine.

`great_expectations` is imported on first use (it costs seconds), not at module import; a run calls
`Suites.prepare()` first, so that the import and the suites' set-up overlap its extract and staging
(which run in Arrow and DuckDB, outside the GIL). `Suites` belong to one run: nothing is cached across runs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import json
import logging
import math
import threading
from collections.abc import Iterable
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cro_awards.engine.errors import ValidationBug
from cro_awards.engine.graph import Node, Scope, step
from cro_awards.engine.settings import EXPECTATIONS_DIR
from cro_awards.reading.config import REASON_CODES, SurveyConfig

REASONS_SCHEMA = pa.schema(
    [
        ("source_row", pa.int64()),
        ("reason", pa.string()),
        ("reason_order", pa.int32()),
        ("attributes", pa.list_(pa.string())),
    ]
)

_CATEGORICAL = ("respondent_id", "cro_key", "cro")
"""Columns of the evaluations frame passed to GX as pandas categoricals (see `_evaluations_frame`)."""

_DATE_FLOOR = pa.scalar(dt.date(1678, 1, 1), pa.date32())
_DATE_CEILING = pa.scalar(dt.date(2261, 12, 31), pa.date32())

logger = logging.getLogger(__name__)


@functools.cache
def suite_definition(name: str) -> dict[str, Any]:
    """The JSON of `expectations/<name>.json`; every expectation must carry a known `meta.reason`."""
    definition = json.loads((EXPECTATIONS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    for expectation in definition["expectations"]:
        reason = expectation.get("meta", {}).get("reason")
        if reason not in REASON_CODES:
            raise ValidationBug(
                f"expectations/{name}.json: {expectation['type']} has no known meta.reason ({reason!r})"
            )
    return definition


SCREEN_SUITES = {
    "qualification": "screen_qualification",
    "speeding": "screen_speeding",
    "straight_lining": "screen_straight_lining",
}
"""Each respondent screen (a field of `config.Screens`) -> its suite, run only when the YAML configures it."""

SUITES = ("evaluations", "rating_values", *SCREEN_SUITES.values())
"""The suites of `expectations/` that validation may run (all prepared; the screens' only run when configured)."""


class Suites:
    """One run's Great Expectations context and validators (one per suite of `SUITES`).

    Nothing is shared between runs: two runs in threads (the backfill) each hold their own.
    `Suites.prepare()` starts building them on a background thread (GX's import and set-up overlap the
    run's extract and staging); `failures` waits for it. Should the preparation fail, the error is
    raised where validation meets it, on the run's own thread.

    The thread is not a daemon: a run that fails before validation (a renamed header fails in extract,
    within milliseconds) leaves it importing GX, and the interpreter must wait for it before finalizing.
    A daemon thread still in an extension module's C++ code at finalization is ended by `pthread_exit`
    when it next takes the GIL; the forced unwind through a `noexcept` C++ frame aborts the process
    ("terminate called without an active exception", exit 134 instead of the error's code).
    """

    def __init__(self) -> None:
        self._validators: dict[str, Any] = {}
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def prepare(cls) -> Suites:
        suites = cls()
        suites._thread = threading.Thread(target=suites._build, name="cro-awards-gx-prepare", daemon=False)
        suites._thread.start()
        return suites

    def _build(self) -> None:
        try:
            context = _new_context()
            for name in SUITES:
                self._validators[name] = _validator(context, name)
        except BaseException as error:  # noqa: BLE001 - re-raised on the run's thread by `validator`
            self._error = error

    def validator(self, name: str):
        if self._thread is None:
            self._thread = threading.Thread(target=self._build, name="cro-awards-gx-prepare", daemon=False)
            self._thread.start()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._validators[name]

    def failures(self, name: str, frame: pd.DataFrame, index_column: str, parameters: dict[str, Any]) -> dict[str, set]:
        """Run suite `name` on `frame`: for each reason code, the `index_column` values that fail it."""
        result = self.validator(name).run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            result_format={
                "result_format": "COMPLETE",
                "unexpected_index_column_names": [index_column],
                "return_unexpected_index_query": False,
                "partial_unexpected_count": 0,
            },
        )
        failed: dict[str, set] = {}
        for outcome in result.results:
            config = outcome.expectation_config
            if outcome.exception_info and any(
                info.get("raised_exception") for info in _exception_infos(outcome.exception_info)
            ):
                raise ValidationBug(
                    f"expectations/{name}.json: {config.type} on {config.kwargs} raised: {outcome.exception_info}"
                )
            if outcome.success:
                continue
            indices = outcome.result.get("unexpected_index_list")
            if indices is None:
                raise ValidationBug(f"expectations/{name}.json: {config.type} failed without row indices")
            failed.setdefault(config.meta["reason"], set()).update(row[index_column] for row in indices)
        return failed


def _new_context():
    """An ephemeral GX context, in memory only, with no Data Docs site: results are never written anywhere."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    project = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    context = gx.get_context(project_config=project, mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _validator(context, name: str):
    """Suite `name` bound to a whole-dataframe batch definition of `context`."""
    import great_expectations as gx

    definition = suite_definition(name)
    suite = gx.ExpectationSuite(**{key: definition[key] for key in ("name", "expectations", "meta")})
    if len(suite.expectations) != len(definition["expectations"]):
        raise ValidationBug(
            f"expectations/{name}.json: {len(definition['expectations'])} expectations in the file, "
            f"{len(suite.expectations)} loaded; an expectation type is misspelled"
        )
    suite = context.suites.add(suite)
    batch_definition = (
        context.data_sources.add_pandas(f"{name}_source")
        .add_dataframe_asset(name=f"{name}_frame")
        .add_batch_definition_whole_dataframe("whole_frame")
    )
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}_validation", data=batch_definition, suite=suite)
    )


def _exception_infos(info: dict) -> Iterable[dict]:
    if "raised_exception" in info:
        return [info]
    return [value for value in info.values() if isinstance(value, dict)]


def _evaluations_frame(table: pa.Table) -> pd.DataFrame:
    """int_evaluations' judged columns as the frame the evaluations suite reads."""
    # GX compares dates fast only as datetime64[ns]; dates beyond its range are clamped to its ends,
    # which are outside every recency window, so no verdict changes.
    dates = pc.min_element_wise(
        pc.max_element_wise(table["last_engaged_on"], _DATE_FLOOR, skip_nulls=False), _DATE_CEILING, skip_nulls=False
    )
    table = table.set_column(
        table.schema.get_field_index("last_engaged_on"), "last_engaged_on", pc.cast(dates, pa.timestamp("ns"))
    )
    # GX filters the whole frame once per expectation: a categorical column is filtered as its integer
    # codes, a string column string by string. Columns that no regex reads (a regex reads the column
    # as text) go as categoricals: validation takes half the time at 1000x.
    for name in _CATEGORICAL:
        table = table.set_column(table.schema.get_field_index(name), name, pc.dictionary_encode(table[name]))
    return table.to_pandas()


def _exact_durations(frame: pd.DataFrame, min_seconds: float) -> pd.DataFrame:
    """The well-formed durations (those SQL cast) as doubles that compare with `min_seconds` exactly as the
    decimals written do. A double rounds a long decimal to its nearest: 119.49999999999999999 reads
    119.5 and would pass a min_seconds of 119.5. Rounding is monotonic and min_seconds is itself a
    double, so the only disagreement is a duration below it (as written) whose double equals it; that
    one is given the next double down, and the expectation judges the rest as is. (GX is given floats:
    Decimals would cost it an `inspect.stack()` per value of its result.) One row per distinct text."""
    limit = decimal.Decimal(str(min_seconds))
    below = math.nextafter(min_seconds, -math.inf)
    exact = [
        below if seconds == min_seconds and decimal.Decimal(text) < limit else seconds
        for text, seconds in zip(frame["duration_text"], frame["duration_seconds"], strict=True)
    ]
    return frame.assign(duration_seconds=pd.Series(exact, index=frame.index, dtype="float64"))


# --- the nodes of the run's graph (registered in cro_awards.run.pipeline.nodes) ----------------------


@step(reads=("suites", "int_evaluations", "cro_aliases", "int_recency_window"), writes=("evaluation_failures",))
def judge_evaluations(scope: Scope) -> dict[str, Any]:
    """The evaluations suite on every staged evaluation: reason -> the source rows failing it."""
    [window] = scope.table("int_recency_window").to_pylist()
    frame = _evaluations_frame(
        scope.table(
            "int_evaluations",
            "source_row",
            "respondent_id",
            "rd_spend_musd_text",
            "cro_key",
            "cro",
            "last_engaged_text",
            "last_engaged_on",
            "n_answered",
        )
    )
    cro_keys = scope.table("cro_aliases", "cro_key", order_by=("cro_key",))["cro_key"].to_pylist()
    failures = scope.value("suites").failures(
        "evaluations",
        frame,
        "source_row",
        {
            "cro_keys": cro_keys,
            "window_start": pd.Timestamp(window["window_start"]),
            "window_end": pd.Timestamp(window["window_end"]),
        },
    )
    return {"evaluation_failures": failures}


@step(reads=("suites", "config", "int_rating_values"), writes=("invalid_rating_texts",))
def judge_rating_values(scope: Scope) -> dict[str, Any]:
    """The rating_values suite on each distinct answered rating text, once: the texts it rejects (what
    int_invalid_ratings maps back to the rows)."""
    scale = scope.value("config").survey.rating_scale
    failures = scope.value("suites").failures(
        "rating_values",
        scope.table("int_rating_values", order_by=("rating_text",)).to_pandas(),
        "rating_text",
        {"scale_min": scale.min, "scale_max": scale.max},
    )
    return {"invalid_rating_texts": sorted(set().union(*failures.values())) if failures else []}


@step(reads=("suites", "stg_qualification_texts", "int_qualification_keys"), writes=("not_qualified_fields",))
def judge_qualifications(scope: Scope) -> dict[str, Any]:
    """The qualification screen's suite on each distinct qualification field: the fields it rejects."""
    allowed = scope.table("int_qualification_keys", order_by=("allowed_key",))["allowed_key"].to_pylist()
    failures = scope.value("suites").failures(
        SCREEN_SUITES["qualification"],
        scope.table("stg_qualification_texts", "qualification_field", "qualification_key").to_pandas(),
        "qualification_field",
        {"allowed_keys": allowed},
    )
    return {"not_qualified_fields": _failing(failures, "not_qualified")}


@step(reads=("suites", "config", "stg_duration_texts"), writes=("invalid_duration_fields", "speeding_fields"))
def judge_durations(scope: Scope) -> dict[str, Any]:
    """The speeding screen's suite on each distinct duration field: the fields it rejects, per reason."""
    min_seconds = scope.value("config").survey.screens.speeding.min_seconds
    failures = scope.value("suites").failures(
        SCREEN_SUITES["speeding"],
        _exact_durations(
            scope.table("stg_duration_texts", "duration_field", "duration_text", "duration_seconds").to_pandas(),
            min_seconds,
        ),
        "duration_field",
        {"min_seconds": min_seconds},
    )
    return {
        "invalid_duration_fields": _failing(failures, "invalid_duration"),
        "speeding_fields": _failing(failures, "speeding"),
    }


@step(reads=("suites", "config", "int_equal_ratings"), writes=("straight_lining_counts",))
def judge_equal_ratings(scope: Scope) -> dict[str, Any]:
    """The straight-lining screen's suite on each distinct count of equal valid ratings: the counts it rejects."""
    failures = scope.value("suites").failures(
        SCREEN_SUITES["straight_lining"],
        scope.table("int_equal_ratings", "n_equal_ratings", distinct=True).to_pandas(),
        "n_equal_ratings",
        {"min_ratings": scope.value("config").survey.screens.straight_lining.min_ratings},
    )
    return {"straight_lining_counts": [int(count) for count in _failing(failures, "straight_lining")]}


SCREEN_NODES = {
    "qualification": (judge_qualifications, "int_screen_qualification"),
    "speeding": (judge_durations, "int_screen_speeding"),
    "straight_lining": (judge_equal_ratings, "int_screen_straight_lining"),
}
"""Each respondent screen -> its judging node and the model that maps its verdicts back to the rows: in the
graph only when the YAML configures the screen."""


def reasons_node(survey: SurveyConfig) -> Node:
    """The node that gathers every verdict into `rejection_reasons` (module contract): the reader's
    malformed rows, the evaluations suite's failures, the invalid ratings and the rows each configured
    screen sets aside."""
    screens = [model for screen, (_, model) in SCREEN_NODES.items() if getattr(survey.screens, screen)]

    @step(reads=("export", "evaluation_failures", "int_invalid_ratings", *screens), writes=("rejection_reasons",))
    def rejection_reasons(scope: Scope) -> dict[str, Any]:
        malformed = scope.value("export").malformed["source_row"].to_pylist()
        reasons: list[tuple[int, str, list[str] | None]] = [(row, "malformed_row", None) for row in malformed]
        for reason, rows in scope.value("evaluation_failures").items():
            reasons.extend((int(row), reason, None) for row in rows)
        invalid = scope.table("int_invalid_ratings", "source_row", "attributes")
        reasons.extend(
            (row, "invalid_rating", attributes)
            for row, attributes in zip(
                invalid["source_row"].to_pylist(), invalid["attributes"].to_pylist(), strict=True
            )
        )
        for model in screens:
            found = scope.table(model, "source_row", "reason")
            reasons.extend(
                (row, reason, None)
                for row, reason in zip(found["source_row"].to_pylist(), found["reason"].to_pylist(), strict=True)
            )
        return {"rejection_reasons": reasons_table(reasons)}

    return rejection_reasons


def reasons_table(reasons: list[tuple[int, str, list[str] | None]]) -> pa.Table:
    """(source_row, reason, attributes) verdicts as the `rejection_reasons` table, sorted by source_row and
    the reason's place in the contract."""
    order = {code: index for index, code in enumerate(REASON_CODES)}
    reasons = sorted(reasons, key=lambda judged: (judged[0], order[judged[1]]))
    return pa.table(
        {
            "source_row": pa.array([row for row, _, _ in reasons], pa.int64()),
            "reason": pa.array([reason for _, reason, _ in reasons], pa.string()),
            "reason_order": pa.array([order[reason] for _, reason, _ in reasons], pa.int32()),
            "attributes": pa.array([attributes for _, _, attributes in reasons], pa.list_(pa.string())),
        },
        schema=REASONS_SCHEMA,
    )


def _failing(failures: dict[str, set], reason: str) -> list:
    """The values a suite failed for `reason`, sorted (the parameter a model binds)."""
    return sorted(failures.get(reason, ()))
