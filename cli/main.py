"""The command line (docs/contract.md, "Command line").

    cro-awards run [--config surveys/<year>.yaml] [--export FILE] [--output DIR] [--quarantine DIR] [--drafts DIR]
                   [--release [--accept-difference REASON]] [--min-evaluations N] ... [--summary-json FILE]
    cro-awards check [--config surveys/<year>.yaml] [--export FILE] [overrides]   (dry run, no Prefect)
    cro-awards release <year> <run_id> [--embargo-until ISO-TIME] [--by NAME] [--accept-difference REASON]
                   [--output DIR] [--quarantine DIR] [--drafts DIR]
    cro-awards publications <year> [--json] [--output DIR] [--quarantine DIR] [--drafts DIR]
    cro-awards diff <year> <run_id> [--against RUN_ID] [--output DIR] [--quarantine DIR] [--drafts DIR]
    cro-awards new-year 2025 --from 2024                                       (writes surveys/2025.yaml)
    cro-awards --version

`run` runs the `cro-awards` flow (in Prefect's ephemeral mode unless PREFECT_API_URL names a server),
which writes a DRAFT (readers' view unchanged) and, with `--release`, releases it; it prints each
segment's and category's leaders and champions, the draft's difference from the current release,
and exits 0. `release` switches what readers see to a draft (rollback: an earlier draft), at once
and without Prefect, or at an embargo time by a scheduled run of the `cro-awards-release/release` deployment
(a Prefect server: `make serve`). `publications` lists a year's drafts, newest first; `diff` compares
a draft with the current release (or `--against` another draft). A run id may be given by its first
characters (at least 4) when no other draft of the year's starts with them, as git takes an abbreviated
commit (`releases.resolve_run_id`; an ambiguous or unknown one exits 10). The default configuration is
the latest `surveys/<year>.yaml`. One `--flag` per method knob of `cro_awards.reading.knobs`, for `run` and
`check` alike, checked by the same code as the YAML before anything runs. A user-facing error prints
one paragraph, without a traceback, and exits with the code `EXIT_CODES` lists (also in `--help`).
Before Prefect's temporary server starts, `run` checks all that needs no server (the export's path and a .csv's
header, the folders, the year's lock in ephemeral mode), so such an error comes at once, printed once.
Names and paths are printed as text, never as rich markup. In ephemeral mode a watchdog process
(`cro_awards.engine.watchdog`, Linux) stops Prefect's temporary server should this process be killed alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cro_awards
from cro_awards.engine.errors import CroAwardsError, ExportError
from cro_awards.engine.settings import PROJECT_ROOT, load_settings
from cro_awards.reading import knobs
from cro_awards.reading.config import LoadedConfig, load_config, load_yaml
from cro_awards.record.summary import AwardsSummary, RunSummary

EXIT_CODES = {
    0: "success (check: a run would pass)",
    1: "an unexpected error (a bug: please report it with the traceback)",
    2: "invalid configuration, override, runtime setting or argument (e.g. an embargo time out of range)",
    3: "the export cannot be read or does not fit the contract",
    4: "too many rejected rows (more than max_rejected_share); nothing published",
    5: "publishing failed (disk full, read-only folder); the message says which publication is live",
    6: "another run of the same survey year holds its lock",
    7: "a deployment run named a path outside the data root",
    8: "Prefect's temporary server did not start in time",
    9: "disclosure: the audit found a table not resting on countable cells (a bug), or the differencing guard "
    "refused a release; nothing published",
    10: "release, publications or diff: no such draft (or a run id prefix naming none or several), or an embargo "
    "that cannot be scheduled",
    11: "a CRO spelling matching no name or alias has at least min_evaluations rows (and not_rated does not list "
    "it): the run would drop a CRO; nothing written",
    12: "the run (or one of its tasks) took longer than CRO_AWARDS_FLOW_TIMEOUT (CRO_AWARDS_TASK_TIMEOUT) and was "
    "stopped; its survey year is free again",
}
"""Every exit code of `cro-awards`, the same for the same failure in `check` and `run`."""

SERVER_TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
_SERVER_TIMED_OUT = "Timed out while attempting to connect to ephemeral Prefect API server"


def _add_run_arguments(command: argparse.ArgumentParser, verb: str) -> None:
    command.add_argument("--config", help="the survey year's YAML (default: the latest surveys/<year>.yaml)")
    command.add_argument(
        "--export", help=f"the export to {verb}: .csv, .xlsx or .parquet (default: the YAML's sample_export)"
    )
    for name in knobs.KNOBS:
        command.add_argument(
            f"--{name.replace('_', '-')}",
            type=knobs.python_type(name),
            metavar="{" + ",".join(knobs.choices(name)) + "}" if knobs.choices(name) else "N",
            choices=knobs.choices(name),
            help=f"override the YAML's {name}: {knobs.description(name)} ({knobs.describe_bounds(name)})".replace(
                "%", "%%"
            ),
        )


def _add_folder_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("--output", help="folder of the published tables (default: data/output, CRO_AWARDS_OUTPUT)")
    command.add_argument(
        "--quarantine",
        help="folder of rejected evaluations, outside --output (default: data/quarantine, CRO_AWARDS_QUARANTINE)",
    )
    command.add_argument(
        "--drafts",
        help="private folder of the drafts, the ledger and the release log, outside --output "
        "(default: CRO_AWARDS_DRAFTS, else `drafts` beside --output: data/drafts)",
    )


def _add_accept_difference(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--accept-difference",
        metavar="REASON",
        help="release although the differencing guard finds published rows differing from an earlier release of "
        "the year by fewer than min_cell_size evaluations (else refused, exit 9); the reason goes to the release log",
    )


def _folders(arguments: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(output, quarantine, drafts) from the arguments or the settings' defaults, checked apart (a quarantine or
    drafts folder inside the output is refused); an output folder of the old layout is moved over first."""
    from cro_awards.publication.releases import prepare

    output, quarantine, drafts = load_settings().folders(arguments.output, arguments.quarantine, arguments.drafts)
    output, quarantine, drafts, moved = prepare(output, quarantine, drafts)
    if moved:
        print(f"cro-awards: moved the drafts and logs of {output} to the private folder {drafts}.", file=sys.stderr)
    return output, quarantine, drafts


def parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())
    listed = {"epilog": f"exit codes:\n{codes}", "formatter_class": argparse.RawDescriptionHelpFormatter}
    parser = argparse.ArgumentParser(prog="cro-awards", description="CRO Leadership Awards pipeline.", **listed)
    parser.add_argument("--version", action="version", version=f"%(prog)s {cro_awards.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="score one survey year and publish its awards", **listed)
    _add_run_arguments(run, "score")
    _add_folder_arguments(run)
    run.add_argument(
        "--release",
        action="store_true",
        help="release the run's draft at once if it succeeds (without it, the run makes a draft only)",
    )
    _add_accept_difference(run)
    run.add_argument(
        "--local",
        action="store_true",
        help="run without Prefect (no server, no task runs, no artifacts): the same graph, draft and release, "
        "for a quick what-if; the year's file lock still keeps a second run out",
    )
    run.add_argument(
        "--summary-json",
        metavar="FILE",
        help="also write the run's summary (counts, stage timings, awards, paths) as JSON to FILE",
    )
    check = commands.add_parser(
        "check", help="dry run: validate the configuration and an export, publish nothing", **listed
    )
    _add_run_arguments(check, "check")
    release = commands.add_parser(
        "release", help="release a draft: what readers see becomes it (an earlier draft: a rollback)", **listed
    )
    release.add_argument("year", type=int, help="the survey year, e.g. 2024")
    release.add_argument(
        "run_id",
        help="the run id of the draft, or its first characters (at least 4) when no other draft of the year's "
        "starts with them (`cro-awards publications <year>` lists them)",
    )
    release.add_argument(
        "--embargo-until",
        metavar="ISO-TIME",
        help="release at this time (e.g. 2026-12-24T09:00:00Z), by a scheduled run of the "
        "cro-awards-release/release deployment: needs a Prefect server serving it (make serve) named by "
        "PREFECT_API_URL",
    )
    release.add_argument(
        "--now",
        action="store_true",
        help="release a draft that has a pending embargo at once (its embargo is cancelled); without it refused",
    )
    release.add_argument("--by", help="who releases, for the release log (default: the operating system's user)")
    _add_accept_difference(release)
    _add_folder_arguments(release)
    listing = commands.add_parser("publications", help="list a survey year's drafts and releases, newest first")
    listing.add_argument("year", type=int, help="the survey year, e.g. 2024")
    listing.add_argument(
        "--json", action="store_true", help="print JSON for scripts (run_id, status, created_at, published_at, ...)"
    )
    _add_folder_arguments(listing)
    difference = commands.add_parser("diff", help="a draft's difference from the current release (or another)")
    difference.add_argument("year", type=int, help="the survey year, e.g. 2024")
    difference.add_argument("run_id", help="the run id of the draft, or a unique prefix of it (at least 4 characters)")
    difference.add_argument(
        "--against",
        metavar="RUN_ID",
        help="compare with this draft (a run id or a unique prefix; default: the release)",
    )
    _add_folder_arguments(difference)
    about = "write surveys/<year>.yaml from a previous year's YAML (CROs, aliases and knobs carried over)"
    new_year = commands.add_parser("new-year", help=about, description=about[0].upper() + about[1:] + ".")
    new_year.add_argument("year", type=int, help="the new survey year, e.g. 2025")
    new_year.add_argument("--from", dest="from_year", type=int, required=True, help="the year to start from")
    new_year.add_argument("--surveys", help="the folder of survey YAML files (default: surveys/)")
    return parser


def _overrides(arguments: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(arguments, name) for name in knobs.KNOBS if getattr(arguments, name) is not None}


def _loaded(arguments: argparse.Namespace) -> LoadedConfig:
    """The configuration with the overrides, checked the same way for `run` and `check`."""
    config = Path(arguments.config) if arguments.config else load_settings().default_config
    loaded = load_config(config, _overrides(arguments))
    if not arguments.config and not arguments.export and not loaded.survey.sample_export:
        raise _no_default_export(loaded)
    return loaded


def _no_default_export(loaded: LoadedConfig) -> ExportError:
    """The default configuration stays the latest year, which has no bundled sample once `new-year` wrote it:
    the message says what to pass, for that year and for the latest year with a sample."""
    year, settings = loaded.survey.survey_year, load_settings()
    sampled = []
    for earlier in reversed(settings.configured_years()):
        path = settings.survey_config(earlier)
        with contextlib.suppress(CroAwardsError, OSError):
            raw = load_yaml(path.read_bytes(), path)
            if earlier != year and isinstance(raw, dict) and raw.get("sample_export"):
                sampled.append(path)
        if sampled:
            break
    hint = f"; or, to run {sampled[0].stem} on its bundled sample, --config {sampled[0]}" if sampled else ""
    return ExportError(
        f"{loaded.path}, the default configuration (the latest survey year, {year}), names no sample_export and "
        f"no --export was given: to run {year}, pass --export with its export (.csv, .xlsx or .parquet){hint}."
    )


def _new_year(arguments: argparse.Namespace) -> int:
    from cro_awards.reading.new_year import new_year

    surveys = Path(arguments.surveys) if arguments.surveys else load_settings().surveys
    path, review = new_year(surveys, arguments.year, arguments.from_year)
    print(f"Wrote {path}. Review before the first run:")
    for item in review:
        print(f"  - {item}")
    return 0


def _check(arguments: argparse.Namespace) -> int:
    from cro_awards.run.dry_run import check_export

    loaded = _loaded(arguments)
    report = check_export(loaded.path, arguments.export, overrides=loaded.overrides)
    print(report.render())
    return report.exit_code


def prepare_environment() -> None:
    """Before Prefect is imported: its state under the project (unless PREFECT_HOME says otherwise), no
    telemetry, INFO logs, and time enough for its temporary server's first start on a busy machine."""
    os.environ.setdefault("PREFECT_HOME", str(PROJECT_ROOT / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault(SERVER_TIMEOUT_VARIABLE, str(load_settings().server_startup_timeout))


def awards_table(summary: AwardsSummary):
    """A rich table: per segment and category (its label), the leaders and the champions by name (composites to
    2 decimals, with the probability that the award is deserved, and "not robust" below robust_award_probability),
    "no distinguishable leader" under the leader of a cell where most eligible CROs are co-leaders, and the
    co-leaders (`summary.co_leaders`, names).

    Every cell is a `rich.text.Text`, never markup: a CRO named `Northwind [/] Clinical` or
    `[link=https://...]Acme[/link]` prints as written, and control characters as visible escapes."""
    from rich.table import Table
    from rich.text import Text

    from cro_awards.record.summary import award_cells, award_text, category_name, indistinct_text, printable

    table = Table(title=Text(f"CRO Leadership Awards {printable(summary.survey_year)}"))
    for column in ("segment", "category", "leader(s)", "co-leader(s)", "champion(s)"):
        table.add_column(column)

    names = {row["cro"]: row.get("cro_name") or row["cro"] for row in summary.awards}
    for segment, category, leaders, champions in award_cells(summary.awards):
        key = f"{segment}/{category}"
        leading = [award_text(row) for row in leaders]
        indistinct = summary.no_distinguishable_leader.get(key)
        if indistinct:
            leading.append(indistinct_text(*indistinct))
        co_leaders = [names.get(cro, cro) for cro in summary.co_leaders.get(key) or []]
        cells = [
            "\n".join(printable(text) for text in texts) or "-"
            for texts in (leading, co_leaders, [award_text(row) for row in champions])
        ]
        label = category_name([*leaders, *champions][0])  # a cell holds at least one award
        table.add_row(*(Text(cell) for cell in (printable(segment), printable(label), *cells)))
    return table


def report_path(summary: RunSummary) -> Path:
    """Where the run's report.html is: the released one under the output if the run released, else the
    draft's, in the private store."""
    return Path(summary.output if summary.released else summary.published) / "report.html"


def print_summary(console, summary: RunSummary) -> None:
    """What `run` prints on success: the awards table, the legend of its figures, the counts, where the
    outputs went and the report's path, all as plain text (`markup=False`, `highlight=False`): names and
    paths are never read as rich markup."""
    from cro_awards.record.summary import LEGEND_AWARD, LEGEND_CO_LEADERS, printable

    counts = summary.counts
    console.print(awards_table(summary))
    plain = {"markup": False, "highlight": False, "emoji": False}
    if any(row.get("p_award") is not None for row in summary.awards):  # resampling figures are shown
        for legend in (LEGEND_AWARD, LEGEND_CO_LEADERS):
            console.print(legend, soft_wrap=True, **plain)  # one line, however wide the terminal
    reasons = ", ".join(f"{printable(k)} {v}" for k, v in summary.quarantined_by_reason.items())
    console.print(
        f"Rows read {counts['read']}, accepted {counts['accepted']}, quarantined {counts['quarantined']}"
        + (f" ({reasons})" if reasons else ""),
        **plain,
    )
    for line in summary.diff.splitlines():
        console.print(printable(line), **plain)
    console.print(f"Draft of run {printable(summary.run_id)}: {printable(summary.published)}", **plain)
    if summary.released:
        console.print(
            f"Released: readers of {printable(summary.output)} see it (quarantine: {printable(summary.quarantine)})",
            **plain,
        )
    else:
        console.print(
            f"Not released: readers of {printable(summary.output)} still see the current release. Read its "
            f"draft_report.html, then release it with `cro-awards release {summary.survey_year} "
            f"{printable(summary.run_id)}` (quarantine: {printable(summary.quarantine)})",
            **plain,
        )
    console.print(f"Report: {printable(report_path(summary))}", **plain)


@contextlib.contextmanager
def guarding_temporary_server() -> Iterator[None]:
    """In Prefect's ephemeral mode (no PREFECT_API_URL), a watchdog process (`cro_awards.engine.watchdog`, Linux
    only) for as long as the flow runs: if this process is killed alone (SIGKILL, the OOM killer), the
    watchdog stops the temporary server and whatever else this process started, which nothing else would.
    Stopped on return (Prefect stops its server at a normal exit). Call after Prefect is importable."""
    from prefect.settings import PREFECT_API_URL

    from cro_awards.engine import watchdog

    guard = None if PREFECT_API_URL.value() else watchdog.start(os.getpid())
    try:
        yield
    finally:
        watchdog.stop(guard)


def _server_timed_out(error: BaseException) -> bool:
    return isinstance(error, RuntimeError) and _SERVER_TIMED_OUT in str(error)


def _export_header(export: Path, loaded: LoadedConfig) -> None:
    """The export's path and, for a .csv, its header, checked as extract checks them (the same `ExportError`,
    exit 3) without reading the rows. A header that cannot be read here is left to extract, which says why;
    so are an .xlsx's and a .parquet's, whose header costs a read of the file."""
    import csv

    from cro_awards.reading import extract

    if export.suffix.lower() not in extract.SUPPORTED_SUFFIXES or not export.is_file():
        extract.read_export(export, loaded)  # raises its message at once, before opening the file
    if export.suffix.lower() != ".csv":
        return
    try:
        with export.open("rb") as raw:
            if b"\x00" in raw.read(1 << 16):  # UTF-16 (without a byte-order mark, it decodes as UTF-8)
                return  # extract says "not UTF-8", which comes before anything about the header
        with export.open(encoding="utf-8-sig", newline="") as stream:
            header = next((row for row in csv.reader(stream) if not extract._is_blank_line("".join(row))), None)
    except (OSError, UnicodeDecodeError, csv.Error):
        return
    names = [name.strip(extract.WHITESPACE) for name in header or []]
    while names and not names[-1]:  # trailing empty columns are dropped by extract when their cells are
        names.pop()
    if names:
        extract._check_header(export, names, loaded)


def _preflight(arguments: argparse.Namespace, loaded: LoadedConfig) -> None:
    """Every check of `run` that needs no server, before Prefect's temporary server starts (which takes
    seconds): the export's path and header, the output, quarantine and drafts folders, and (in ephemeral
    mode, where nothing queues a second run) the year's lock. Each fails with the error the flow would
    raise, printed once by `main`; the flow checks them all again."""
    from cro_awards.engine.locks import LOCKS, year_lock
    from cro_awards.publication import publish

    _export_header(loaded.export_path(arguments.export), loaded)
    output, quarantine, drafts = load_settings().folders(arguments.output, arguments.quarantine, arguments.drafts)
    output, quarantine = publish.check_locations(output, quarantine)
    publish.check_store(drafts, output, quarantine)
    # The year's lock, without making a folder (a run stopped later, e.g. by a server that does not start,
    # leaves nothing behind): held only where its folder exists; a file in the way fails at once. With a
    # server, a second run of the year waits for its slot instead.
    locks = output / LOCKS
    blocked = any(path.exists() and not path.is_dir() for path in (locks, output, *output.parents))
    if not os.environ.get("PREFECT_API_URL") and (locks.is_dir() or blocked):
        with year_lock(output, loaded.survey.survey_year, "cro-awards"):
            pass


def _run(arguments: argparse.Namespace) -> int:
    loaded = _loaded(arguments)  # an invalid configuration or override fails here, as in `check`
    _preflight(arguments, loaded)  # so do a wrong path, header or folder, and a held year: no server yet
    from rich.console import Console

    summary = _run_locally(arguments, loaded) if arguments.local else _run_flow(arguments, loaded)
    if summary is None:
        return 8
    if arguments.summary_json:
        Path(arguments.summary_json).write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    print_summary(Console(width=None if sys.stdout.isatty() else 120), summary)
    return 0


def _run_flow(arguments: argparse.Namespace, loaded: LoadedConfig) -> RunSummary | None:
    """`run`: the Prefect flow (a temporary server unless PREFECT_API_URL names one); None when the temporary
    server did not start in time (said on stderr)."""
    prepare_environment()
    from flows.awards import cro_awards_flow  # after prepare_environment: Prefect reads it at import

    keys = ("export", "output", "quarantine", "release", "drafts", "accept_difference")
    parameters = {key: getattr(arguments, key) for key in keys}
    try:
        with guarding_temporary_server():
            summary = cro_awards_flow(config=str(loaded.path), **parameters, **loaded.overrides)
    except RuntimeError as error:
        if not _server_timed_out(error):
            raise
        print(
            f"cro-awards: Prefect's temporary server did not start within {os.environ[SERVER_TIMEOUT_VARIABLE]} s "
            "(a first start also builds its database, which takes longer on a busy machine). Nothing was run. "
            f"Run again, or allow it more time with {SERVER_TIMEOUT_VARIABLE}=600 (seconds; or "
            "CRO_AWARDS_SERVER_STARTUP_TIMEOUT=600, its default here), or start a server "
            "once (`make serve`, or `prefect server start`) and point PREFECT_API_URL at it.",
            file=sys.stderr,
        )
        return None
    return summary


def _run_locally(arguments: argparse.Namespace, loaded: LoadedConfig) -> RunSummary:
    """`run --local`: the flow's work without Prefect (`cro_awards.run.pipeline.draft_year`), in this process."""
    import uuid

    from cro_awards.run import pipeline

    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)-7s | %(message)s", datefmt="%H:%M:%S")
    settings = load_settings()
    _, summary = pipeline.draft_year(
        loaded,
        loaded.export_path(arguments.export),
        *settings.folders(arguments.output, arguments.quarantine, arguments.drafts),
        run_id=str(uuid.uuid4()),
        release=arguments.release,
        accept_difference=arguments.accept_difference,
        keep=settings.keep_publications,
    )
    return summary


def _release(arguments: argparse.Namespace) -> int:
    from cro_awards.engine.locks import year_lock
    from cro_awards.publication import releases
    from cro_awards.record.summary import printable

    if arguments.now and arguments.embargo_until:
        raise releases.EmbargoTimeError("give --now (release at once) or --embargo-until (release then), not both.")
    until = releases.embargo_time(arguments.embargo_until) if arguments.embargo_until else None  # refused first
    output, quarantine, drafts = _folders(arguments)
    arguments.run_id = releases.resolve_run_id(drafts, arguments.year, arguments.run_id, output=output)
    if until is not None:
        return _schedule(arguments, output, quarantine, drafts, until)
    with year_lock(output, arguments.year, "cro-awards"):
        embargoed = releases.pending_embargoes(drafts, arguments.year).get(arguments.run_id)
        if embargoed is not None and not arguments.now:
            raise releases.ReleaseError(
                f"run {arguments.run_id} of {arguments.year} is embargoed until {releases.iso(embargoed)}: its "
                "scheduled run releases it then. To release it at once (cancelling the embargo) add --now; nothing "
                "was released."
            )
        done = releases.release(
            output,
            quarantine,
            arguments.year,
            arguments.run_id,
            store=drafts,
            released_by=arguments.by,
            keep=load_settings().keep_publications,
            accept_difference=arguments.accept_difference,
        )
    link = output / f"survey_year={arguments.year}"
    if done["already"]:
        print(printable(f"Run {done['run_id']} was already the release of {arguments.year}; {link} shows it."))
    else:
        before = f"run {done['previous_run_id']}" if done["previous_run_id"] else "no release"
        print(
            printable(
                f"Released survey year {arguments.year}: run {done['run_id']}, by {done['released_by']} at "
                f"{done['released_at']} (before: {before}). Readers of {link} now see it."
            )
        )
    for cancelled in done["cancelled_embargoes"]:
        print(
            printable(
                f"The embargoed release of run {cancelled['run_id']} at {cancelled['embargo_until']} is cancelled: "
                "its scheduled run will release nothing."
            )
        )
    if done["difference"]:
        rows = sum(f["attribute_rows"] + f["composite_rows"] for f in done["difference"])
        print(printable(f"The differencing guard's finding ({rows} row(s)) was accepted and logged."))
    if done["unchecked"]:
        print(
            printable(
                f"Not compared with the earlier release(s) {', '.join(done['unchecked'])}: no contributions were kept "
                "with them (drafted before the differencing guard)."
            )
        )
    return 0


def _schedule(arguments: argparse.Namespace, output: Path, quarantine: Path, drafts: Path, until) -> int:
    """`release --embargo-until`: a run of the cro-awards-release/release deployment scheduled at that time."""
    from cro_awards.publication import releases
    from cro_awards.record.summary import printable

    releases.require_draft(drafts, arguments.year, arguments.run_id)
    if not os.environ.get("PREFECT_API_URL"):
        raise releases.ReleaseError(
            "an embargoed release is made by a scheduled run of the cro-awards-release/release deployment, which "
            "needs a Prefect server serving it: start `make serve` and set PREFECT_API_URL=http://127.0.0.1:4200/api "
            "(nothing was scheduled)."
        )
    prepare_environment()
    from prefect.exceptions import ObjectNotFound

    from flows.release import DEPLOYMENT, schedule_release

    try:
        entry = schedule_release(
            arguments.year,
            arguments.run_id,
            until,
            released_by=arguments.by,
            output=output,
            quarantine=quarantine,
            drafts=drafts,
            accept_difference=arguments.accept_difference,
        )
    except ObjectNotFound:
        raise releases.ReleaseError(
            f"the Prefect server at {os.environ['PREFECT_API_URL']} has no deployment {DEPLOYMENT}: serve it "
            "(`make serve`) and try again (nothing was scheduled)."
        ) from None
    for replaced in entry["replaced"]:
        print(
            printable(
                f"The embargoed release of run {replaced['run_id']} at {replaced['embargo_until']} is cancelled "
                "(replaced by this one): its scheduled run will release nothing."
            )
        )
    print(
        printable(
            f"Run {arguments.run_id} of {arguments.year} is embargoed until {entry['embargo_until']}: flow run "
            f"{entry['flow_run_id']} of {DEPLOYMENT} releases it then. Until then readers see the current release."
        )
    )
    return 0


def _publications(arguments: argparse.Namespace) -> int:
    from cro_awards.publication import releases

    output, _, drafts = _folders(arguments)
    listed = releases.publications(output, drafts, arguments.year)
    if arguments.json:
        print(json.dumps([p.as_json() for p in listed], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from cro_awards.record.summary import printable

    if not listed:
        print(printable(f"No draft of survey year {arguments.year} in {drafts}."))
        return 0
    table = Table(title=Text(f"Drafts and releases of {arguments.year}, newest first ({printable(drafts)})"))
    table.add_column("run id", no_wrap=True, min_width=36)  # whole: it is what `release` and `diff` take
    for column in ("status", "made at", "export (sha256)", "overrides", "released"):
        table.add_column(column)
    for item in listed:
        overrides = ", ".join(f"{k}={v}" for k, v in item.overrides.items()) or "-"
        export = f"{item.export_file} ({(item.export_sha256 or '')[:12]})"
        released = f"{item.released_at} by {item.released_by}" if item.released_at else "-"
        cells = (item.run_id, item.status, item.created_at, export, overrides, released)
        table.add_row(*(Text(printable(cell)) for cell in cells))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0


def _diff(arguments: argparse.Namespace) -> int:
    from cro_awards.publication import diff, releases

    output, _, drafts = _folders(arguments)
    run_id = releases.resolve_run_id(drafts, arguments.year, arguments.run_id, output=output)
    draft = diff.load(releases.require_draft(drafts, arguments.year, run_id))
    if arguments.against:
        against_id = releases.resolve_run_id(drafts, arguments.year, arguments.against, output=output)
        against = diff.load(releases.require_draft(drafts, arguments.year, against_id))
    else:
        current = releases.current_release(output, arguments.year)
        against = diff.load(current) if current else None
    print(diff.render_text(diff.compare(draft, against)))
    return 0


COMMANDS = {
    "run": _run,
    "check": _check,
    "release": _release,
    "publications": _publications,
    "diff": _diff,
    "new-year": _new_year,
}

RELEASE_COMMANDS = ("release", "publications", "diff")


def main(argv: list[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    try:
        return COMMANDS[arguments.command](arguments)
    except CroAwardsError as error:
        print(f"cro-awards: {error}", file=sys.stderr)
        return error.exit_code
    except NotADirectoryError as error:
        if arguments.command not in RELEASE_COMMANDS:
            raise
        # a file where a folder should be, met past the folders' checks (`releases.require_folders`)
        print(
            f"cro-awards: cannot use {error.filename}: a file stands where a folder should be in its path. Nothing "
            "was published or released; what readers see is unchanged. Fix: move the file aside (it was not "
            "written by cro-awards) or give --output / --drafts / --quarantine another folder, then run again.",
            file=sys.stderr,
        )
        return 5


if __name__ == "__main__":
    sys.exit(main())
