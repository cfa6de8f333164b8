"""Paths from untrusted callers (a deployment's parameters, typed into the Prefect UI) stay inside roots.

Contract: `confine(path, roots, what)` resolves `path` (following every symbolic link, `..` included)
and returns it if it lies inside one of `roots` (also resolved); otherwise raises `UntrustedPathError`.
The command line, run by a local user, is not confined.
"""

from __future__ import annotations

from pathlib import Path

from cro_awards.engine.errors import CroAwardsError


class UntrustedPathError(CroAwardsError):
    """A deployment run named a path outside the folders it may use."""

    exit_code = 7


def confine(path: Path, roots: list[Path], what: str) -> Path:
    resolved = path.resolve()
    allowed = [root.resolve() for root in roots]
    if any(resolved == root or resolved.is_relative_to(root) for root in allowed):
        return resolved
    raise UntrustedPathError(
        f"{what} {str(path)!r} resolves to {resolved}, outside {' and '.join(str(r) for r in allowed)}; "
        "deployment runs may only use paths inside the data root (setting CRO_AWARDS_DATA_ROOT)."
    )
