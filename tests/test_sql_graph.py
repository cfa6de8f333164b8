"""The SQL graph of `sql/` (cro_awards/engine/sql.py): headers, run order, the workspace and the output checks.

- Headers: every model (sql/*.sql), every output check (sql/tests/*.sql) and every check of the disclosure
  audit (sql/audit/*.sql) names in `-- reads:` exactly the relations DuckDB's own parser finds in its text
  (so the run order cannot miss or invent an edge), and in `-- params:` exactly the parameters it uses.
- Run order: a topological order of those headers, the same on every run.
- Workspace: registers only the sources, refuses a build missing one, builds each model once, and owns
  (and removes) a spill folder of its own.
- Output checks: on a tiny world built by the real chain from literal sources, `failed_checks` is empty;
  each planted breach is reported, naming the check that catches it and no other.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cro_awards.engine import graph, sql
from cro_awards.method import uncertainty
from cro_awards.method.transform import export_columns, method_parameters
from cro_awards.reading.config import SurveyConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent

STR = pa.string()
INT = pa.int64()
DBL = pa.float64()

FILES = (
    [("sql", name) for name in sql.models()]
    + [("sql/tests", name) for name in sql.checks()]
    + [("sql/audit", name) for name in sql.checks(sql.AUDIT_DIR)]
)
FOLDERS = {"sql": sql.SQL_DIR, "sql/tests": sql.TESTS_DIR, "sql/audit": sql.AUDIT_DIR}


def file_id(case: tuple[str, str]) -> str:
    return f"{case[0]}/{case[1]}.sql"


def parsed_relations(text: str) -> set[str]:
    """The relations DuckDB's parser finds (CTE names excluded); `$parameters` become NULL, because the
    parser refuses prepared parameters. On a workspace's connection, which knows the project's functions
    (identity_key)."""
    with graph.Workspace.open() as workspace:
        return set(workspace.connection.get_table_names(re.sub(r"\$[a-z_]+", "NULL", text)))


# --- headers ----------------------------------------------------------------------------------------


def test_parsed_relations_leaves_out_ctes_and_reads_through_parameters():
    # The yardstick of the header tests: a CTE (`a`) is not a relation read; `$p` would stop the parser.
    text = "-- reads: b, c\nwith a as (select * from b where x = $p) select * from a join c on a.k = c.k"
    assert parsed_relations(text) == {"b", "c"}


def test_the_graph_has_files_to_check():
    # Guards the parametrized tests below against an empty glob (a moved folder would pass them all).
    assert {"stg_evaluations", "int_evaluations", "int_accepted_evaluations", "awards"} <= set(sql.models())
    assert {
        "awards_only_for_eligible_cros",
        "ranks_exactly_for_eligible_cros",
        "read_equals_accepted_plus_quarantined",
        "published_rows_have_labels",
    } <= set(sql.checks())
    assert {
        "attribute_rows_rest_on_countable_cells",
        "overall_pools_the_published_segments",
        "composites_average_the_published_attributes",
        "awards_rest_on_published_eligible_composites",
        "uncertainty_only_on_eligible_rows",
    } <= set(sql.checks(sql.AUDIT_DIR))


@pytest.mark.parametrize("case", FILES, ids=file_id)
def test_what_a_file_reads_is_what_duckdbs_parser_finds_and_no_header_restates_it(case):
    folder, name = FOLDERS[case[0]], case[1]
    assert set(sql.reads(name, folder)) == parsed_relations(sql.sql_text(name, folder))
    assert not any(line.startswith("-- reads:") for line in sql.sql_text(name, folder).splitlines())


@pytest.mark.parametrize("case", FILES, ids=file_id)
def test_every_header_states_its_grain(case):
    folder, name = FOLDERS[case[0]], case[1]
    assert sql.header(name, folder).get("grain", "").strip()


@pytest.mark.parametrize("name", sql.models())
def test_every_model_states_its_key(name):
    assert sql.key(name), f"sql/{name}.sql has no `-- key:` header"


@pytest.mark.parametrize("case", FILES, ids=file_id)
def test_every_relation_read_is_a_model_or_a_source(case):
    folder, name = FOLDERS[case[0]], case[1]
    unknown = set(sql.reads(name, folder)) - set(sql.models()) - set(sql.SOURCES)
    assert not unknown


@pytest.mark.parametrize("case", FILES, ids=file_id)
def test_params_header_names_exactly_the_parameters_used(case):
    folder, name = FOLDERS[case[0]], case[1]
    stated = {param.removeprefix("$") for param in sql._names(sql.header(name, folder).get("params", ""))}
    assert stated == set(sql.parameters_of(name, folder))


def test_reads_come_from_the_sql_sorted_and_headers_keep_grain_key_and_materialization():
    assert sql.reads("cro_aliases") == ("ballot",)
    assert sql.reads("int_composite_scores") == (
        "category_attributes",
        "int_attribute_bits",
        "int_attribute_scores",
        "int_contributions",
    )
    assert sql.reads("composite_scores") == (
        "category_labels",
        "composite_uncertainty",
        "cro_labels",
        "int_composite_scores",
    )
    # An audit check, read from its own folder: the published tables and the category lists only.
    assert sql.reads("composites_average_the_published_attributes", sql.AUDIT_DIR) == (
        "attribute_scores",
        "category_attributes",
        "composite_scores",
    )
    # A model binding a value no relation holds reads nothing.
    assert sql.reads("int_recency_window") == ()
    assert sql.key("awards") == ("segment", "category", "cro", "award")
    assert sql.materialization("int_accepted_ratings") == "view"
    assert sql.materialization("int_counted_ratings") == "view"
    assert sql.materialization("int_evaluations") == "table"


def test_the_split_staging_reads_only_the_raw_export():
    assert sql.reads("stg_evaluations") == ("raw_evaluations",)
    assert set(sql.reads("int_evaluations")) == {"stg_evaluations", "cro_aliases", "stg_ratings"}
    assert set(sql.reads("int_accepted_evaluations")) == {"int_evaluations", "int_rejected_evaluations"}


# --- run order --------------------------------------------------------------------------------------


def test_run_order_puts_each_model_after_every_model_it_reads():
    order = graph.run_order()
    position = {name: index for index, name in enumerate(order)}
    for name in order:
        for relation in sql.reads(name):
            if relation in sql.SOURCES:
                continue
            assert position[relation] < position[name], f"{name} runs before {relation}, which it reads"


def test_run_order_covers_every_model_once():
    order = graph.run_order()
    assert len(order) == len(set(order))
    assert set(order) == set(sql.models())


def test_run_order_of_a_target_is_its_ancestors_only():
    # int_evaluations reads stg_evaluations (raw_evaluations), cro_aliases (ballot) and stg_ratings
    # (raw_ratings, stg_rating_texts (raw_ratings)). Ties are broken by name: first the three that read
    # sources only, then stg_ratings, then int_evaluations. Nothing downstream (validation's judgement,
    # the quarantine, the scores) is built.
    assert graph.run_order(("int_evaluations",)) == (
        "cro_aliases",
        "stg_evaluations",
        "stg_rating_texts",
        "stg_ratings",
        "int_evaluations",
    )


def test_run_order_of_a_leaf_reading_sources_only_is_itself():
    assert graph.run_order(("int_rejected_evaluations",)) == ("int_rejected_evaluations",)
    assert graph.run_order(()) == ()


def test_run_order_refuses_an_unknown_target():
    with pytest.raises(sql.SqlGraphError, match="stg_nothing"):
        graph.run_order(("stg_nothing",))


def test_run_order_is_deterministic():
    # Whatever the order the targets are given in ...
    assert graph.run_order(("awards", "attribute_scores")) == graph.run_order(("attribute_scores", "awards"))
    # ... and whatever Python's string hashing (set iteration order) in a fresh process.
    script = "import json; from cro_awards.engine import graph; print(json.dumps([graph.run_order(), graph.run_order(('awards',))]))"
    outputs = set()
    for seed in ("0", "1", "12345"):
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1
    everything, awards = json.loads(outputs.pop())
    assert tuple(everything) == graph.run_order()
    assert tuple(awards) == graph.run_order(("awards",))


def test_sources_of_a_target():
    assert graph.sources_of(("int_evaluations",)) == {"ballot", "raw_evaluations", "raw_ratings"}
    assert graph.sources_of(("int_rejected_evaluations",)) == {"rejection_reasons"}


# --- the tiny world ---------------------------------------------------------------------------------

EXPORT_SCHEMA = pa.schema(
    [
        ("source_row", INT),
        ("respondent_id", STR),
        ("rd_spend_musd", STR),
        ("cro", STR),
        ("last_engaged", STR),
        ("a1", STR),
    ]
)


def table(schema: pa.Schema, rows: list[tuple]) -> pa.Table:
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(schema.names)}, schema=schema)


def world_params() -> dict[str, Any]:
    """The parameters production binds for a survey with these knobs: awards from 2 eligible CROs,
    champions 1 sd above the mean; and, bound at the SQL level (the YAML refuses min_cell_size below 3,
    and min_evaluations below min_cell_size), eligible from 2 evaluations and every cell countable
    (min_cell_size 1): the world is about the output checks, not the countable cells (test_sql_transforms.py,
    test_disclosure_audit.py)."""
    survey = SurveyConfig(
        survey_year=2024,
        survey_close=dt.date(2024, 2, 29),
        cros=[{"name": "Acme"}, {"name": "Beta"}, {"name": "Gamma"}],
        attributes={"a1": "Attribute one"},
        categories={"k": ("a1",)},
        min_cros_for_awards=2,
        champion_sd_multiplier=1.0,
    )
    return {**method_parameters(survey), "min_evaluations": 2, "min_cell_size": 1}


def world_sources() -> dict[str, pa.Table]:
    """Seven rows read: five accepted (Acme 2, Beta 2, Gamma 1), one unknown CRO and one malformed row
    quarantined (validation's verdict given as rejection_reasons). The ballot maps each name to its id
    (`acme`, ...); the labels give the names back, and a1 and k their labels."""
    export = table(
        EXPORT_SCHEMA,
        [
            (1, "R1", "2000", "Acme", "2023-05-01", "5"),
            (2, "R2", "10", "acme ", "2023-05-02", "5"),
            (3, "R3", "10", "Beta", "2023-05-03", "3"),
            (4, "R4", "10", "Beta", "2023-05-04", "3"),
            (5, "R5", "10", "Gamma", "2023-05-05", "4"),
            (6, "R6", "10", "Nobody", "2023-05-06", "2"),
        ],
    )
    malformed = table(pa.schema([*EXPORT_SCHEMA, ("raw_text", STR)]), [(7, "R7", "10", None, None, None, "R7,10")])
    # The export as the pipeline registers it: fields by position, their names in export_columns.
    fields = [f"field_{position}" for position in range(1, len(EXPORT_SCHEMA))]
    return {
        "ballot": table(
            pa.schema([("spelling", STR), ("cro", STR)]), [("Acme", "acme"), ("Beta", "beta"), ("Gamma", "gamma")]
        ),
        "category_attributes": table(pa.schema([("category", STR), ("attribute", STR)]), [("k", "a1")]),
        "cro_labels": table(
            pa.schema([("cro", STR), ("cro_name", STR)]), [("acme", "Acme"), ("beta", "Beta"), ("gamma", "Gamma")]
        ),
        "attribute_labels": table(pa.schema([("attribute", STR), ("attribute_label", STR)]), [("a1", "Attribute one")]),
        "category_labels": table(pa.schema([("category", STR), ("category_label", STR)]), [("k", "K")]),
        "raw_export": export.rename_columns(["source_row", *fields]),
        "export_columns": export_columns(EXPORT_SCHEMA.names[1:]),
        "raw_evaluations": export.select(["source_row", "respondent_id", "rd_spend_musd", "cro", "last_engaged"]),
        "raw_ratings": export.select(["source_row", "a1"]),
        "malformed_rows": malformed.rename_columns(["source_row", *fields, "raw_text"]),
        "rejection_reasons": table(
            pa.schema(
                [("source_row", INT), ("reason", STR), ("reason_order", pa.int32()), ("attributes", pa.list_(STR))]
            ),
            [(6, "unknown_cro", 3, None), (7, "malformed_row", 0, None)],
        ),
        "composite_uncertainty": uncertainty.SCHEMA.empty_table(),
    }


@pytest.fixture
def workspace():
    opened = graph.Workspace.open()
    yield opened
    opened.close()


@pytest.fixture
def world(workspace):
    """The tiny world, built by the real chain: every published table and the quarantine."""
    for name, source in world_sources().items():
        workspace.register(name, source)
    workspace.build(*sql.PUBLISHED, sql.QUARANTINE, params=world_params())
    return workspace


def query(workspace: graph.Workspace, text: str) -> list[tuple]:
    return workspace.connection.execute(text).fetchall()


# --- workspace --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["int_evaluations", "stg_ratings", "awards", "Ballot", "raw_export; drop"])
def test_register_refuses_a_name_that_is_not_a_source(workspace, name):
    with pytest.raises(sql.SqlGraphError, match="not a source"):
        workspace.register(name, pa.table({"x": [1]}))
    assert workspace.registered == set()


def test_build_without_a_needed_source_names_it_and_builds_nothing(workspace):
    sources = world_sources()
    workspace.register("ballot", sources["ballot"])
    # int_evaluations reads raw_evaluations (stg_evaluations) and raw_ratings (the ratings), both missing.
    with pytest.raises(sql.SqlGraphError, match=r"needs source\(s\) raw_evaluations, raw_ratings"):
        workspace.build("int_evaluations", params=world_params())
    assert workspace.built == set()
    # Nothing ran, not even cro_aliases, whose source is there: only the registered ballot exists.
    assert query(workspace, "select table_name from information_schema.tables") == [("ballot",)]


def test_build_of_the_quarantine_needs_the_reasons(workspace):
    for name, source in world_sources().items():
        if name != "rejection_reasons":
            workspace.register(name, source)
    workspace.build("int_evaluations", params=world_params())  # needs no reasons
    with pytest.raises(sql.SqlGraphError, match="rejection_reasons"):
        workspace.build(sql.QUARANTINE, params=world_params())


def test_build_builds_each_model_once(workspace, monkeypatch):
    ran: list[str] = []
    real_run = sql.run

    def counting_run(connection, name, params):
        ran.append(name)
        real_run(connection, name, params)

    monkeypatch.setattr(sql, "run", counting_run)
    for name, source in world_sources().items():
        workspace.register(name, source)
    params = world_params()

    workspace.build("int_evaluations", params=params)
    assert ran == ["cro_aliases", "stg_evaluations", "stg_rating_texts", "stg_ratings", "int_evaluations"]

    ran.clear()
    workspace.build("int_evaluations", params=params)  # the same target again
    workspace.build("stg_ratings", "cro_aliases", params=params)  # built on the way already
    assert ran == []

    # A later target runs only what is not built yet: the reasons, then the accepted evaluations.
    workspace.build("int_accepted_evaluations", params=params)
    assert ran == ["int_rejected_evaluations", "int_accepted_evaluations"]

    ran.clear()
    workspace.build(*sql.PUBLISHED, sql.QUARANTINE, params=params)
    # Everything but what only validation's nodes read or bind verdicts into (the judged values, the
    # invalid ratings, the screens' staging and rows), the accounting of the cells not counted and the
    # contributions as a draft keeps them: nothing published or quarantined reads them.
    elsewhere = {
        "int_rating_values",
        "int_recency_window",
        "int_invalid_ratings",
        "int_equal_ratings",
        "int_qualification_keys",
        "stg_qualification_texts",
        "stg_duration_texts",
        "int_screen_qualification",
        "int_screen_speeding",
        "int_screen_straight_lining",
        "int_not_counted",
        "int_contribution_masks",
    }
    assert sorted(ran) == sorted(
        set(sql.models())
        - elsewhere
        - {
            "cro_aliases",
            "stg_evaluations",
            "stg_rating_texts",
            "stg_ratings",
            "int_evaluations",
            "int_rejected_evaluations",
            "int_accepted_evaluations",
        }
    )
    assert len(ran) == len(set(ran))
    assert workspace.built == set(sql.models()) - elsewhere
    assert elsewhere <= set(sql.models())

    # The accounting reads the cells, built on the way to the published tables: only itself runs.
    ran.clear()
    workspace.build("int_not_counted", params=params)
    assert ran == ["int_not_counted"]


def test_each_workspace_spills_to_its_own_folder_removed_on_close():
    first, second = graph.Workspace.open(), graph.Workspace.open()
    try:
        assert first.spill != second.spill
        assert first.spill.is_dir() and second.spill.is_dir()
        for opened in (first, second):
            [(setting,)] = opened.connection.execute("select current_setting('temp_directory')").fetchall()
            assert Path(setting) == opened.spill
        first.close()
        assert not first.spill.exists()
        assert second.spill.is_dir()  # closing one leaves the other's alone
    finally:
        first.close()
        second.close()
    assert not second.spill.exists()


def test_workspace_as_context_manager_closes():
    with graph.Workspace.open() as opened:
        spill = opened.spill
        assert spill.is_dir()
    assert not spill.exists()


# --- output checks ----------------------------------------------------------------------------------


def test_tiny_world_as_built(world):
    # Preconditions of the planted breaches below, worked by hand. Row 2 (`acme `) matches Acme; Acme has
    # one big_pharma (2000) and one small_pharma evaluation. Overall, k = a1: Acme 5 (2 evaluations),
    # Beta 3 (2), Gamma 4 (1: not eligible, min_evaluations 2). Eligible: Acme, Beta; w = 2, 2:
    # mean 4, sd = sqrt((2 * 1 + 2 * 1) / 4) = 1, threshold 5: Acme leads and is champion (at the threshold).
    # small_pharma has one eligible CRO (Beta) < 2: no awards; big_pharma has Acme alone, 1 evaluation.
    assert query(
        world,
        "select segment, cro, n_evaluations, composite, is_eligible, rank "
        "from int_composite_scores order by segment, cro",
    ) == [
        ("big_pharma", "acme", 1, 5.0, False, None),
        ("overall", "acme", 2, 5.0, True, 1),
        ("overall", "beta", 2, 3.0, True, 2),
        ("overall", "gamma", 1, 4.0, False, None),
        ("small_pharma", "acme", 1, 5.0, False, None),
        ("small_pharma", "beta", 2, 3.0, True, 1),
        ("small_pharma", "gamma", 1, 4.0, False, None),
    ]
    assert query(world, sql.sorted_query("awards")) == [
        ("overall", "k", "acme", "champion", 5.0, 4.0, 1.0, 5.0, None, None, "Acme", "K"),
        ("overall", "k", "acme", "leader", 5.0, 4.0, 1.0, 5.0, None, None, "Acme", "K"),
    ]  # p_award and is_robust null: the world registers no resampling figures; the labels come last
    assert query(
        world, "select distinct cro, cro_name, attribute, attribute_label from attribute_scores order by 1"
    ) == [
        ("acme", "Acme", "a1", "Attribute one"),
        ("beta", "Beta", "a1", "Attribute one"),
        ("gamma", "Gamma", "a1", "Attribute one"),
    ]
    assert query(world, "select distinct cro, cro_name, category, category_label from composite_scores order by 1") == [
        ("acme", "Acme", "k", "K"),
        ("beta", "Beta", "k", "K"),
        ("gamma", "Gamma", "k", "K"),
    ]
    assert query(world, "select source_row from int_accepted_evaluations order by 1") == [(1,), (2,), (3,), (4,), (5,)]
    assert query(world, "select source_row from int_rejected_evaluations order by 1") == [(6,), (7,)]


def test_failed_checks_empty_when_every_rule_holds(world):
    assert world.failed_checks(world_params()) == []


def check_failure(check: str, count: int) -> str:
    """The start of the sentence naming a failed output check (its file under sql/tests/)."""
    return f"sql/tests/{check}.sql: {count} row(s) break the rule: "


PLANTS = {
    # an award to Gamma, not eligible in overall/k (1 evaluation < 2)
    "award_to_a_cro_not_eligible_in_its_cell": (
        ["insert into awards values ('overall', 'k', 'gamma', 'leader', 4.0, 4.0, 1.0, 5.0, null, null, 'Gamma', 'K')"],
        check_failure("awards_only_for_eligible_cros", 1),
    ),
    # Beta is eligible in overall/k, but has no composite at all in big_pharma/k
    "award_in_a_cell_where_the_cro_has_no_composite": (
        [
            "insert into awards values ('big_pharma', 'k', 'beta', 'leader', 3.0, 3.0, 0.0, 3.0, null, null, 'Beta', 'K')"
        ],
        check_failure("awards_only_for_eligible_cros", 1),
    ),
    "composite_ranked_but_not_eligible": (
        ["update int_composite_scores set rank = 2 where segment = 'overall' and cro = 'gamma'"],
        check_failure("ranks_exactly_for_eligible_cros", 1),
    ),
    "composite_eligible_but_not_ranked": (
        ["update int_composite_scores set rank = null where segment = 'small_pharma' and cro = 'beta'"],
        check_failure("ranks_exactly_for_eligible_cros", 1),
    ),
    # 7 read; 5 accepted + 3 quarantined = 8, row 1 in both
    "row_both_accepted_and_quarantined": (
        ["insert into int_rejected_evaluations values (1, ['no_ratings'])"],
        check_failure("read_equals_accepted_plus_quarantined", 1),
    ),
    # 7 read = 4 accepted + 3 quarantined, yet row 1 is in both (and row 2 in neither)
    "row_both_while_the_totals_balance": (
        [
            "insert into int_rejected_evaluations values (1, ['no_ratings'])",
            "delete from int_accepted_evaluations where source_row = 2",
        ],
        check_failure("read_equals_accepted_plus_quarantined", 1),
    ),
    # 7 read; 4 accepted + 2 quarantined: row 2 is lost
    "well_formed_row_neither_accepted_nor_quarantined": (
        ["delete from int_accepted_evaluations where source_row = 2"],
        check_failure("read_equals_accepted_plus_quarantined", 1),
    ),
    # 7 read; 5 accepted + 1 quarantined: the malformed row 7 is lost
    "malformed_row_not_quarantined": (
        ["delete from int_rejected_evaluations where source_row = 7"],
        check_failure("read_equals_accepted_plus_quarantined", 1),
    ),
    "duplicate_awards_row": (
        ["insert into awards select * from awards where award = 'leader'"],
        "awards: key (segment, category, cro, award) has 0 null and 1 duplicate row(s)",
    ),
    "duplicate_composite_scores_key_with_other_values": (
        [
            "insert into composite_scores values ('overall', 'beta', 'k', 2, 3.5, true, 2, null, null, null, null, null, "
            "null, null, null, null, 'Beta', 'K')"
        ],
        "composite_scores: key (segment, cro, category) has 0 null and 1 duplicate row(s)",
    ),
    "null_in_attribute_scores_key": (
        ["insert into attribute_scores values (null, 'acme', 'a1', 1, 5.0, 'Acme', 'Attribute one')"],
        "attribute_scores: key (segment, cro, attribute) has 1 null and 0 duplicate row(s)",
    ),
    # a CRO, attribute or category missing from the year's labels
    "published_rows_without_labels": (
        [
            "update attribute_scores set cro_name = null where cro = 'beta' and segment = 'overall'",
            "update composite_scores set category_label = null where cro = 'acme' and segment = 'overall'",
            "update awards set cro_name = null where award = 'leader'",
        ],
        check_failure("published_rows_have_labels", 3),
    ),
}


@pytest.mark.parametrize("plant", PLANTS)
def test_failed_checks_names_the_check_a_planted_breach_breaks(world, plant):
    statements, expected = PLANTS[plant]
    for statement in statements:
        world.connection.execute(statement)
    failed = world.failed_checks(world_params())
    assert len(failed) == 1, failed  # only the check that catches it
    assert failed[0].startswith(expected), failed


def test_failed_check_sentence_quotes_the_rule(world):
    world.connection.execute("update int_composite_scores set rank = 2 where segment = 'overall' and cro = 'gamma'")
    assert world.failed_checks(world_params()) == [
        (
            "sql/tests/ranks_exactly_for_eligible_cros.sql: 1 row(s) break the rule: "
            "a composite has a rank exactly when its CRO is eligible in the cell."
        ),
    ]


def test_failed_checks_counts_every_breaking_row(world):
    # Two awards to ineligible CROs (Gamma overall, Acme small_pharma) and two ranked ineligible composites.
    world.connection.execute(
        "insert into awards values ('overall', 'k', 'gamma', 'leader', 4.0, 4.0, 1.0, 5.0, null, null, 'Gamma', 'K'), "
        "('small_pharma', 'k', 'acme', 'leader', 5.0, 4.0, 1.0, 5.0, null, null, 'Acme', 'K')"
    )
    world.connection.execute("update int_composite_scores set rank = 1 where not is_eligible and cro <> 'acme'")
    failed = world.failed_checks(world_params())
    assert [line.split(" break the rule")[0] for line in failed] == [
        "sql/tests/awards_only_for_eligible_cros.sql: 2 row(s)",
        "sql/tests/ranks_exactly_for_eligible_cros.sql: 2 row(s)",
    ]
