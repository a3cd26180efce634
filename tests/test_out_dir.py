"""The one ``--out`` rule (dynafit._io.claim_out_dir) shared by train, sweep and fit."""

import json

import pytest

from dynafit._io import claim_out_dir


def _claim(out, config, overwrite=False):
    def differs(previous):
        return None if previous.get("config") == config else f"a run of config {config}"

    return claim_out_dir(out, kind="test/1", what="a test", differs=differs, overwrite=overwrite)


def _write_manifest(out, config, files=()):
    out.mkdir(exist_ok=True)
    doc = {"kind": "test/1", "config": config, "files": list(files)}
    (out / "manifest.json").write_text(json.dumps(doc))


def test_new_folder_is_not_created_until_written(tmp_path):
    folder = _claim(tmp_path / "new", 1)
    assert not folder.resume and folder.previous is None and not (tmp_path / "new").exists()
    with pytest.raises(ValueError, match="cannot write there"):
        (tmp_path / "file").write_text("x")
        _claim(tmp_path / "file" / "sub", 1)


def test_same_config_resumes_other_config_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    _write_manifest(out, 1, files=["a.npz"])
    folder = _claim(out, 1)
    assert folder.resume and not folder.replacing and folder.owned == {"a.npz"}
    with pytest.raises(ValueError, match="holds a run of config 2; .*--overwrite"):
        _claim(out, 2)
    assert _claim(out, 2, overwrite=True).replacing


def test_user_files_are_never_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.npz").write_text("mine")
    (out / ".checkpoints").mkdir()  # dynafit's scratch does not make a folder foreign
    with pytest.raises(ValueError, match=r"not written by a test \(a.npz\)"):
        _claim(out, 1)
    folder = _claim(out, 1, overwrite=True)  # beside the user's files, never over them
    folder.check_free(["b.npz"])
    with pytest.raises(ValueError, match="refusing to replace"):
        folder.check_free(["a.npz"])
    # a manifest.json that is not ours (or unreadable) is refused even with --overwrite
    (out / "manifest.json").write_text(json.dumps({"kind": "other"}))
    with pytest.raises(ValueError, match="was not written by a test"):
        _claim(out, 1, overwrite=True)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        _claim(out, 1, overwrite=True)
    assert (out / "a.npz").read_text() == "mine"
