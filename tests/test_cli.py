"""The command line: the dry run, onboarding, options, exit codes and messages. Only the test of the
server-timeout path imports Prefect (marker `prefect`); `run` with an invalid override is refused before
Prefect is imported."""

import dataclasses
import io
import re
import shutil
import sys

import pytest

import cro_awards
from cli.main import EXIT_CODES, main
from cro_awards.engine.errors import RejectedShareError
from cro_awards.record.summary import AwardsSummary, RunSummary
from tests.conftest import PROJECT_ROOT, SAMPLE_CONFIG, SERVER_TIMEOUT_VARIABLE
from tests.helpers_summaries import run_summary


def test_check_passes_on_the_sample_and_publishes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--config", str(SAMPLE_CONFIG)]) == 0
    printed = capsys.readouterr().out
    assert "PASSED" in printed and "Rows read 1500" in printed and "duplicate_evaluation" in printed
    assert list(tmp_path.iterdir()) == []


def test_check_fails_with_exit_4_when_a_run_would_fail(capsys):
    code = main(["check", "--config", str(SAMPLE_CONFIG), "--max-rejected-share", "0"])
    assert code == 4 == RejectedShareError.exit_code, "the same code as `run`'s rejected-share gate"
    assert "FAILED" in capsys.readouterr().out


def test_check_reports_a_file_error_with_its_exit_code(tmp_path, capsys):
    bad = tmp_path / "export.csv"
    bad.write_text("respondent_id;cro\nR1;X\n")
    assert main(["check", "--config", str(SAMPLE_CONFIG), "--export", str(bad)]) == 3
    error = capsys.readouterr().err
    assert "export.csv" in error and "comma-separated" in error and "Traceback" not in error


def test_check_of_the_2023_year_maps_the_platform_headers(capsys):
    assert main(["check", "--config", str(PROJECT_ROOT / "surveys" / "2023.yaml")]) == 0
    assert "renamed through `columns`" in capsys.readouterr().out


