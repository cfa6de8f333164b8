"""Each method knob is defined once (cro_awards.reading.knobs); the YAML's checks, the overrides, the command
line, the manifest and the report derive from that definition and agree with it."""

from __future__ import annotations

import datetime as dt

import pytest

from cli.main import parser
from cro_awards.engine.errors import ConfigError
from cro_awards.reading import knobs
from cro_awards.reading.config import SurveyConfig, load_config
from cro_awards.record.manifest import EFFECTIVE_KEYS
from cro_awards.report import html as report
from tests.conftest import SAMPLE_CONFIG


def _above_maximum(name: str):
    """A value the knob refuses: above its maximum, or not one of its choices."""
    if knobs.choices(name):
        return "lenient"
    high = knobs.bounds(name)["le"]
    return knobs.python_type(name)(high * 2 + 1)


def test_every_knob_has_a_description_bounds_and_a_default_within_them():
    for name in knobs.KNOBS:
        field = knobs.field(name)
        assert field.description, name
        if knobs.choices(name):  # a choice: its default is one of them, and no numeric bounds
            assert field.default in knobs.choices(name) and not knobs.bounds(name), name
            continue
        limits = knobs.bounds(name)
        assert {"ge", "le"} <= limits.keys(), name
        assert limits["ge"] <= field.default <= limits["le"], name


def test_a_choice_knob_is_a_choice_on_the_command_line_and_in_the_flow():
    assert knobs.choices("award_rule") == ("official", "shrunk", "adjusted")
    assert (
        knobs.python_type("award_rule") is str and knobs.describe_bounds("award_rule") == "official, shrunk or adjusted"
    )
    for command in ("run", "check"):
        sub = parser()._subparsers._group_actions[0].choices[command]
        flag = next(action for action in sub._actions if action.dest == "award_rule")
        assert tuple(flag.choices) == ("official", "shrunk", "adjusted")


def test_the_shrunk_rule_needs_resampling():
    with pytest.raises(ConfigError, match="bootstrap_replicates"):
        load_config(SAMPLE_CONFIG, {"award_rule": "shrunk", "bootstrap_replicates": 0})
    assert load_config(SAMPLE_CONFIG, {"award_rule": "shrunk"}).survey.award_rule == "shrunk"


def test_the_survey_configuration_is_the_knobs_and_more():
    assert set(knobs.KNOBS) <= set(SurveyConfig.model_fields)
    for name in knobs.KNOBS:
        assert SurveyConfig.model_fields[name].default == knobs.field(name).default


@pytest.mark.parametrize("name", knobs.KNOBS)
def test_a_value_out_of_bounds_is_refused_alike_in_the_yaml_and_as_an_override(name, tmp_path):
    value = _above_maximum(name)
    yaml_path = tmp_path / "2024.yaml"
    text = "\n".join(
        line for line in SAMPLE_CONFIG.read_text(encoding="utf-8").splitlines() if not line.startswith(f"{name}:")
    )
    yaml_path.write_text(text + f"\n{name}: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as in_yaml:
        load_config(yaml_path)
    with pytest.raises(ConfigError) as as_override:
        load_config(SAMPLE_CONFIG, {name: value})
    assert f"key `{name}`" in str(in_yaml.value) and f"override `{name}`" in str(as_override.value)
    reason = str(as_override.value).split(f"override `{name}`: ")[1]
    assert reason in str(in_yaml.value), "the same reason, whoever sets the value"


@pytest.mark.parametrize("command", ["run", "check"])
def test_the_command_line_has_one_flag_per_knob_typed_as_the_knob(command):
    sub = next(a for a in parser()._subparsers._group_actions[0].choices.items() if a[0] == command)[1]
    flags = {action.dest: action for action in sub._actions}
    for name in knobs.KNOBS:
        assert name in flags, f"{command} lacks --{name.replace('_', '-')}"
        assert flags[name].type is knobs.python_type(name)
        assert knobs.description(name) in flags[name].help.replace("%%", "%")


def test_the_manifest_records_every_knob_and_the_report_lists_every_knob():
    assert set(knobs.KNOBS) <= set(EFFECTIVE_KEYS)
    assert report.KNOBS == knobs.KNOBS


def test_whole_number_knobs_refuse_fractions_and_text():
    base = {
        "survey_year": 2024,
        "survey_close": dt.date(2024, 2, 29),
        "cros": [{"name": "A"}],
        "attributes": {"a": "A"},
        "categories": {"k": ["a"]},
    }
    for name in knobs.KNOBS:
        with pytest.raises(ValueError):
            SurveyConfig(**base, **{name: "3"})
        if knobs.python_type(name) is int:
            with pytest.raises(ValueError):
                SurveyConfig(**base, **{name: 3.5})


def test_bounds_in_help_are_written_out_never_in_exponent_notation():
    assert knobs.describe_bounds("min_evaluations") == "1 to 1,000,000"
    assert knobs.describe_bounds("big_pharma_min_rd_spend_musd") == "0 to 1,000,000,000,000"
    assert knobs.describe_bounds("max_rejected_share") == "0 to 1"
    huge = next(name for name in knobs.KNOBS if knobs.bounds(name).get("le") == 2**63 - 1)
    assert knobs.describe_bounds(huge) == "0 to 2^63 - 1"
    for command in ("run", "check"):
        text = parser()._subparsers._group_actions[0].choices[command].format_help()
        assert "e+" not in text, command


def test_new_year_help_is_a_whole_sentence():
    top = parser().format_help()
    assert "from a previous year's YAML" in " ".join(top.split())
    sub = parser()._subparsers._group_actions[0].choices["new-year"].format_help()
    assert "Write surveys/<year>.yaml from a previous year's YAML" in " ".join(sub.split())
