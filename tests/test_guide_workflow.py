"""The guide's by-hand workflow, in the guide's order and with its model names, on a tiny model (issue 17 item 8).

The commands are the README's "From the guide" table: the guide's α and β steps (generate → mix → prepare →
inspect → train → mandatory gate: eval suite, tie weights, train/eval parity → manual generate), each the
`mypt-hf` line that replaces the guide's `python scripts/...` line. The training config is written in the original
train.py's key names, as the guide's configs/sft1/*.json are. The models are named, never given as paths: the
base `domain_v5_sft_ready` and the trained phases live in the checkpoints folder.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path



from mypt_hf.cli import main

GUIDE_PROMPT = ("<myPT_system>You are MyPT. Be concise: 1-2 sentences. Follow instructions exactly.</myPT_system>"
                "<myPT_user>Say Hello.</myPT_user><myPT_assistant>")


def _tiny_base(directory: Path) -> None:
    """A small MyPT with the embedded tokenizer, saved Hub-style: the guide's `domain_v5_sft_ready` stand-in."""
    import torch

    from mypt_hf.configuration_mypt import MyPTConfig
    from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
    from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size

    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    model = MyPTForCausalLM(MyPTConfig(vocab_size=model_vocab_size(tokenizer), hidden_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, max_position_embeddings=256))
    set_mypt_generation_config(model, tokenizer)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def _original_config(path: Path, name: str) -> Path:
    """A configs/sft1-style JSON in the original's key names, cut to a few steps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "name": name, "batch_size": 8, "block_size": 256, "max_iters": 30, "eval_interval": 30,
        "learning_rate": 1e-3, "warmup_iters": 0.1, "weight_decay": 0.01, "grad_clip": 1.0, "dropout": 0.0,
        "use_loss_mask": True, "epoch_seed": 7, "batch_sampling_mode": "epoch"}))
    return path


def test_guide_alpha_and_beta_by_hand_with_model_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MYPT_CHECKPOINTS_DIR", raising=False)
    _tiny_base(Path("checkpoints/domain_v5_sft_ready"))
    prompts = Path("configs/sft_eval/phase3a1_eval_prompts.json")
    prompts.parent.mkdir(parents=True)
    shutil.copyfile(resources.files("mypt_hf").joinpath("phases/configs/eval_prompts/phase3a1.json"), prompts)

    def run(*args: str, expect=(0,)) -> str:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        assert code in expect, f"mypt-hf {' '.join(args)} exited {code}: {captured.err[-2000:]}"
        return captured.out

    # ---- Phase 3a-1α -------------------------------------------------------------------------------------
    run("generate-format-lock", "--mode", "minimal", "--math", "exclude", "--output_dir", "data/sft_format_lock_alpha")
    run("prepare-chat-sft", "--input", "data/sft_format_lock_alpha/mypt_format_lock_v1.jsonl",
        "--output_dir", "data/sft_ready/phase3a1_alpha", "--val_split", "0.1")
    run("train", "--model_name", "phase3a1_alpha", "--dataset_dir", "data/sft_ready/phase3a1_alpha",
        "--init_from_model", "domain_v5_sft_ready",
        "--config_file", str(_original_config(Path("configs/sft1/tiny_phase3a1_alpha.json"), "phase3a1_alpha")),
        "--eval_prompts_file", str(prompts))
    assert (Path("checkpoints/phase3a1_alpha") / "model.safetensors").is_file()  # --model_name -> checkpoints/
    # the mandatory gate; a 30-step model may fail the suite (exit 1) but every command must run and report
    run("eval", "--model", "phase3a1_alpha", "--phase", "alpha", "-v", "--output", "alpha_report.json",
        "--no_progress", expect=(0, 1))
    report = json.loads(Path("alpha_report.json").read_text())
    assert sorted(n for n, b in report["buckets"].items() if b["gated"]) == ["echo_basic", "format_strict"]
    run("check-tie-weights", "--model", "phase3a1_alpha")
    run("debug-train-eval-parity", "--model", "phase3a1_alpha", "--dataset_dir", "data/sft_ready/phase3a1_alpha")
    out = run("generate", "--model", "phase3a1_alpha", "--prompt", GUIDE_PROMPT, "--temperature", "0",
              "--top_k", "0", "--top_p", "1.0", "--repetition_penalty", "1.0", "--max_new_tokens", "8")
    assert out.strip()

    # ---- Phase 3a-1β -------------------------------------------------------------------------------------
    run("generate-echo", "--gibberish", "exclude", "--anti_echo_ratio", "0.2", "--contrast_ratio", "0.2",
        "--max_examples", "400", "--output_dir", "data/sft_echo_beta")
    run("mix", "--inputs", "data/sft_echo_beta/mypt_echo_diverse.jsonl",
        "data/sft_format_lock_alpha/mypt_format_lock_v1.jsonl", "--weights", "0.85", "0.15",
        "--output", "data/sft_mixed/phase3a1_beta_mixed.jsonl", "--shuffle")
    run("prepare-chat-sft", "--input", "data/sft_mixed/phase3a1_beta_mixed.jsonl",
        "--output_dir", "data/sft_ready/phase3a1_beta", "--val_split", "0.1")
    out = run("inspect-sft-dataset", "--dataset_dir", "data/sft_ready/phase3a1_beta", "--show_samples", "2")
    assert "recommended max_steps" in out
    run("train", "--model_name", "phase3a1_beta", "--dataset_dir", "data/sft_ready/phase3a1_beta",
        "--init_from_model", "phase3a1_alpha",
        "--config_file", str(_original_config(Path("configs/sft1/tiny_phase3a1_beta.json"), "phase3a1_beta")),
        "--eval_prompts_file", str(prompts))
    run("eval", "--model", "phase3a1_beta", "--phase", "beta", "-v", "--output", "beta_report.json",
        "--no_progress", expect=(0, 1))
    beta = json.loads(Path("beta_report.json").read_text())
    assert sorted(n for n, b in beta["buckets"].items() if b["gated"]) == ["anti_echo", "echo_basic", "format_strict"]
    assert "--phase beta" in beta["gated_because"]
    run("check-tie-weights", "--model", "phase3a1_beta")
    # the guide's names, never a path: every model the workflow made is in the checkpoints folder
    assert sorted(p.name for p in Path("checkpoints").iterdir()) == ["domain_v5_sft_ready", "phase3a1_alpha",
                                                                      "phase3a1_beta"]
