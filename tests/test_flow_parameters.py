"""The flow's parameters derive from the knobs' one definition: each knob is an optional parameter
bounded as the knob is, described in the UI's Custom run form, and an out-of-range value run directly
is refused with the configuration's own one-paragraph message (ConfigError), not a Prefect traceback."""

from __future__ import annotations

import pytest

from cro_awards.reading import knobs

pytestmark = pytest.mark.prefect


def _schema():
    from flows.awards import cro_awards_flow

    return cro_awards_flow.parameters.model_dump()["properties"]


def test_every_knob_is_a_flow_parameter_with_the_knobs_bounds_and_description():
    properties = _schema()
    assert list(properties)[:7] == [
        "config",
        "export",
        "output",
        "quarantine",
        "release",
        "drafts",
        "accept_difference",
    ]
    assert list(properties)[7:] == list(knobs.KNOBS)
    assert (properties["release"]["type"], properties["release"]["default"]) == ("boolean", False), (
        "a draft unless asked"
    )
    for name in knobs.KNOBS:
        bounded = next(option for option in properties[name]["anyOf"] if option.get("type") != "null")
        if knobs.choices(name):  # a choice: the form offers exactly its values
            assert bounded["type"] == "string" and tuple(bounded["enum"]) == knobs.choices(name)
            assert knobs.description(name) in properties[name]["description"]
            continue
        assert bounded["type"] == ("integer" if knobs.python_type(name) is int else "number")
        # the bounds beside the anyOf, not in its branch: the UI's error names the bound (below)
        assert (properties[name]["minimum"], properties[name]["maximum"]) == (
            knobs.bounds(name)["ge"],
            knobs.bounds(name)["le"],
        )
        assert knobs.description(name) in properties[name]["description"]
        assert properties[name]["default"] is None, "no value: the YAML's"


def test_the_uis_answer_to_an_out_of_range_knob_names_the_bound():
    """Issue 22: the UI answered min_evaluations -3 with "-3 is not valid under any of the given schemas". The
    form's values are checked by the server's /ui/schemas/validate, which lists every JSON-schema error of
    each field (Prefect's `validate` and `build_error_obj`); deployment runs get the best match."""
    from prefect.utilities.schema_tools.validation import build_error_obj, preprocess_schema, validate

    from flows.awards import cro_awards_flow

    schema = cro_awards_flow.parameters.model_dump()
    checked = preprocess_schema(schema)
    answer = build_error_obj(validate({"min_evaluations": -3}, checked, preprocess=False))
    assert answer == {
        "errors": [{"property": "min_evaluations", "errors": ["-3 is less than the minimum of 1"]}],
        "valid": False,
    }
    too_many = build_error_obj(validate({"bootstrap_replicates": 10**9}, checked, preprocess=False))
    assert too_many["errors"][0]["errors"] == [f"{10**9} is greater than the maximum of 10000"]
    for fine in ({}, {"min_evaluations": None}, {"min_evaluations": 12}, {"champion_sd_multiplier": 0.5}):
        assert build_error_obj(validate(fine, checked, preprocess=False))["valid"], fine
    wrong_choice = build_error_obj(validate({"award_rule": "x"}, checked, preprocess=False))
    assert not wrong_choice["valid"]


def test_the_flows_have_distinct_names():
    """Issue 22: the release flow was named `cro-awards` like the awards flow, mixing both in the UI."""
    from flows.awards import cro_awards_flow
    from flows.backfill import backfill_flow
    from flows.inbox import inbox_flow
    from flows.release import DEPLOYMENT, release_flow

    assert sorted(f.name for f in (cro_awards_flow, release_flow, inbox_flow, backfill_flow)) == [
        "cro-awards",
        "cro-awards-backfill",
        "cro-awards-inbox",
        "cro-awards-release",
    ]
    assert f"{release_flow.name}/release" == DEPLOYMENT


def test_the_forms_min_cell_size_starts_at_three():
    """The UI's Custom run form refuses min_cell_size 1 or 2 before any run starts (the schema's minimum)."""
    assert _schema()["min_cell_size"]["minimum"] == 3


def test_a_form_value_below_the_yamls_min_cell_size_fails_the_run_with_the_configuration_error(
    prefect_server, tmp_path
):
    """A value the form accepts (3) but below the year's YAML (4) fails the run with the configuration's own
    one paragraph, before anything is read or written."""
    from cro_awards.engine.errors import ConfigError
    from flows.awards import cro_awards_flow
    from tests.conftest import SAMPLE_CONFIG

    config = tmp_path / "2024.yaml"
    text = SAMPLE_CONFIG.read_text(encoding="utf-8").replace("min_cell_size: 3", "min_cell_size: 4")
    config.write_text(text.replace("sample_export: ../data/", f"sample_export: {SAMPLE_CONFIG.parent.parent}/data/"))
    with pytest.raises(ConfigError, match="below the YAML's min_cell_size = 4"):
        cro_awards_flow(
            config=str(config), output=str(tmp_path / "out"), quarantine=str(tmp_path / "q"), min_cell_size=3
        )
    assert not (tmp_path / "out").exists() and not (tmp_path / "q").exists()


class _State:
    def __init__(self, error: BaseException | None):
        self.error = error

    def result(self):
        if self.error is not None:
            raise self.error


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (NotADirectoryError(20, "Not a directory", "out/survey_year=2024"), False),
        (IsADirectoryError(21, "Is a directory", "out/awards.parquet"), False),
        (PermissionError(13, "Permission denied", "out"), False),
        (OSError(28, "No space left on device"), True),
        (TimeoutError("flaky mount"), True),
        (None, False),
    ],
)
def test_only_errors_that_can_pass_are_retried(error, retried):
    """Issue 22: a NotADirectoryError, which cannot succeed, was retried; a full disk may pass."""
    from tasks.awards import _worth_retrying

    assert _worth_retrying(None, None, _State(error)) is retried
