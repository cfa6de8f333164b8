"""Configuration errors (data contract section 1): each stops the run, naming the file and the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from cro_awards.engine.errors import ConfigError
from cro_awards.reading.config import category_label, derive_id, load_config
from tests.conftest import SAMPLE_CONFIG

MINIMAL = {
    "survey_year": 2024,
    "survey_close": dt.date(2024, 2, 29),
    "cros": [{"name": "Northwind Clinical", "aliases": ["Northwind"]}, {"name": "Aldercrest Research"}],
    "attributes": {
        "data_quality": "Data quality",
        "operational_excellence": "Operational excellence",
        "staff_turnover": "Staff turnover",
    },
    "categories": {
        "quality": ["data_quality"],
        "reliability": ["operational_excellence", "staff_turnover"],
        "expertise": ["operational_excellence"],
    },
}


def _write(tmp_path: Path, **changes) -> Path:
    document = {**MINIMAL, **changes}
    path = tmp_path / "2024.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


SAMPLE_TEXT = SAMPLE_CONFIG.read_text(encoding="utf-8")


def test_bundled_2024_survey_loads_with_its_questionnaire():
    survey = load_config(SAMPLE_CONFIG).survey
    assert survey.survey_year == 2024 and survey.survey_close == dt.date(2024, 2, 29)
    assert len(survey.cros) == 42
    assert list(survey.categories) == ["capabilities", "compatibility", "expertise", "quality", "reliability"]
    assert [len(ids) for ids in survey.categories.values()] == [11, 3, 5, 2, 3]
    assert "operational_excellence" in survey.categories["expertise"]
    assert "operational_excellence" in survey.categories["reliability"]
    assert len(survey.attributes) == 23


def test_defaults_apply_where_keys_are_absent(tmp_path):
    survey = load_config(_write(tmp_path)).survey
    assert (survey.recency_months, survey.rating_scale.min, survey.rating_scale.max) == (18, 1, 5)
    assert (survey.big_pharma_min_rd_spend_musd, survey.min_evaluations, survey.min_cros_for_awards) == (1000, 10, 3)
    assert (survey.champion_sd_multiplier, survey.min_cell_size, survey.max_rejected_share) == (1.0, 3, 0.2)


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ({"min_evaluatons": 5}, ["min_evaluatons", "unknown key"]),
        ({"categories": {"quality": ["data_quality", "data_qualty"]}}, ["categories.quality", "data_qualty"]),
        (
            {"cros": [{"name": "Northwind Clinical", "aliases": ["NW"]}, {"name": "Other", "aliases": [" nw "]}]},
            ["cros", "' nw '", "Northwind Clinical"],
        ),
        ({"cros": [{"name": "Northwind"}, {"name": "NORTHWIND "}]}, ["cros", "NORTHWIND"]),
        ({"min_evaluations": 2, "min_cell_size": 3}, ["min_evaluations", "min_cell_size"]),
        ({"rating_scale": {"min": 5, "max": 1}}, ["rating_scale"]),
        ({"survey_close": "29/02/2024"}, ["survey_close"]),
        ({"recency_months": -1}, ["recency_months"]),
        ({"max_rejected_share": 1.5}, ["max_rejected_share"]),
        ({"min_evaluations": "ten"}, ["min_evaluations"]),
        ({"champion_sd_multiplier": -1}, ["champion_sd_multiplier"]),
        ({"attributes": {"Data Quality": "x"}}, ["attributes", "Data Quality"]),
        ({"attributes": {"cro": "x"}, "categories": {"k": ["cro"]}}, ["attributes", "contract column"]),
        ({"categories": {"quality": []}}, ["categories.quality"]),
        ({"cros": []}, ["cros"]),
        ({"columns": {"Resp ID": "respondent_id", "ID": "respondent_id"}}, ["columns"]),
    ],
    ids=[
        "unknown-key",
        "category-names-undefined-attribute",
        "alias-stands-for-two-cros",
        "name-case-collision",
        "min-evaluations-below-min-cell-size",
        "scale-reversed",
        "survey-close-not-iso",
        "negative-recency",
        "share-above-one",
        "non-integer",
        "negative-multiplier",
        "attribute-id-not-snake-case",
        "attribute-id-is-contract-column",
        "empty-category",
        "no-cros",
        "two-headers-onto-one-column",
    ],
)
def test_configuration_error_names_file_and_key(tmp_path, changes, names):
    path = _write(tmp_path, **changes)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(str(path))
    for name in names:
        assert name in message


def test_missing_required_key(tmp_path):
    document = {key: value for key, value in MINIMAL.items() if key != "survey_close"}
    path = tmp_path / "2024.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match="survey_close.*required key is missing"):
        load_config(path)


def test_not_yaml_and_not_a_mapping(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("survey_year: [2024\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 2024\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listing)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("survey_year: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_a_key_written_twice_is_a_configuration_error_naming_both_lines(tmp_path):
    """YAML keeps the last of two equal keys; a survey configuration refuses both (which did the author mean?)."""
    path = tmp_path / "2024.yaml"
    path.write_text(SAMPLE_TEXT + "min_evaluations: 5\n", encoding="utf-8")
    first = next(i for i, line in enumerate(SAMPLE_TEXT.splitlines(), 1) if line.startswith("min_evaluations:"))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and "'min_evaluations' is written twice" in message
    assert f"lines {first} and {len(SAMPLE_TEXT.splitlines()) + 1}" in message and "\n" not in message
    nested = tmp_path / "nested.yaml"
    nested.write_text("cros:\n  - {name: Acme, name: Apex}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'name' is written twice"):
        load_config(nested)


def test_yaml_nested_beyond_reason_is_one_paragraph_not_a_recursion_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("survey_year: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply") as error:
        load_config(path)
    assert "\n" not in str(error.value)


def test_overrides_replace_knobs_and_are_validated_like_the_yaml(tmp_path):
    path = _write(tmp_path)
    loaded = load_config(path, {"min_evaluations": 20, "champion_sd_multiplier": 0.5, "min_cell_size": None})
    assert loaded.survey.min_evaluations == 20 and loaded.survey.champion_sd_multiplier == 0.5
    assert loaded.overrides == {"min_evaluations": 20, "champion_sd_multiplier": 0.5}
    with pytest.raises(ConfigError, match="override `min_evaluations`"):
        load_config(path, {"min_evaluations": 0})
    with pytest.raises(ConfigError, match="cannot be overridden"):
        load_config(path, {"cros": []})


def test_sha256_identifies_the_file(tmp_path):
    import hashlib

    path = _write(tmp_path)
    assert load_config(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_attribute_in_two_categories_is_listed_for_both(tmp_path):
    survey = load_config(_write(tmp_path)).survey
    assert ("expertise", "operational_excellence") in survey.category_rows()
    assert ("reliability", "operational_excellence") in survey.category_rows()


def test_a_bootstrap_that_would_take_minutes_is_refused():
    """The attacker's recipe: `bootstrap_replicates: 100000` ran over two minutes on the 1,500-row sample.
    The bound (10,000: cro_awards/reading/knobs.py says why) keeps a run of the sample to seconds."""
    with pytest.raises(
        ConfigError, match=r"override `bootstrap_replicates`: Input should be less than or equal to 10000"
    ):
        load_config(SAMPLE_CONFIG, {"bootstrap_replicates": 100_000})
    assert load_config(SAMPLE_CONFIG, {"bootstrap_replicates": 10_000}).survey.bootstrap_replicates == 10_000


# --- CRO ids ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Café Labs, Inc.", "cafe_labs_inc"),  # the contract's example: accent dropped, punctuation one `_`
        ("Northwind Clinical", "northwind_clinical"),
        ("  --Ünïcödé   GmbH--  ", "unicode_gmbh"),  # leading and trailing `_` removed, runs collapsed
        ("İstanbul Trials", "istanbul_trials"),  # dotted capital I: NFKD splits the dot off, dropped
        ("ﬁne Clinical", "fine_clinical"),  # the ligature ﬁ is fi under NFKD (compatibility form)
        ("Straße 5 CRO", "stra_e_5_cro"),  # ß has no decomposition: it is not a-z, so `_`
        ("株式会社", ""),  # nothing survives
    ],
    ids=["contract-example", "plain", "edges-and-runs", "dotted-capital-i", "ligature", "eszett", "no-latin"],
)
def test_derive_id(name, expected):
    assert derive_id(name) == expected


def test_every_cro_has_an_id_given_or_derived(tmp_path):
    cros = [
        {"name": "Café Labs, Inc.", "aliases": ["Cafe Labs"]},
        {"id": "northwind", "name": "Northwind Clinical", "formerly": ["northwind_research", "westwind"]},
    ]
    survey = load_config(_write(tmp_path, cros=cros)).survey
    assert [(cro.id, cro.name, cro.formerly) for cro in survey.cros] == [
        ("cafe_labs_inc", "Café Labs, Inc.", ()),
        ("northwind", "Northwind Clinical", ("northwind_research", "westwind")),
    ]


def test_the_bundled_years_write_the_ids_their_names_derive():
    for year in (2023, 2024):
        path = SAMPLE_CONFIG.with_name(f"{year}.yaml")
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert all("id" in cro for cro in raw["cros"]), path
        assert [cro["id"] for cro in raw["cros"]] == [derive_id(cro["name"]) for cro in raw["cros"]]
        assert load_config(path).survey.cros[0].id == "northwind_clinical"


@pytest.mark.parametrize(
    ("cros", "names"),
    [
        (
            [{"name": "Café Labs"}, {"name": "Cafe Labs!"}],
            ["cros", "'Café Labs'", "'Cafe Labs!'", "`cafe_labs`", "distinct `id:`"],
        ),
        (
            [{"name": "Northwind Clinical", "id": "northwind"}, {"name": "Northwind"}],
            ["cros", "'Northwind Clinical'", "'Northwind'", "`northwind`", "distinct `id:`"],
        ),
        ([{"name": "株式会社"}], ["cros.0", "'株式会社'", "gives no usable id", "`id:`"]),
        ([{"name": "3D Trials"}], ["cros.0", "'3D Trials'", "'3d_trials'", "`id:`"]),
        ([{"name": "Acme", "id": "Acme"}], ["cros.0.id", "'Acme'", "lower-case"]),
        ([{"name": "Acme", "formerly": ["Old Acme"]}], ["cros.0.formerly", "'Old Acme'", "lower-case"]),
        ([{"name": "Acme", "formerly": ["acme"]}], ["cros.0", "'Acme'", "its own id `acme`", "remove"]),
        ([{"name": "Acme", "formerly": ["apex", "apex"]}], ["cros.0", "'Acme'", "twice"]),
        (
            [{"name": "Acme"}, {"name": "Apex", "formerly": ["acme"]}],
            ["cros", "`acme`", "'Apex'", "'Acme'", "formerly", "remove it"],
        ),
        (
            [{"name": "Acme East", "formerly": ["acme"]}, {"name": "Acme West", "formerly": ["acme"]}],
            [
                "cros: 'Acme East' (`acme_east`) and 'Acme West' (`acme_west`) both list `acme` under `formerly`",
                "new entities, formed from `acme`",
                "remove `acme` from the `formerly` of both",
            ],
        ),
    ],
    ids=[
        "two-names-derive-one-id",
        "given-id-equals-a-derived-one",
        "name-derives-nothing",
        "derived-id-starts-with-a-digit",
        "id-not-snake-case",
        "former-id-not-snake-case",
        "cro-lists-itself-as-former",
        "former-id-listed-twice",
        "id-still-on-the-ballot-is-another-cros-former-id",
        "two-cros-claim-one-former-id",
    ],
)
def test_cro_id_errors_name_the_file_the_key_and_the_cros(tmp_path, cros, names):
    path = _write(tmp_path, cros=cros)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(str(path))
    for name in names:
        assert name in message, message


def test_a_merger_lists_several_former_ids(tmp_path):
    cros = [{"name": "Acme Apex", "formerly": ["acme", "apex"]}, {"name": "Beta"}]
    survey = load_config(_write(tmp_path, cros=cros)).survey
    assert survey.cros[0].formerly == ("acme", "apex")


def test_category_label():
    assert [category_label(c) for c in ("capabilities", "phase_iv", "quality")] == [
        "Capabilities",
        "Phase iv",
        "Quality",
    ]


# --- respondent screens ---------------------------------------------------------------------------------

SCREENS = {
    "qualification": {"column": "decision_role", "allowed": ["Final decision maker", "shared decision maker"]},
    "straight_lining": {"min_ratings": 8},
    "speeding": {"column": "duration_seconds", "min_seconds": 120},
}


def test_no_screens_is_the_default_and_needs_no_column(tmp_path):
    from cro_awards.reading.config import Screens

    screens = load_config(_write(tmp_path)).survey.screens
    assert screens == Screens()
    assert (screens.qualification, screens.straight_lining, screens.speeding) == (None, None, None)
    assert screens.columns() == () and not screens.configured
    assert load_config(SAMPLE_CONFIG).survey.screens == Screens()  # 2024 configures none


def test_screens_as_configured(tmp_path):
    screens = load_config(_write(tmp_path, screens=SCREENS)).survey.screens
    assert screens.qualification.allowed == ("Final decision maker", "shared decision maker")
    assert screens.straight_lining.min_ratings == 8
    assert screens.speeding.min_seconds == 120.0 and isinstance(screens.speeding.min_seconds, float)
    assert screens.columns() == ("decision_role", "duration_seconds")
    assert screens.column_keys() == {
        "decision_role": "screens.qualification.column",
        "duration_seconds": "screens.speeding.column",
    }
    assert screens.configured


def test_each_screen_is_optional(tmp_path):
    only = load_config(_write(tmp_path, screens={"speeding": SCREENS["speeding"]})).survey.screens
    assert (only.qualification, only.straight_lining) == (None, None)
    assert only.columns() == ("duration_seconds",)
    alone = load_config(_write(tmp_path, screens={"straight_lining": {"min_ratings": 2}})).survey.screens
    assert alone.columns() == ()  # straight-lining reads the ratings, no column of its own
    assert alone.straight_lining.min_ratings == 2  # the least that can be alike


def _screens(**changes) -> dict:
    return {**SCREENS, **changes}


@pytest.mark.parametrize(
    ("screens", "names"),
    [
        (
            _screens(qualification={"column": "decision_role", "allowed": []}),
            ["screens.qualification.allowed", "lists no answer"],
        ),
        (
            _screens(qualification={"column": "decision_role", "allowed": ["  ", "\u200b"]}),
            ["screens.qualification.allowed", "must not be blank"],
        ),
        (
            _screens(qualification={"column": "decision_role", "allowed": ["final decision maker", ""]}),
            ["screens.qualification.allowed", "must not be blank"],
        ),
        (_screens(qualification={"column": "decision_role"}), ["screens.qualification.allowed", "required key"]),
        (_screens(straight_lining={"min_ratings": 1}), ["screens.straight_lining.min_ratings", "2"]),
        (_screens(straight_lining={"min_ratings": 2.5}), ["screens.straight_lining.min_ratings"]),
        (
            _screens(speeding={"column": "duration_seconds", "min_seconds": -1}),
            ["screens.speeding.min_seconds", "greater than or equal to 0"],
        ),
        (_screens(speeding={"column": "duration_seconds", "min_seconds": "120"}), ["screens.speeding.min_seconds"]),
        (
            _screens(speeding={"column": "duration_seconds", "min_seconds": float("inf")}),
            ["screens.speeding.min_seconds"],
        ),
        (
            _screens(speeding={"column": "cro", "min_seconds": 120}),
            ["screens.speeding.column", "`cro` is a contract column"],
        ),
        (
            _screens(qualification={"column": "respondent_id", "allowed": ["x"]}),
            ["screens.qualification.column", "`respondent_id` is a contract column"],
        ),
        (
            _screens(qualification={"column": "data_quality", "allowed": ["x"]}),
            ["screens.qualification.column", "`data_quality` is an attribute id"],
        ),
        (
            _screens(speeding={"column": "decision_role", "min_seconds": 120}),
            ["screens.qualification.column", "screens.speeding.column", "`decision_role`"],
        ),
        (_screens(speeding={"colum": "duration_seconds", "min_seconds": 120}), ["screens.speeding.colum", "unknown"]),
        ({"speding": SCREENS["speeding"]}, ["screens.speding", "unknown key"]),
    ],
    ids=[
        "allowed-empty",
        "allowed-only-blank",
        "allowed-one-blank",
        "allowed-missing",
        "min-ratings-below-2",
        "min-ratings-not-an-integer",
        "min-seconds-negative",
        "min-seconds-text",
        "min-seconds-infinite",
        "column-is-contract-column",
        "qualification-column-is-respondent-id",
        "column-is-attribute-id",
        "both-screens-one-column",
        "misspelt-key",
        "misspelt-screen",
    ],
)
def test_screens_configuration_error_names_file_and_key(tmp_path, screens, names):
    path = _write(tmp_path, screens=screens)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(str(path))
    assert "\n" not in message  # one paragraph
    for name in names:
        assert name in message


def test_screens_are_not_method_knobs_and_cannot_be_overridden(tmp_path):
    with pytest.raises(ConfigError, match="screens cannot be overridden"):
        load_config(_write(tmp_path), overrides={"screens": SCREENS})


# --- min_cell_size is a promise --------------------------------------------------------------------------


def _year_with_min_cell_size(tmp_path, value: int):
    text = SAMPLE_TEXT.replace("min_cell_size: 3", f"min_cell_size: {value}")
    path = tmp_path / "2024.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_min_cell_size_is_at_least_three_in_the_yaml(tmp_path):
    with pytest.raises(ConfigError, match="min_cell_size") as refused:
        load_config(_year_with_min_cell_size(tmp_path, 2))
    assert "3" in str(refused.value)


def test_an_override_may_raise_min_cell_size_never_lower_it_below_the_yamls(tmp_path):
    path = _year_with_min_cell_size(tmp_path, 4)
    assert load_config(path, {"min_cell_size": 6}).survey.min_cell_size == 6
    assert load_config(path, {"min_cell_size": 4}).survey.min_cell_size == 4
    with pytest.raises(ConfigError) as refused:
        load_config(path, {"min_cell_size": 3})
    message = str(refused.value)
    assert "override min_cell_size = 3 is below the YAML's min_cell_size = 4" in message
    assert "never lower it" in message and "\n" not in message


@pytest.mark.parametrize(
    ("cros", "expected"),
    [
        (
            [{"name": "Acme"}, {"name": "Apex", "alias": ["Apex Inc"]}],
            "key `cros.1.alias` (CRO 'Apex', entry 2 of cros): unknown key",
        ),
        ([{"name": "Acme"}, {"id": "apex", "name": "  "}], "key `cros.1.name` (CRO with id 'apex', entry 2 of cros): "),
        (
            [{"name": "Acme"}, {"aliases": ["Apex"]}],
            "key `cros.1.name` (a CRO without a name or id, after 'Acme', entry 2 of cros): required key is missing",
        ),
    ],
    ids=["by-name", "by-id", "neither"],
)
def test_an_error_in_a_cro_entry_names_the_cro(tmp_path, cros, expected):
    with pytest.raises(ConfigError) as raised:
        load_config(_write(tmp_path, cros=cros))
    assert expected in str(raised.value), str(raised.value)
