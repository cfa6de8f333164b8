"""The inbox's choice of exports (cro_awards/reading/inbox.py), without Prefect: files named after a configured
year, oldest first; new or already published by SHA-256; and a file that links outside the allowed
roots refused before it is opened (never read, never hashed)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cro_awards.reading import inbox as inbox_module
from cro_awards.reading.inbox import exports_by_year, scan_inbox


def _file(path: Path, text: str, mtime: int) -> Path:
    path.write_text(text)
    os.utime(path, (mtime, mtime))
    return path


def test_exports_are_matched_to_configured_years_oldest_first(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    newer = _file(inbox / "export_2024.csv", "b", 2_000)
    older = _file(inbox / "2023-final.xlsx", "a", 1_000)
    other = _file(inbox / "export_1999.csv", "c", 1_500)
    notes = _file(inbox / "notes_2024.txt", "d", 1_500)
    _file(inbox / ".hidden_2024.csv", "e", 1_500)
    matched, unmatched = exports_by_year(inbox, [2023, 2024])
    assert matched == [(2023, older), (2024, newer)]
    assert sorted(unmatched) == sorted([other, notes])


def test_new_and_published_exports_are_told_apart_by_their_content(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    old = _file(inbox / "export_2024_v1.csv", "v1", 1_000)
    new = _file(inbox / "export_2024_v2.csv", "v2", 2_000)
    published = {hashlib.sha256(b"v1").hexdigest()}
    scan = scan_inbox(inbox, [2024], published, [tmp_path])
    assert [e.path for e in scan.published] == [old] and [e.path for e in scan.new] == [new]
    assert scan.new[0].sha256 == hashlib.sha256(b"v2").hexdigest() and scan.refused == []


def test_a_link_out_of_the_roots_is_refused_before_it_is_hashed(tmp_path, monkeypatch):
    """The attacker's recipe: a symlink in the inbox to a secret file outside the data root."""
    root, secret = tmp_path / "data", tmp_path / "secret" / "export_secret.csv"
    inbox = root / "inbox"
    inbox.mkdir(parents=True)
    secret.parent.mkdir()
    secret.write_text("respondent_id,cro\nR1,Secret CRO\n")
    (inbox / "export_2024.csv").symlink_to(secret)
    inside = _file(root / "kept_2024.csv", "inside", 1_000)
    (inbox / "linked_2024.csv").symlink_to(inside)
    hashed: list[Path] = []
    real = inbox_module.sha256_of
    monkeypatch.setattr(inbox_module, "sha256_of", lambda path: hashed.append(path) or real(path))
    scan = scan_inbox(inbox, [2024], set(), [root])
    assert [path.name for path, _ in scan.refused] == ["export_2024.csv"]
    assert "outside" in scan.refused[0][1]
    assert secret.resolve() not in hashed and hashed == [inside.resolve()], "the secret file is never opened"
    assert [(e.path.name, e.resolved) for e in scan.new] == [("linked_2024.csv", inside.resolve())]
