"""Named checkpoints: the points of a run where an observer may act.

`checkpoint(name)` calls each observer registered with `observe` (none in production: the call is a
name check and an empty loop). The crash tests register one, from outside the production code
(`tests/faults/sitecustomize.py`, loaded by the interpreter of the process under test), that SIGKILLs
the process group at the point they name, and check that the output holds the previous or the new
publication, never a mix.
"""

from __future__ import annotations

from collections.abc import Callable

CHECKPOINTS = (
    "after_extract",
    "after_stage",
    "after_validate",
    "quarantine_temporary_written",
    "after_quarantine",
    "after_transform",
    "after_check",
    "after_report",
    "publication_table_written",
    "publication_complete",
    "publication_renamed",
    "release_copy_file_written",
    "release_copy_complete",
    "release_copy_renamed",
    "link_created",
    "link_switched",
    "release_recorded",
    "after_publish",
)
"""Every checkpoint the code names, in the order a run reaches them."""

_observers: list[Callable[[str], None]] = []


def observe(observer: Callable[[str], None]) -> None:
    """Call `observer(name)` at every checkpoint from now on (in this process)."""
    _observers.append(observer)


def checkpoint(name: str) -> None:
    if name not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {name!r}")
    for observer in _observers:
        observer(name)
