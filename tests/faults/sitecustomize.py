"""Fault injection for the crash and disclosure tests, loaded by the process under test and never by
production code.

A test puts this folder first on PYTHONPATH and names a checkpoint in CRO_AWARDS_KILL_POINT; the
interpreter imports this module at start-up, and at that checkpoint the whole process group is killed
with SIGKILL, as a power cut or an OOM kill would (no `finally`, no atexit, no Prefect hooks run).
"""

import os
import signal

KILL_POINT_VARIABLE = "CRO_AWARDS_KILL_POINT"


def _kill_at(point: str):
    def observer(name: str) -> None:
        if name == point:
            os.killpg(os.getpgrp(), signal.SIGKILL)

    return observer


if os.environ.get(KILL_POINT_VARIABLE):
    from cro_awards.engine.checkpoints import CHECKPOINTS, observe

    if os.environ[KILL_POINT_VARIABLE] not in CHECKPOINTS:
        raise SystemExit(f"{KILL_POINT_VARIABLE}={os.environ[KILL_POINT_VARIABLE]!r} names no checkpoint")
    observe(_kill_at(os.environ[KILL_POINT_VARIABLE]))

FAULT_VARIABLE = "CRO_AWARDS_FAULT"
"""Names a planted bug: `thin_cells_in_composites` lets the cells that are not countable reach the
composites (the disclosure audit must then stop the run before anything is published)."""


def thin_cells_in_composites() -> None:
    """Plant the bug: int_composite_scores averages every rated cell's score, countable or not (as the
    design before the countable-cells rule did). Shared with the in-process tests."""
    from cro_awards.engine import sql

    text = sql.sql_text

    def planted(name, folder=sql.SQL_DIR):
        found = text(name, folder)
        if name == "int_composite_scores" and folder == sql.SQL_DIR:
            every_cell = (
                "(select segment, cro, attribute, n_ratings, rating_sum / n_ratings as score from int_rating_cells)"
                " as int_attribute_scores"
            )
            found = found.replace("    from int_attribute_scores\n", f"    from {every_cell}\n", 1)
            found = found.replace("-- reads: int_attribute_scores,", "-- reads: int_rating_cells,", 1)
        return found

    sql.sql_text = planted


_FAULTS = {"thin_cells_in_composites": thin_cells_in_composites}

if os.environ.get(FAULT_VARIABLE):
    if os.environ[FAULT_VARIABLE] not in _FAULTS:
        raise SystemExit(f"{FAULT_VARIABLE}={os.environ[FAULT_VARIABLE]!r} names no fault ({', '.join(_FAULTS)})")
    _FAULTS[os.environ[FAULT_VARIABLE]]()
