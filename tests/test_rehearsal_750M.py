"""The 750M chain rehearsed at laptop scale: a native MyPT checkpoint written as the original saves one (GPT-2 BPE +
the 19 tags, 50304 rows, rope / swiglu / rmsnorm, tied, context 1024; tests/native_checkpoint.py), ``mypt-hf
convert``, then ``mypt-hf run-phases --config_suffix _750M`` with only step counts, batch sizes, the operator
generator's episode counts and the gate's generation length cut. The data of every phase is generated and prepared
as the 750M configs say; the gates fail on a random base (exit 1), which is what a rehearsal expects.

Both commands run through the CLI entry in this process (``mypt_hf.cli.main``, what the console script calls),
not as subprocesses: the same argument parsing and exit-code mapping, without a second interpreter's start.

The fast tests below cover the pieces the rehearsal found (the fine-tuning config's block_size is the saved
model's context, as the original's init_from_model does it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

#: The only overrides: steps, batch sizes (per-device eval 2: the operator phase's final validation pass at 16 x 1024
#: x 50304 fp32 logits alone took 7 GB), a save at the last step (so the checkpoint path runs too), the operator
#: generator's episode counts (its other settings, the packing and the tokenizer stay the 750M config's) and the
#: gate's reply length and batch. The validation splits stay as prepared; the final validation pass runs.
REHEARSAL_SETS = ("max_steps=2", "per_device_train_batch_size=2", "per_device_eval_batch_size=2",
                  "save_steps=2", "operator_n_train=1000", "operator_n_val=100", "eval_max_new_tokens=8",
                  "eval_batch_size=8")
UNPACKED = ("phase3a1_alpha", "phase3a1_beta", "phase3a1_gamma", "phase3a2")
OPERATOR = "phase3a_operator"


def _read(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_750M_chain_rehearsal(tmp_path, gpt2_tiktoken_path, capsys):
    from native_checkpoint import MODEL_VOCAB, write_native_checkpoint
    from transformers import AutoModelForCausalLM

    import mypt_hf  # noqa: F401  (registers the architecture)
    from mypt_hf.cli import main as cli
    from mypt_hf.tokenization_mypt import load_tokenizer, tokenizer_fingerprint

    native = write_native_checkpoint(tmp_path / "native", tiktoken_file=gpt2_tiktoken_path)
    base, chain = tmp_path / "base-hf", tmp_path / "chain"
    assert cli(["convert", "--input", str(native), "--output_dir", str(base),
                "--tokenizer", str(gpt2_tiktoken_path)]) == 0
    sets = [arg for item in REHEARSAL_SETS for arg in ("--set", item)]
    code = cli(["run-phases", "--config_suffix", "_750M", "--init_from_model", str(base), "--output_root", str(chain),
                *sets, "--continue_on_fail"])
    out = capsys.readouterr().out
    assert code == 1, out[-3000:]  # the gates fail on a random base; a crash would be 3, bad input 2

    gpt2 = tokenizer_fingerprint(load_tokenizer(str(gpt2_tiktoken_path)))
    assert tokenizer_fingerprint(load_tokenizer(str(base))) == gpt2
    summary = _read(chain / "chain_summary.json")
    rows = {row["phase"]: row for row in summary["phases"]}
    assert list(rows) == [*UNPACKED, OPERATOR]
    previous = base.resolve()
    for phase, row in rows.items():
        out_dir = chain / phase
        assert row["exit_code"] == 1 and row["verdict"] in ("FAIL", "RED LINE") and row["error"] is None, row
        assert Path(row["init_from_model"]) == previous, phase  # each phase starts from the previous one's folder
        assert Path(row["config"]).name == f"{phase}_750M.yaml"
        previous = out_dir.resolve()

        # data: generated and prepared as the 750M config says, with the GPT-2 tokenizer
        meta = _read(out_dir / "data" / "mypt_metadata.json")
        assert meta["tokenizer"]["fingerprint"] == gpt2 and meta["tokenizer"]["model_vocab_size"] == MODEL_VOCAB
        if phase == OPERATOR:
            assert meta["packing_enabled"] and meta["block_size"] == 1024 and meta["pack_by_field"] == "_meta.operator"
            assert meta["prepare_mode"] == "explicit_val_file" and meta["payload_overlap_count"] == 0
        else:
            assert not meta["packing_enabled"] and meta["block_size"] == 512, phase
        filtered = [r for r in meta["inputs"]["tokenizer_filters"] if r["filters"]]
        if phase in ("phase3a1_gamma", OPERATOR):  # generated in memory, filtered by token counts: recorded
            assert filtered and all(r["matches"] for r in filtered), meta["inputs"]
            assert {f["fingerprint"] for r in filtered for f in r["filters"]} == {gpt2}
        else:
            assert not filtered, phase

        # trained (the steps asked for), gated, saved; the saved config has the phase's context
        state = _read(out_dir / "checkpoint-2" / "trainer_state.json")
        assert state["global_step"] == 2
        assert any("loss" in entry for entry in state["log_history"]) or (out_dir / "loss.png").is_file()
        report = _read(out_dir / "gate_report.json")
        assert report["phase"] == phase and report["passed"] is False and report["gated_buckets"]
        config = _read(out_dir / "config.json")
        assert config["max_position_embeddings"] == (1024 if phase == OPERATOR else 512), phase
        assert config["vocab_size"] == MODEL_VOCAB
        model = AutoModelForCausalLM.from_pretrained(out_dir)
        assert model.config.max_position_embeddings == config["max_position_embeddings"]
        assert tokenizer_fingerprint(load_tokenizer(str(out_dir))) == gpt2
        del model
    held_out = _read(chain / OPERATOR / "gate_report.json")["held_out"]
    assert "operator validation split" in held_out
    # the chain's last gate: every gated bucket asked of the final model
    kept = summary["kept_skills"]
    assert kept is not None and kept["passed"] is False and kept["buckets"]
    assert "kept" in (chain / "chain_summary.md").read_text(encoding="utf-8").lower()


def _tiny_saved_model(directory: Path, pos_encoding: str, context: int) -> None:
    from mypt_hf.configuration_mypt import MyPTConfig
    from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
    from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size

    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    model = MyPTForCausalLM(MyPTConfig(vocab_size=model_vocab_size(tokenizer), hidden_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, max_position_embeddings=context,
                                       pos_encoding=pos_encoding))
    set_mypt_generation_config(model, tokenizer)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def test_block_size_of_the_config_is_the_fine_tuned_models_context(tmp_path):
    """As the original's init_from_model (reference §6.8, §6.13): the config's block_size replaces the loaded
    model's context; RoPE keeps its weights and outputs, a learned table is cut to its first rows and never grown;
    no block_size keeps the model's own."""
    from mypt_hf.errors import MyPTInputError
    from mypt_hf.training.modeling import load_model_for_training

    rope, learned = tmp_path / "rope", tmp_path / "learned"
    _tiny_saved_model(rope, "rope", 128)
    _tiny_saved_model(learned, "learned", 128)
    ids = torch.tensor([[5, 6, 7, 8, 9]])

    own, _ = load_model_for_training(rope)
    shrunk, _ = load_model_for_training(rope, block_size=64)
    grown, _ = load_model_for_training(rope, block_size=256)
    assert (own.config.max_position_embeddings, shrunk.config.max_position_embeddings,
            grown.config.max_position_embeddings) == (128, 64, 256)
    with torch.no_grad():
        reference = own.eval()(ids).logits
        assert torch.equal(shrunk.eval()(ids).logits, reference) and torch.equal(grown.eval()(ids).logits, reference)
    shrunk.save_pretrained(tmp_path / "saved")
    assert _read(tmp_path / "saved" / "config.json")["max_position_embeddings"] == 64  # the saved config says so

    table, _ = load_model_for_training(learned)
    cut, _ = load_model_for_training(learned, block_size=64)
    assert cut.get_decoder().embed_positions.weight.shape[0] == 64
    assert torch.equal(cut.get_decoder().embed_positions.weight, table.get_decoder().embed_positions.weight[:64])
    with torch.no_grad():
        assert torch.allclose(cut.eval()(ids).logits, table.eval()(ids).logits)
    with pytest.raises(MyPTInputError) as error:
        load_model_for_training(learned, block_size=256)
    assert error.value.field == "block_size" and "128 positions" in str(error.value)


def test_phase_run_applies_the_configs_block_size(tmp_path):
    """The phase layer passes the config's block_size on (the 750M α config: 512) and leaves the model's context
    alone when the config has none (the tiny configs)."""
    from mypt_hf.phases.run import PhaseRun

    base = tmp_path / "base"
    _tiny_saved_model(base, "rope", 1024)
    run = PhaseRun.from_argv("phase3a1_alpha", ["--output_dir", str(tmp_path / "a"), "--init_from_model", str(base),
                                                "--block_size", "512"])
    assert run.model.config.max_position_embeddings == 512
    run = PhaseRun.from_argv("phase3a1_alpha", ["--output_dir", str(tmp_path / "b"), "--init_from_model", str(base)])
    assert run.model.config.max_position_embeddings == 1024
