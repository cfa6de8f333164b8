"""The command line: `cro-awards run` (data contract section 5).

    cro-awards run [--config surveys/<year>.yaml] [--export FILE] [--output DIR] [--quarantine DIR]
                   [--min-evaluations N] [--champion-sd-multiplier X] ...

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
    types = {"min_evaluations": int, "min_cros_for_awards": int, "min_cell_size": int, "recency_months": int}
    for key in OVERRIDABLE_KEYS:
        run.add_argument(f"--{key.replace('_', '-')}", type=types.get(key, float), metavar="VALUE",
                         help=f"override the YAML's {key}")
    return parser


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
    _prepare_environment()
    from rich.console import Console

    from cro_awards.errors import CroAwardsError
    from flows.awards import cro_awards_flow

    console = Console()
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
