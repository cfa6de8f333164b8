"""No quiet loss of a CRO (issue 22): a CRO spelling that matches no name or alias of the year's ballot.

Literal exports against the tiny survey of `helpers_exports` (min_evaluations 3):
- `check` lists every unmatched spelling with its rows (however few), and the blank CRO rows apart;
- a spelling in exactly min_evaluations rows fails `check` (exit 11) and stops a run after validation,
  before the quarantine is written (`on_rejected` never called); one row fewer does not, but is listed;
- a spelling under `not_rated:` does not stop, and its rows are still quarantined as unknown_cro;
- the message names the spelling, its rows and the YAML lines (`- name: ...`, `aliases: [...]`,
  `not_rated: [...]`), and each of those lines, written into the YAML, lets the export through;
- `not_rated` is validated like the ballot (blank, twice, a CRO's own name or alias);
- end to end (Prefect): `cro-awards run` exits 11 and writes nothing (no draft, quarantine or output).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cro_awards.engine.errors import ConfigError, UnmatchedCroError
from cro_awards.reading.config import load_config
from cro_awards.reading.unmatched import UnmatchedSpelling
from cro_awards.run.dry_run import check_export
from cro_awards.run.pipeline import run_pipeline
from helpers_exports import CONFIG_YAML, row, write_config, write_csv

SECRET = "RESP-SECRET-"


def _export(folder: Path, spellings: dict[str, int], *, name: str = "export.csv") -> Path:
    """Six good rows (two per configured CRO), then `rows` rows of each spelling, each its own respondent."""
    rows = [row(respondent_id=f"{SECRET}G{n}", cro=["Northwind", "Aldercrest", "Bluefen"][n % 3]) for n in range(6)]
    for index, (spelling, count) in enumerate(spellings.items()):
        rows += [row(respondent_id=f"{SECRET}{index}-{n}", cro=spelling) for n in range(count)]
    return write_csv(folder / name, rows)


def _yaml_with(extra: dict) -> str:
    """CONFIG_YAML with keys changed (parsed and dumped again)."""
    config = yaml.safe_load(CONFIG_YAML)
    config.update(extra)
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def _written(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


# --- check ------------------------------------------------------------------------------------------


def test_a_spelling_in_exactly_min_evaluations_rows_fails_check(tmp_path: Path) -> None:
    export = _export(tmp_path, {"Northwind Health": 3, "Acme Trials": 1})
    report = check_export(write_config(tmp_path), export)
    assert report.unmatched == (UnmatchedSpelling("Northwind Health", 3), UnmatchedSpelling("Acme Trials", 1))
    assert report.lost == (UnmatchedSpelling("Northwind Health", 3),)
    assert not report.passed and report.exit_code == UnmatchedCroError.exit_code == 11
    rendered = report.render()
    assert "FAILED" in rendered
    assert "'Northwind Health'       3 row(s)  STOPS A RUN" in rendered
    assert "'Acme Trials'            1 row(s)\n" in rendered
    assert "A run would stop: export.csv: the CRO spelling 'Northwind Health' (3 rows) matches no name" in rendered
    assert SECRET not in rendered and SECRET not in repr(report)


def test_one_row_fewer_passes_but_is_listed(tmp_path: Path) -> None:
    export = _export(tmp_path, {"Northwind Health": 2, "Acme Trials": 1})
    report = check_export(write_config(tmp_path, extra="max_rejected_share: 0.5\n"), export)
    assert report.unmatched == (UnmatchedSpelling("Northwind Health", 2), UnmatchedSpelling("Acme Trials", 1))
    assert report.lost == () and report.stop == ""
    assert report.passed and report.exit_code == 0
    rendered = report.render()
    assert "PASSED" in rendered and "A run would stop" not in rendered
    assert "'Northwind Health'  2 row(s)" in rendered.replace("       ", "  ")
    assert "'Acme Trials'" in rendered and "STOPS A RUN" not in rendered


def test_check_lists_every_spelling_grouped_as_names_are_matched_and_the_blank_rows_apart(tmp_path: Path) -> None:
    """The issue's case: "unknown_cro 73" with only the near misses listed. Now the counts add up: the
    spellings (case and surrounding spaces are one spelling, shown as most rows write it) and the blanks."""
    export = _export(tmp_path, {"Initech": 1, " initech ": 1, "INITECH": 1, "Northwnd": 1, "": 2, "Zeta CRO": 1})
    report = check_export(write_config(tmp_path, extra="max_rejected_share: 0.9\n"), export)
    assert report.quarantined_by_reason["unknown_cro"] == 7
    assert report.unmatched == (
        UnmatchedSpelling("INITECH", 3),  # one row each as Initech, initech, INITECH: code point order
        UnmatchedSpelling("Northwnd", 1),
        UnmatchedSpelling("Zeta CRO", 1),
    )
    assert report.exit_code == 11  # 3 rows of Initech, however spelt
    rendered = report.render()
    assert "and 2 rows with the CRO blank" in rendered
    assert "'Northwnd'" in rendered and "is 1 edit(s) from 'Northwind'" in rendered  # the near miss as before


def test_a_spelling_under_not_rated_does_not_stop_and_its_rows_stay_quarantined(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="max_rejected_share: 0.6\nnot_rated: [northwind health, Acme Trials]\n")
    export = _export(tmp_path, {"Northwind Health": 5, "Acme Trials": 1, "Other": 1})
    report = check_export(config, export)
    assert report.unmatched == (
        UnmatchedSpelling("Northwind Health", 5, not_rated=True),
        UnmatchedSpelling("Acme Trials", 1, not_rated=True),
        UnmatchedSpelling("Other", 1),
    )
    assert report.lost == () and report.passed and report.exit_code == 0
    assert report.quarantined_by_reason == {"unknown_cro": 7}
    assert "'Northwind Health'       5 row(s)  not_rated: left out knowingly" in report.render()
    result = run_pipeline(load_config(config), export)  # the run goes on: the rows quarantined as before
    assert result.counts == {"read": 13, "accepted": 6, "quarantined": 7}
    assert result.validation.quarantined_by_reason == {"unknown_cro": 7}


def test_the_threshold_is_the_runs_min_evaluations_override_included(tmp_path: Path) -> None:
    export = _export(tmp_path, {"Northwind Health": 3})
    config = write_config(tmp_path, extra="max_rejected_share: 0.5\n")
    assert check_export(config, export).exit_code == 11
    assert check_export(config, export, overrides={"min_evaluations": 4}).exit_code == 0


def test_the_command_line_check_exits_11_and_prints_the_list(tmp_path: Path, capsys) -> None:
    from cli.main import main

    export = _export(tmp_path, {"Northwind Health": 3})
    code = main(["check", "--config", str(write_config(tmp_path)), "--export", str(export)])
    printed = capsys.readouterr().out
    assert code == 11
    assert "'Northwind Health'" in printed and "STOPS A RUN" in printed and "- name: Northwind Health" in printed


# --- the run stops before anything is written --------------------------------------------------------


def test_a_run_stops_after_validation_before_the_quarantine(tmp_path: Path) -> None:
    export = _export(tmp_path, {"Northwind Health": 3})
    written = []
    with pytest.raises(UnmatchedCroError) as stopped:
        run_pipeline(load_config(write_config(tmp_path)), export, on_rejected=written.append)
    assert written == [], "on_rejected (the quarantine's writer) is never called"
    assert _written(tmp_path) == ["export.csv", "survey.yaml"]
    message = str(stopped.value)
    assert message.startswith(f"{export}: the CRO spelling 'Northwind Health' (3 rows) matches no name or alias")
    assert "min_evaluations = 3" in message and "nothing was written" in message
    assert "under `cros:` write `- name: Northwind Health`" in message
    assert "`aliases: [Northwind Health]`" in message
    assert "at the top level write `not_rated: [Northwind Health]`" in message
    assert "\n" not in message, "one paragraph"


def test_the_stop_comes_before_the_rejected_share_gate(tmp_path: Path) -> None:
    """Both would fail (3 of 9 rejected, more than 20%): the lost CRO is named, not the share."""
    export = _export(tmp_path, {"Northwind Health": 3})
    with pytest.raises(UnmatchedCroError):
        run_pipeline(load_config(write_config(tmp_path)), export, on_rejected=lambda rejected: "q")


def test_the_message_names_every_lost_spelling_and_the_near_miss_alias(tmp_path: Path) -> None:
    export = _export(tmp_path, {"Bluefenn": 4, "Acme: Labs #2": 3, "Tiny": 1})
    with pytest.raises(UnmatchedCroError) as stopped:
        run_pipeline(load_config(write_config(tmp_path, extra="not_rated: [Old CRO]\n")), export)
    message = str(stopped.value)
    assert "the CRO spellings 'Bluefenn' (4 rows) and 'Acme: Labs #2' (3 rows) match no name or alias" in message
    assert "'Tiny'" not in message
    assert '`- name: Bluefenn`, `- name: "Acme: Labs #2"`' in message
    assert "`aliases: [Bluefen, Bluefenn]` (in bluefen_biometrics's entry" in message
    assert '`aliases: ["Acme: Labs #2"]`' in message
    assert '`not_rated: [Old CRO, Bluefenn, "Acme: Labs #2"]`' in message
    assert yaml.safe_load('not_rated: [Old CRO, Bluefenn, "Acme: Labs #2"]') == {
        "not_rated": ["Old CRO", "Bluefenn", "Acme: Labs #2"]
    }
    assert yaml.safe_load('- name: "Acme: Labs #2"') == [{"name": "Acme: Labs #2"}]


@pytest.mark.parametrize("fix", ["new CRO", "alias", "not_rated"])
def test_each_yaml_line_the_message_gives_lets_the_run_through(tmp_path: Path, fix: str) -> None:
    export = _export(tmp_path, {"Northwind Health": 3})
    config = yaml.safe_load(CONFIG_YAML)
    if fix == "new CRO":
        config["cros"].append(yaml.safe_load("- name: Northwind Health")[0])
    elif fix == "alias":
        config["cros"][0].update(yaml.safe_load("aliases: [Northwind, NWC, Northwind Health]"))
    else:
        config.update(yaml.safe_load("not_rated: [Northwind Health]"))
    path = write_config(tmp_path, yaml.safe_dump(config, sort_keys=False), extra="max_rejected_share: 0.5\n")
    assert check_export(path, export).exit_code == 0
    result = run_pipeline(load_config(path), export, on_rejected=lambda rejected: "q")
    assert result.counts["accepted"] == (6 if fix == "not_rated" else 9)


# --- not_rated in the configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("not_rated", "message"),
    [
        (["  "], "not_rated: a spelling must not be blank"),
        (["Acme", " acme "], "not_rated: ' acme ' is listed twice (as 'Acme'"),
        (["Acme", "Acme"], "not_rated: 'Acme' is listed twice; keep one"),
        (["nwc"], "not_rated: 'nwc' is a name or alias of 'Northwind Clinical'"),
        (["Bluefen Biometrics"], "not_rated: 'Bluefen Biometrics' is a name or alias of 'Bluefen Biometrics'"),
        ("Acme", "not_rated"),
    ],
)
def test_not_rated_is_validated(tmp_path: Path, not_rated, message: str) -> None:
    path = write_config(tmp_path, _yaml_with({"not_rated": not_rated}))
    with pytest.raises(ConfigError, match="survey.yaml") as refused:
        load_config(path)
    assert message in str(refused.value)


def test_not_rated_is_optional_and_kept_as_written(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path)).survey.not_rated == ()
    path = write_config(tmp_path, _yaml_with({"not_rated": ["Acme Trials", "Initech"]}))
    assert load_config(path).survey.not_rated == ("Acme Trials", "Initech")


# --- end to end: nothing is written -------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.prefect
def test_cro_awards_run_exits_11_and_writes_nothing(prefect_server, tmp_path: Path, capsys) -> None:
    from cli.main import main

    export = _export(tmp_path, {"Northwind Health": 3})
    config = write_config(tmp_path)
    out, quarantine, drafts = tmp_path / "out", tmp_path / "q", tmp_path / "drafts"
    code = main(
        [
            "run",
            "--config",
            str(config),
            "--export",
            str(export),
            "--output",
            str(out),
            "--quarantine",
            str(quarantine),
            "--drafts",
            str(drafts),
        ]
    )
    error = capsys.readouterr().err
    assert code == 11
    assert "'Northwind Health' (3 rows)" in error and "- name: Northwind Health" in error
    assert "Traceback" not in error
    written = [path for path in _written(tmp_path) if not path.startswith("out/.locks/")]  # the year's lock
    assert written == ["export.csv", "survey.yaml"], "no draft, quarantine or output"