def test_new_year_writes_the_yaml_and_says_what_to_review(tmp_path, capsys):
    shutil.copy(SAMPLE_CONFIG, tmp_path / "2024.yaml")
    assert main(["new-year", "2025", "--from", "2024", "--surveys", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "2025.yaml").is_file()
    assert "2025-02-28" in printed and "review" in printed.lower()
    assert main(["new-year", "2025", "--from", "2024", "--surveys", str(tmp_path)]) == 2, "never overwrites"


def _one_paragraph(message: str) -> str:
    assert message.strip(), "no message"
    assert "\n" not in message.strip(), f"more than one line: {message!r}"
    assert "Traceback" not in message
    return message.strip()


def test_an_out_of_range_override_is_refused_alike_by_run_and_check(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output, quarantine = tmp_path / "out", tmp_path / "q"
    prefect_before = "prefect" in sys.modules
    run_arguments = ["run", "--champion-sd-multiplier", "50", "--output", str(output), "--quarantine", str(quarantine)]
    assert main(run_arguments) == 2
    run = capsys.readouterr()
    assert main(["check", "--champion-sd-multiplier", "50"]) == 2
    check = capsys.readouterr()
    message = _one_paragraph(run.err)
    assert run.err == check.err, "the same message from run and check"
    assert message.startswith("cro-awards: ") and "champion_sd_multiplier" in message and "10" in message
    assert run.out == check.out == ""
    assert not output.exists() and not quarantine.exists() and list(tmp_path.iterdir()) == [], "nothing written"
    if not prefect_before:
        assert "prefect" not in sys.modules, "refused before Prefect is imported"


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"cro-awards {cro_awards.__version__}"


@pytest.mark.parametrize("command", [[], ["run"], ["check"]])
def test_help_lists_every_exit_code(capsys, command):
    """The subcommands' help holds knob descriptions with "%" (e.g. "0.2 = 20%"), which argparse would
    read as a format: it must print, not crash."""
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    printed = capsys.readouterr().out
    assert sorted(EXIT_CODES) == list(range(13))
    listed = printed[printed.index("exit codes:") :]
    for code, meaning in EXIT_CODES.items():
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}$", listed, re.MULTILINE), (code, listed)


@pytest.mark.prefect
def test_a_server_that_does_not_start_in_time_exits_8_with_one_paragraph(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(SERVER_TIMEOUT_VARIABLE, raising=False)  # prepare_environment sets it from the setting
    monkeypatch.setenv("CRO_AWARDS_SERVER_STARTUP_TIMEOUT", "42")
    calls = []

    def timed_out(**parameters):
        calls.append(parameters)
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server. stdout: ...")

    monkeypatch.setattr("flows.awards.cro_awards_flow", timed_out)
    output, quarantine = tmp_path / "out", tmp_path / "q"
    code = main(["run", "--config", str(SAMPLE_CONFIG), "--output", str(output), "--quarantine", str(quarantine)])
    printed = capsys.readouterr()
    assert code == 8 and len(calls) == 1
    message = _one_paragraph(printed.err)
    assert SERVER_TIMEOUT_VARIABLE in message and "within 42 s" in message
    assert printed.out == ""
    assert not output.exists() and not quarantine.exists()


@pytest.mark.prefect
def test_any_other_runtime_error_of_the_flow_is_not_taken_for_a_timeout(tmp_path, monkeypatch):
    def broken(**parameters):
        raise RuntimeError("something else")

    monkeypatch.setattr("flows.awards.cro_awards_flow", broken)
    with pytest.raises(RuntimeError, match="something else"):
        main(
            [
                "run",
                "--config",
                str(SAMPLE_CONFIG),
                "--output",
                str(tmp_path / "out"),
                "--quarantine",
                str(tmp_path / "q"),
            ]
        )


# --- names are text, never rich markup --------------------------------------------------------------

HOSTILE_NAMES = [
    "Northwind [/] Clinical",
    "[link=https://evil.example]Acme[/link]",
    "[bold]Bold[/bold] Trials",
    "[red]Unclosed",
    ":warning: Emoji Co",
    "Esc\x1b]8;;https://evil.example\x1b\\Link\x1b]8;;\x1b\\",
]


def _hostile_summary() -> RunSummary:
    """Names are where a YAML puts free text: CRO names (`cro_name`; `cro` is a lower_snake_case id),
    category ids, the folders, and the diff's lines, which name CROs too."""

    def award(index, name, kind, composite):
        return {
            "segment": "overall",
            "category": "[i]quality",
            "cro": f"cro_{index}",
            "cro_name": name,
            "award": kind,
            "composite": composite,
            "weighted_mean": 3.5,
            "weighted_sd": 0.4,
            "threshold": 3.9,
        }

    return run_summary(
        survey_year=2024,
        awards=[
            award(i, name, "leader" if i == 0 else "champion", 4.5 - i / 10) for i, name in enumerate(HOSTILE_NAMES)
        ],
        counts={"read": 10, "accepted": 9, "quarantined": 1},
        quarantined_by_reason={"unknown_cro": 1},
        diff="Awards gained (1)\n  Overall / [i]quality: champion [bold]Bold[/bold] Trials\n",
        run_id="run-1",
        published="/srv/[bold]awards[/]/.publications/survey_year=2024/20261201T000000Z-run-1",
        released=False,
        output="/srv/[bold]awards[/]/survey_year=2024",
        quarantine="/srv/[link=https://evil.example]q[/link]",
    )


def _printed(summary: RunSummary) -> tuple[str, str]:
    """What `run` prints for `summary`, on a colour terminal: (plain text, text with the escape codes)."""
    from rich.console import Console

    from cli.main import print_summary

    console = Console(record=True, force_terminal=True, color_system="truecolor", width=400, file=io.StringIO())
    print_summary(console, summary)
    return console.export_text(styles=False, clear=False), console.export_text(styles=True)


def test_names_with_markup_print_literally_without_links():
    plain, styled = _printed(_hostile_summary())
    for name in HOSTILE_NAMES[:-1]:
        assert name in plain, name
    assert "[i]quality" in plain, "a category id is text too"
    assert r"Esc\x1b]8;;https://evil.example\x1b\Link\x1b]8;;\x1b\ " in plain, "an escape code is shown, not sent"
    assert "/srv/[bold]awards[/]/survey_year=2024" in plain and "/srv/[link=https://evil.example]q[/link]" in plain
    assert "champion [bold]Bold[/bold] Trials" in plain, "the diff's names print as written"
    assert "/srv/[bold]awards[/]/.publications/survey_year=2024/20261201T000000Z-run-1" in plain
    assert "\x1b]8;" not in styled, "no terminal hyperlink (OSC 8)"
    assert "⚠" not in plain, "no emoji code is replaced"


def test_the_awards_table_renders_hostile_names_in_a_plain_console(capsys):
    """The command's own console (not a terminal under pytest): no MarkupError, the names as written."""
    from rich.console import Console

    from cli.main import print_summary

    print_summary(Console(width=400), _hostile_summary())
    printed = capsys.readouterr().out
    assert "Northwind [/] Clinical (4.50)" in printed and "[link=https://evil.example]Acme[/link] (4.40)" in printed
    assert "\x1b" not in printed


def test_the_awards_table_shows_cro_names_and_category_labels_not_ids():
    """`cro` and `category` are ids; people read `cro_name` and `category_label`."""
    from rich.console import Console

    from cli.main import awards_table

    row = {"segment": "overall", "category": "quality", "category_label": "Quality of delivery"}
    awards = [
        {**row, "cro": "northwind_clinical", "cro_name": "Northwind Clinical", "award": "leader", "composite": 4.5},
        {**row, "cro": "acme_cro", "cro_name": "Acme CRO", "award": "champion", "composite": 4.1},
    ]
    console = Console(width=200, file=io.StringIO())
    console.print(awards_table(AwardsSummary(survey_year=2024, awards=awards)))
    printed = console.file.getvalue()
    assert "Northwind Clinical (4.50)" in printed and "Acme CRO (4.10)" in printed and "Quality of delivery" in printed
    assert "northwind_clinical" not in printed and "acme_cro" not in printed and "quality " not in printed


def _summary_with_figures(*, released: bool) -> RunSummary:
    """Two cells: overall/quality, where 3 of 4 eligible CROs co-lead (no distinguishable leader), and
    overall/cost, with a clear leader."""

    def award(category, cro, name, kind, composite, p_award):
        return {
            "segment": "overall",
            "category": category,
            "cro": cro,
            "cro_name": name,
            "award": kind,
            "composite": composite,
            "weighted_mean": 3.5,
            "weighted_sd": 0.4,
            "threshold": 3.9,
            "p_award": p_award,
            "is_robust": p_award >= 0.8,
        }

    return dataclasses.replace(
        _hostile_summary(),
        awards=[
            award("quality", "north", "Northwind [b]Clinical[/b]", "leader", 4.2, 0.31),
            award("quality", "north", "Northwind [b]Clinical[/b]", "champion", 4.2, 0.996),
            award("cost", "acme", "Acme CRO", "leader", 4.6, 1.0),
        ],
        co_leaders={"overall/quality": ["[i]Beta[/i] Trials", "Gamma"]},
        no_distinguishable_leader={"overall/quality": [3, 4]},
        released=released,
    )


def test_the_summary_says_which_cell_has_no_distinguishable_leader_with_its_co_leaders_and_a_legend():
    from cro_awards.record.summary import LEGEND_AWARD, LEGEND_CO_LEADERS

    plain, _ = _printed(_summary_with_figures(released=False))
    lines = plain.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("│ overall │ quality "))
    quality = [[cell.strip() for cell in line.split("│")[3:6]] for line in lines[at : at + 2]]
    assert quality == [
        [
            "Northwind [b]Clinical[/b] (4.20, p=0.31, not robust)",
            "[i]Beta[/i] Trials",
            "Northwind [b]Clinical[/b] (4.20, p>0.99)",
        ],
        ["no distinguishable leader (3 of 4 eligible CROs are co-leaders)", "Gamma", ""],
    ], "the official leader stays, marked; the co-leaders by name, literally; p>0.99, never p=1.00"
    cost = next(line for line in lines if line.startswith("│ overall │ cost "))
    assert [cell.strip() for cell in cost.split("│")[3:6]] == ["Acme CRO (4.60, p>0.99)", "-", "-"]
    assert plain.count("no distinguishable leader (") == 1, "the clear leader of overall/cost is not marked"
    assert LEGEND_AWARD in lines and LEGEND_CO_LEADERS in lines, "each legend on one line of its own"
    assert "p=>" not in plain and "1.00" not in plain


def test_the_summary_prints_the_path_of_report_html():
    summary = _summary_with_figures(released=False)
    plain, _ = _printed(summary)
    assert f"Report: {summary.published}/report.html" in plain, "a draft: its report in the private store"
    plain, _ = _printed(_summary_with_figures(released=True))
    assert f"Report: {summary.output}/report.html" in plain, "released: the readable report under the output"


def test_min_cell_size_below_the_yamls_is_refused_by_run_and_check(tmp_path, capsys, monkeypatch):
    """`--min-cell-size` may raise the YAML's value, never lower it: one paragraph naming the YAML's value,
    exit 2, from `check` and from `run` (before Prefect, nothing written); below 3 the knob's own bound."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "2024.yaml"
    text = SAMPLE_CONFIG.read_text(encoding="utf-8").replace("min_cell_size: 3", "min_cell_size: 4")
    config.write_text(text.replace("sample_export: ../data/", f"sample_export: {SAMPLE_CONFIG.parent.parent}/data/"))
    output, quarantine = tmp_path / "out", tmp_path / "q"
    assert main(["check", "--config", str(config), "--min-cell-size", "3"]) == 2
    check = _one_paragraph(capsys.readouterr().err)
    assert "override min_cell_size = 3 is below the YAML's min_cell_size = 4" in check
    run = [
        "run",
        "--config",
        str(config),
        "--min-cell-size",
        "3",
        "--output",
        str(output),
        "--quarantine",
        str(quarantine),
    ]
    assert main(run) == 2
    assert _one_paragraph(capsys.readouterr().err) == check
    assert not output.exists() and not quarantine.exists()
    assert main(["check", "--min-cell-size", "2"]) == 2
    assert "min_cell_size" in _one_paragraph(capsys.readouterr().err)
    assert main(["check", "--config", str(config), "--min-cell-size", "5"]) == 0
