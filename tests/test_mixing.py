"""Weighted mixing: output shares, default size without reuse, oversampling, sources, CLI errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from mypt_hf.cli import main
from mypt_hf.data.mixing import mix, mix_with_metadata
from mypt_hf.data.schema import episodes_from_rows, make_episode, save_episodes_jsonl
from mypt_hf.errors import MyPTInputError


def _source(name: str, n: int):
    return episodes_from_rows([make_episode(f"{name} question {i}", f"{name} answer {i}", source=name)
                               for i in range(n)])


@pytest.fixture(scope="module")
def sources():
    return {"echo": _source("echo", 687), "alpha": _source("alpha", 131), "extra": _source("extra", 50)}


def _counts(dataset):
    return Counter(m["mix_source"] for m in dataset["_meta"])


def test_shares_of_output_default_size(sources):
    data, meta = mix_with_metadata({"echo": sources["echo"], "alpha": sources["alpha"]}, [0.85, 0.15])
    counts = _counts(data)
    # the guide's 85/15 gives 85% and 15% (the original gave 96.7/3.3); no row used twice
    assert abs(counts["echo"] - 0.85 * len(data)) <= 1 and abs(counts["alpha"] - 0.15 * len(data)) <= 1
    assert counts["echo"] <= 687 and counts["alpha"] <= 131
    assert len(data) == meta["default_size"] == 808  # 687 / 0.85 = 808.2
    assert not meta["oversampled"]
    questions = [e["messages"][1]["content"] for e in data]
    assert len(set(questions)) == len(questions)


def test_three_way_and_target_size(sources):
    data = mix(sources, [35, 50, 15], target_size=300, seed=1)
    counts = _counts(data)
    for name, share in (("echo", 0.35), ("alpha", 0.5), ("extra", 0.15)):
        assert abs(counts[name] - share * 300) <= 1
    assert json.loads(data.info.description)["total_episodes"] == 300


def test_oversampling_reported(sources):
    data, meta = mix_with_metadata(sources, [1, 1, 1], target_size=600)
    assert len(data) == 600 and meta["oversampled"]
    extra = next(s for s in meta["sources"] if s["source"] == "extra")
    assert extra["quota"] == 200 and extra["with_replacement"] == 150 and extra["oversampled"]
    # every source row appears at least once before any is repeated
    assert len({e["messages"][1]["content"] for e in data if e["_meta"]["mix_source"] == "extra"}) == 50


def test_deterministic_and_shuffle(sources, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    save_episodes_jsonl(mix(sources, [2, 1, 1], seed=5), a)
    save_episodes_jsonl(mix(sources, [2, 1, 1], seed=5), b)
    assert a.read_bytes() == b.read_bytes()
    unshuffled = mix(sources, [2, 1, 1], shuffle=False)
    names = [m["mix_source"] for m in unshuffled["_meta"]]
    assert names == sorted(names, key=["echo", "alpha", "extra"].index)


def test_bad_weights(sources):
    with pytest.raises(MyPTInputError, match="weights"):
        mix(sources, [1, 1])
    with pytest.raises(MyPTInputError, match="non-negative"):
        mix(sources, [1, -1, 1])
    with pytest.raises(MyPTInputError, match="zero"):
        mix(sources, [0, 0, 0])


def _write(path, name, n):
    save_episodes_jsonl(_source(name, n), path)
    return path


def test_cli_mix(tmp_path):
    a, b = _write(tmp_path / "echo.jsonl", "echo", 170), _write(tmp_path / "alpha.jsonl", "alpha", 30)
    out = tmp_path / "out" / "beta.jsonl"
    assert main(["mix", "--inputs", str(a), str(b), "--weights", "0.85", "0.15", "--output", str(out),
                 "--shuffle"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    counts = Counter(r["_meta"]["mix_source"] for r in rows)
    assert counts == {"echo": 170, "alpha": 30}
    meta = json.loads((tmp_path / "out" / "beta.mix_meta.json").read_text())
    assert meta["version"] and meta["seed"] == 42 and meta["counts"]["episodes"] == 200


@pytest.mark.parametrize("weights", [["1"], ["1", "-1"], ["0", "0"]])
def test_cli_bad_weights_exit_2(tmp_path, weights):
    a, b = _write(tmp_path / "a.jsonl", "a", 10), _write(tmp_path / "b.jsonl", "b", 10)
    out = tmp_path / "out" / "m.jsonl"
    assert main(["mix", "--inputs", str(a), str(b), "--weights", *weights, "--output", str(out)]) == 2
    assert not out.exists() and not out.parent.exists()


def test_cli_output_equal_to_an_input_is_refused_and_the_input_kept(tmp_path, capsys):
    a, b = _write(tmp_path / "a.jsonl", "a", 10), _write(tmp_path / "b.jsonl", "b", 10)
    before = a.read_bytes()
    assert main(["mix", "--inputs", str(a), str(b), "--output", str(tmp_path / "." / "a.jsonl")]) == 2
    assert "one of the inputs" in capsys.readouterr().err and a.read_bytes() == before
    assert not (tmp_path / "a.mix_meta.json").exists()


def test_cli_missing_input_exit_2(tmp_path):
    a = _write(tmp_path / "a.jsonl", "a", 10)
    out = tmp_path / "m.jsonl"
    assert main(["mix", "--inputs", str(a), str(tmp_path / "missing.jsonl"), "--output", str(out)]) == 2
    assert not out.exists()


def test_cli_generators_bad_mode_exit_2(tmp_path):
    assert main(["generate-format-lock", "--output_dir", str(tmp_path / "fl"), "--mode", "huge"]) == 2
    assert main(["generate-echo", "--output_dir", str(tmp_path / "e"), "--gibberish", "maybe", "--no_bpe_safe"]) == 2
    assert not (tmp_path / "fl").exists() and not (tmp_path / "e").exists()
    assert main(["generate-format-lock", "--output_dir", str(tmp_path / "fl"), "--mode", "minimal",
                 "--math", "exclude"]) == 0
    meta = json.loads((tmp_path / "fl" / "mypt_format_lock_v1.meta.json").read_text())
    assert meta["episodes"] == 1367 and meta["by_language"] == {"de": 78, "en": 1289}
