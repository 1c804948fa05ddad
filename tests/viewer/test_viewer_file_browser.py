"""viewer/file_browser.py: the "Open checkpoint" dialog's folder listing, without a display."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import UserError
from viewer import file_browser as fb


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with sub-folders (one a run folder), checkpoints, a latent, other and hidden files."""
    (tmp_path / "zeta").mkdir()
    (tmp_path / "Alpha").mkdir()
    run = tmp_path / "run-00001"
    run.mkdir()
    (run / "network-snapshot-000004.pt").write_bytes(b"x" * 10)
    (run / "network-snapshot-000008.pt").write_bytes(b"x" * 10)
    (tmp_path / ".hidden_dir").mkdir()
    (tmp_path / "b.pt").write_bytes(b"x" * 2048)
    (tmp_path / "A.PKL").write_bytes(b"x")
    (tmp_path / "w.npy").write_bytes(b"x" * 3)
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / ".secret.pt").write_bytes(b"x")
    return tmp_path


def test_folders_first_then_openable_files_case_insensitive(folder):
    entries = fb.list_dir(folder)
    assert [e.name for e in entries] == ["Alpha", "run-00001", "zeta", "A.PKL", "b.pt", "w.npy"]
    assert [e.is_dir for e in entries] == [True, True, True, False, False, False]
    b = entries[4]
    assert b.size == 2048 and b.mtime == pytest.approx(os.stat(folder / "b.pt").st_mtime)
    assert b.path == str(folder / "b.pt") and b.openable and not entries[0].openable


def test_show_all_adds_other_and_hidden_files(folder):
    names = [e.name for e in fb.list_dir(folder, show_all=True)]
    assert names == [".hidden_dir", "Alpha", "run-00001", "zeta", ".secret.pt", "A.PKL", "b.pt", "notes.txt", "w.npy"]
    assert not next(e for e in fb.list_dir(folder, True) if e.name == "notes.txt").openable


def test_run_folder_detection(folder):
    assert fb.is_run_folder(folder / "run-00001")
    assert not fb.is_run_folder(folder) and not fb.is_run_folder(folder / "zeta")
    assert not fb.is_run_folder(folder / "missing") and not fb.is_run_folder(folder / "b.pt")
    by_name = {e.name: e for e in fb.list_dir(folder)}
    assert by_name["run-00001"].is_run and not by_name["zeta"].is_run


def test_missing_file_and_unreadable_folders_raise_user_errors(folder, monkeypatch):
    with pytest.raises(UserError, match="does not exist"):
        fb.list_dir(folder / "missing")
    with pytest.raises(UserError, match="not a folder"):
        fb.list_dir(folder / "b.pt")

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(fb.os, "scandir", denied)
    with pytest.raises(UserError, match="cannot read .*Permission denied"):
        fb.list_dir(folder)
    assert not fb.is_run_folder(folder / "run-00001")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any folder")
def test_chmod_000_folder_is_unreadable(folder):
    locked = folder / "zeta"
    locked.chmod(0)
    try:
        with pytest.raises(UserError, match="cannot read"):
            fb.list_dir(locked)
    finally:
        locked.chmod(0o755)


def test_parent_and_normalise(tmp_path):
    assert fb.parent(tmp_path / "a") == str(tmp_path)
    assert fb.parent("/") == "/"
    assert fb.normalise(f"  '{tmp_path}/a/../b'  ") == str(tmp_path / "b")
    assert fb.normalise("~") == str(Path.home())


def test_start_folder_prefers_model_folder_then_last_browse_then_cwd(folder):
    assert fb.start_folder(str(folder / "b.pt"), str(folder / "zeta")) == str(folder)
    assert fb.start_folder(str(folder / "run-00001"), "") == str(folder / "run-00001")
    assert fb.start_folder("random:demo", str(folder / "zeta")) == str(folder / "zeta")
    assert fb.start_folder("random:demo", str(folder / "gone"), cwd=str(folder / "Alpha")) == str(folder / "Alpha")
    assert fb.start_folder("/nowhere/x.pt", "", cwd=str(folder)) == str(folder)


def test_formatting():
    assert fb.format_size(512) == "512 B" and fb.format_size(2048) == "2.0 KB"
    assert fb.format_size(5 * 1024**3) == "5.0 GB"
    assert fb.format_mtime(0) == "" and len(fb.format_mtime(1.7e9)) == 16


def test_last_browse_folder_round_trips_through_the_session(tmp_path):
    from viewer.session import load_session, save_session
    from viewer.state import ViewerState

    st = ViewerState()
    st.model.browse_dir = str(tmp_path)
    back = load_session(save_session(st, tmp_path / "session.json"))
    assert back.model.browse_dir == str(tmp_path)
