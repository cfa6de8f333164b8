"""`run` fails fast, once (issue 22): every check that needs no server (the export's path and header, the
folders, the year's lock) runs before Prefect's temporary server starts, and its message is printed once.
Each case runs `cro-awards run` in a subprocess that reports whether Prefect was ever imported: no
Prefect, no server."""

import os
import subprocess
import sys

from cro_awards.engine.locks import year_lock
from tests.conftest import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "surveys" / "2025.yaml"
PROBE = (
    "import sys\n"
    "from cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "print('prefect imported:', 'prefect' in sys.modules)\n"
    "sys.exit(code)\n"
)


def _run(tmp_path, *arguments: str) -> tuple[int, str]:
    folders = ["--output", str(tmp_path / "output"), "--quarantine", str(tmp_path / "quarantine")]
    command = [sys.executable, "-c", PROBE, "run", "--config", str(CONFIG), *folders, *arguments]
    environment = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    environment.pop("PREFECT_API_URL", None)
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, env=environment)
    printed = done.stdout + done.stderr
    assert "prefect imported: False" in printed, printed
    assert "temporary server" not in printed and "Traceback" not in printed, printed
    assert not (tmp_path / "prefect").exists(), "Prefect's home was never made"
    return done.returncode, printed


def test_a_wrong_export_path_exits_3_before_any_server_with_its_message_once(tmp_path):
    missing = tmp_path / "no-such-export.csv"
    code, printed = _run(tmp_path, "--export", str(missing))
    assert code == 3
    assert printed.count("no such file") == 1 and printed.count(str(missing)) == 1


def test_an_unsupported_export_type_exits_3_before_any_server(tmp_path):
    code, printed = _run(tmp_path, "--export", str(tmp_path / "export.txt"))
    assert code == 3 and printed.count("unsupported export type") == 1


def test_a_renamed_attribute_header_exits_3_before_any_server_with_its_message_once(tmp_path):
    lines = (PROJECT_ROOT / "data" / "sample" / "export_2025.csv").read_text(encoding="utf-8").splitlines(True)
    export = tmp_path / "renamed.csv"
    export.write_text(lines[0].replace("biostatistics", "biostats") + "".join(lines[1:]), encoding="utf-8")
    code, printed = _run(tmp_path, "--export", str(export))
    assert code == 3 and printed.count("missing column(s) biostatistics") == 1


def test_a_quarantine_inside_the_output_exits_5_before_any_server(tmp_path):
    code, printed = _run(tmp_path, "--quarantine", str(tmp_path / "output" / "quarantine"))
    assert code == 5 and printed.count("is inside the output folder") == 1


def test_an_output_that_is_a_file_exits_5_before_any_server(tmp_path):
    (tmp_path / "output").write_text("not a folder")
    code, printed = _run(tmp_path)
    assert code == 5 and printed.count("is a file, not a folder") == 1


def test_a_held_year_exits_6_before_any_server_with_its_message_once(tmp_path):
    with year_lock(tmp_path / "output", 2025, "cro-awards"):
        code, printed = _run(tmp_path)
    assert code == 6 and printed.count("is being processed by") == 1


def test_the_header_pre_check_passes_the_samples_headers():
    """The pre-check refuses nothing extract accepts: the sample's header passes it."""
    from cli.main import _export_header
    from cro_awards.reading.config import load_config

    for year in (2023, 2024, 2025):
        loaded = load_config(PROJECT_ROOT / "surveys" / f"{year}.yaml")
        _export_header(loaded.export_path(None), loaded)
