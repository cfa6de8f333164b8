"""The flow's parameters derive from the knobs' one definition: each knob is an optional parameter
bounded as the knob is, described in the UI's Custom run form, and an out-of-range value run directly
is refused with the configuration's own one-paragraph message (ConfigError), not a Prefect traceback."""

from __future__ import annotations

import pytest

from cro_awards import knobs

pytestmark = pytest.mark.prefect


def _schema():
    from flows.awards import cro_awards_flow

    return cro_awards_flow.parameters.model_dump()["properties"]


def test_every_knob_is_a_flow_parameter_with_the_knobs_bounds_and_description():
    properties = _schema()
    assert list(properties)[:5] == ["config", "export", "output", "quarantine", "release"]
    assert list(properties)[5:] == list(knobs.KNOBS)
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
        assert (bounded["minimum"], bounded["maximum"]) == (knobs.bounds(name)["ge"], knobs.bounds(name)["le"])
        assert knobs.description(name) in properties[name]["description"]
        assert properties[name]["default"] is None, "no value: the YAML's"


def test_the_flows_have_distinct_names():
    from flows.awards import cro_awards_flow
    from flows.backfill import backfill_flow
    from flows.inbox import inbox_flow

    assert sorted(f.name for f in (cro_awards_flow, inbox_flow, backfill_flow)) == [
        "cro-awards",
        "cro-awards-backfill",
        "cro-awards-inbox",
    ]
