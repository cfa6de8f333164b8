"""Named kill points: deterministic crash tests.

`kill_point(name)` does nothing unless the environment variable `CRO_AWARDS_KILL_POINT` equals
`name`; then it kills the whole process group with SIGKILL, as a power cut or an OOM kill would (no
`finally`, no atexit, no Prefect hooks run). The crash tests set the variable and check that the
output holds the previous or the new publication, never a mix, and that the next run recovers.
"""

from __future__ import annotations

import os
import signal

KILL_POINT_VARIABLE = "CRO_AWARDS_KILL_POINT"

KILL_POINTS = (
    "after_extract",
    "after_stage",
    "after_validate",
    "after_transform",
    "quarantine_temporary_written",
    "after_quarantine",
    "after_report",
    "publication_table_written",
    "publication_complete",
    "publication_renamed",
    "link_created",
    "link_switched",
    "after_publish",
)
"""Every point the code names, in the order a run reaches them."""


def kill_point(name: str) -> None:
    """SIGKILL the process group here if `CRO_AWARDS_KILL_POINT` names this point."""
    if name not in KILL_POINTS:
        raise ValueError(f"unknown kill point {name!r}")
    if os.environ.get(KILL_POINT_VARIABLE) == name:
        os.killpg(os.getpgrp(), signal.SIGKILL)
