"""Model names resolve like the original: a bare name is <checkpoints>/<name>, a path is a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mypt_hf.errors import MyPTInputError
from mypt_hf.model_names import is_bare_name, known_models, output_dir_for, resolve_model


def _model(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    return path


def test_bare_names_and_paths():
    assert is_bare_name("phase3a1_alpha") and is_bare_name("mypt-750M")
    for spec in ("outputs/x", "./x", "../x", "~/x", "/abs/x", ""):
        assert not is_bare_name(spec), spec


def test_name_resolves_in_the_checkpoints_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MYPT_CHECKPOINTS_DIR", raising=False)
    _model(tmp_path / "checkpoints" / "phase3a1_alpha")
    assert resolve_model("phase3a1_alpha") == Path("checkpoints/phase3a1_alpha")
    assert output_dir_for("beta") == Path("checkpoints/beta")
    elsewhere = _model(tmp_path / "store" / "base")
    monkeypatch.setenv("MYPT_CHECKPOINTS_DIR", str(tmp_path / "store"))
    assert resolve_model("base") == elsewhere
    assert known_models() == ["base"]


def test_path_means_a_path_and_cwd_folder_fallback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MYPT_CHECKPOINTS_DIR", raising=False)
    _model(tmp_path / "outputs" / "m")
    assert resolve_model("outputs/m") == Path("outputs/m")
    _model(tmp_path / "local")
    assert resolve_model("local") == Path("local")  # not in checkpoints/, but a folder here
    with pytest.raises(MyPTInputError, match="model directory not found"):
        resolve_model("outputs/none", field="init_from_model")


def test_unknown_name_lists_the_models_that_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MYPT_CHECKPOINTS_DIR", raising=False)
    with pytest.raises(MyPTInputError, match="checkpoints does not exist"):
        resolve_model("alpha")
    _model(tmp_path / "checkpoints" / "phase3a1_alpha")
    _model(tmp_path / "checkpoints" / "phase3a1_beta")
    with pytest.raises(MyPTInputError) as error:
        resolve_model("alpha", field="init_from_model")
    message = str(error.value)
    assert "no model named 'alpha'" in message and "phase3a1_alpha, phase3a1_beta" in message
    assert "init_from_model" in message and "MYPT_CHECKPOINTS_DIR" in message
