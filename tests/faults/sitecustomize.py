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
    from cro_awards.checkpoints import CHECKPOINTS, observe

    if os.environ[KILL_POINT_VARIABLE] not in CHECKPOINTS:
        raise SystemExit(f"{KILL_POINT_VARIABLE}={os.environ[KILL_POINT_VARIABLE]!r} names no checkpoint")
    observe(_kill_at(os.environ[KILL_POINT_VARIABLE]))

FAULT_VARIABLE = "CRO_AWARDS_FAULT"
"""Names a planted bug: `no_complementary_suppression` switches complementary suppression off (the
disclosure audit must then stop the run before anything is published)."""


def _without_complementary_suppression() -> None:
    from cro_awards import disclosure

    plan_cro = disclosure.plan_cro

    def primary_only(cells, min_cell_size):
        plan = plan_cro(cells, min_cell_size)
        plan.complementary_cells, plan.complementary_composites = [], []
        return plan

    disclosure.plan_cro = primary_only


_FAULTS = {"no_complementary_suppression": _without_complementary_suppression}

if os.environ.get(FAULT_VARIABLE):
    if os.environ[FAULT_VARIABLE] not in _FAULTS:
        raise SystemExit(f"{FAULT_VARIABLE}={os.environ[FAULT_VARIABLE]!r} names no fault ({', '.join(_FAULTS)})")
    _FAULTS[os.environ[FAULT_VARIABLE]]()
