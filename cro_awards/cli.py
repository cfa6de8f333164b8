"""The command line (data contract section 5).

    cro-awards run [--config surveys/<year>.yaml] [--export FILE] [--output DIR] [--quarantine DIR]
                   [--min-evaluations N] [--champion-sd-multiplier X] ... [--summary-json FILE]
    cro-awards check [--config surveys/<year>.yaml] [--export FILE] [overrides]   (dry run; exit 1 if it would fail)
    cro-awards new-year 2025 --from 2024                                       (writes surveys/2025.yaml)

Runs the `cro-awards` flow (in Prefect's ephemeral mode unless PREFECT_API_URL names a server), prints
each segment's and category's leaders and champions, and exits 0. A user-facing error prints its
message, without a traceback, and exits non-zero (2 configuration, 3 export, 4 too many rejected rows,
5 publishing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cro_awards.config import OVERRIDABLE_KEYS
from cro_awards.settings import PROJECT_ROOT

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cro-awards", description="CRO Leadership Awards pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="score one survey year and publish its awards")
    run.add_argument("--config", help="the survey year's YAML (default: surveys/2024.yaml)")
    run.add_argument("--export", help="the survey export: .csv, .xlsx or .parquet (default: the YAML's sample_export)")
    run.add_argument("--output", help="folder of the published tables (default: data/output)")
    run.add_argument("--quarantine", help="folder of rejected evaluations, outside --output (default: data/quarantine)")
    run.add_argument("--summary-json", metavar="FILE",
                     help="also write the run's summary (counts, stage timings, awards, paths) as JSON to FILE")
    check = commands.add_parser("check", help="dry run: validate the configuration and an export, publish nothing")
    check.add_argument("--config", help="the survey year's YAML (default: surveys/2024.yaml)")
    check.add_argument("--export", help="the export to check (default: the YAML's sample_export)")
    types = {"min_evaluations": int, "min_cros_for_awards": int, "min_cell_size": int, "recency_months": int}
    for command in (run, check):
        for key in OVERRIDABLE_KEYS:
            command.add_argument(f"--{key.replace('_', '-')}", type=types.get(key, float), metavar="VALUE",
                                 help=f"override the YAML's {key}")
    new_year = commands.add_parser("new-year", help="write surveys/<year>.yaml from a previous year's")
    new_year.add_argument("year", type=int, help="the new survey year, e.g. 2025")
    new_year.add_argument("--from", dest="from_year", type=int, required=True, help="the year to start from")
    new_year.add_argument("--surveys", help="the folder of survey YAML files (default: surveys/)")
    return parser


def _new_year(arguments: argparse.Namespace) -> int:
    from cro_awards.onboarding import new_year
    from cro_awards.settings import load_settings

    surveys = Path(arguments.surveys) if arguments.surveys else load_settings().surveys
    path, review = new_year(surveys, arguments.year, arguments.from_year)
    print(f"Wrote {path}. Review before the first run:")
    for item in review:
        print(f"  - {item}")
    return 0


def _check(arguments: argparse.Namespace) -> int:
    from cro_awards.config import load_config
    from cro_awards.onboarding import check_export
    from cro_awards.settings import load_settings

    config = Path(arguments.config) if arguments.config else load_settings().default_config
    overrides = {key: getattr(arguments, key) for key in OVERRIDABLE_KEYS if getattr(arguments, key) is not None}
    export = arguments.export
    if export is None:
        loaded = load_config(config, overrides)
        if not loaded.survey.sample_export:
            print(f"cro-awards: {config}: the YAML names no sample_export; pass --export.", file=sys.stderr)
            return 2
        export = loaded.resolve(loaded.survey.sample_export)
    report = check_export(config, export, overrides=overrides)
    print(report.render())
    return 0 if report.passed else 1


def _prepare_environment() -> None:
    """Prefect's state under the project (unless PREFECT_HOME says otherwise) and no telemetry."""
    os.environ.setdefault("PREFECT_HOME", str(PROJECT_ROOT / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")


def awards_table(summary: dict[str, Any]):
    """A rich table: per segment and category, the leaders and the champions (composites to 2 decimals)."""
    from rich.table import Table

    from tasks.summary import award_cells

    table = Table(title=f"CRO Leadership Awards {summary['survey_year']}")
    for column in ("segment", "category", "leader(s)", "champion(s)"):
        table.add_column(column)
    for segment, category, leaders, champions in award_cells(summary["awards"]):
        names = ["\n".join(f"{row['cro']} ({row['composite']:.2f})" for row in rows) or "-" for rows in (leaders, champions)]
        table.add_row(segment, category, *names)
    return table


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command in ("check", "new-year"):
        from cro_awards.errors import CroAwardsError

        try:
            return _check(arguments) if arguments.command == "check" else _new_year(arguments)
        except CroAwardsError as error:
            print(f"cro-awards: {error}", file=sys.stderr)
            return error.exit_code
    _prepare_environment()
    from rich.console import Console

    from cro_awards.errors import CroAwardsError
    from flows.awards import cro_awards_flow

    console = Console(width=None if sys.stdout.isatty() else 120)
    parameters = {key: getattr(arguments, key) for key in ("config", "export", "output", "quarantine", *OVERRIDABLE_KEYS)}
    try:
        summary = cro_awards_flow(**parameters)
    except CroAwardsError as error:
        print(f"cro-awards: {error}", file=sys.stderr)
        return error.exit_code
    if arguments.summary_json:
        Path(arguments.summary_json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    counts = summary["counts"]
    console.print(awards_table(summary))
    console.print(
        f"Rows read {counts['read']}, accepted {counts['accepted']}, quarantined {counts['quarantined']}"
        + (f" ({', '.join(f'{k} {v}' for k, v in summary['quarantined_by_reason'].items())})" if summary["quarantined_by_reason"] else "")
    )
    console.print(f"Published to {summary['output']} (quarantine: {summary['quarantine']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
