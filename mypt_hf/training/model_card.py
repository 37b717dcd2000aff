"""The model card (README.md of a saved model): data sources and mix, hyperparameters, gate results, plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

_HYPERPARAMETERS = (
    "learning_rate", "lr_scheduler_type", "lr_scheduler_kwargs", "warmup_steps", "max_steps", "num_train_epochs",
    "coverage", "per_device_train_batch_size", "gradient_accumulation_steps", "weight_decay", "adam_beta1",
    "adam_beta2", "max_grad_norm", "bf16", "fp16", "mixed_precision", "freeze_layers", "freeze_embeddings",
    "init_from_model", "seed",
)


def _final(log_history: Sequence[Mapping[str, Any]], key: str) -> Optional[float]:
    for entry in reversed(log_history or []):
        if key in entry and isinstance(entry[key], (int, float)):
            return float(entry[key])
    return None


def _fmt(value: Any) -> str:
    value = getattr(value, "value", value)  # enums (SchedulerType) print as their value
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    return text.replace("|", "\\|")


def gate_table(report: Mapping[str, Any]) -> str:
    """Markdown table of every bucket: pass rate, threshold, gated, verdict."""
    lines = ["| bucket | passed | rate | threshold | gated | verdict |", "|---|---|---|---|---|---|"]
    for name, bucket in (report.get("buckets") or {}).items():
        total = bucket.get("total", 0)
        passed_n = round((bucket.get("rate") or 0.0) * total) if total else 0
        threshold = bucket.get("threshold")
        lines.append(f"| {name} | {passed_n}/{total} | {(bucket.get('rate') or 0.0):.0%} | "
                     f"{'' if threshold is None else f'{float(threshold):.0%}'} | "
                     f"{'yes' if bucket.get('gated') else 'no'} | {bucket.get('verdict', '')} |")
    return "\n".join(lines)


def _usage(output_dir: Path, chat: bool) -> list:
    """The card's Usage section: a chat turn through the chat template, or a plain completion for a base model."""
    lines = ["## Usage", "", "```python",
             "import mypt_hf  # registers the MyPT architecture",
             "from transformers import AutoModelForCausalLM, AutoTokenizer",
             f"model = AutoModelForCausalLM.from_pretrained('{output_dir}')",
             f"tokenizer = AutoTokenizer.from_pretrained('{output_dir}')"]
    if not chat:  # copy pretraining: a phrase, a separator, and the model continues with the copy
        return lines + ["ids = tokenizer(' quarmel dotrin ->', return_tensors='pt')  # a phrase, then ' ->'",
                        "out = model.generate(**ids, max_new_tokens=6, do_sample=False)  # continues ' quarmel dotrin'",
                        "```", "", "A base model: it continues text and has not learned the chat format.", ""]
    return lines + ["ids = tokenizer.apply_chat_template([{'role': 'system', 'content': 'You are MyPT.'},",
                    "                                     {'role': 'user', 'content': 'Say Hello.'}],",
                    "                                    add_generation_prompt=True, return_tensors='pt', return_dict=True)",
                    "out = model.generate(**ids, max_new_tokens=16, do_sample=False)",
                    "```", "", "Or: `mypt-hf generate --model <this dir> --user \"Say Hello.\" --temperature 0`.", ""]


def write_model_card(output_dir: str | Path, *, model_name: str, args: Any = None,
                     dataset_metadata: Optional[Mapping[str, Any]] = None,
                     data_sources: Optional[Sequence[Mapping[str, Any]]] = None,
                     gate_report: Optional[Mapping[str, Any]] = None,
                     log_history: Optional[Sequence[Mapping[str, Any]]] = None,
                     phase: Optional[str] = None, description: Optional[str] = None,
                     model_config: Any = None, wall_time_s: Optional[float] = None, chat: bool = True,
                     lora: Any = None, lora_trainable: Optional[Sequence[int]] = None) -> Path:
    """Write ``README.md`` in ``output_dir`` (Hub model-card layout with YAML front matter).

    ``data_sources``: rows like {"name", "rows", "share", "settings"} describing the mix;
    ``gate_report``: ``run_eval_suite``'s result; plots ``loss.png`` / ``gates.png`` are linked when present.
    ``chat``: the Usage snippet prompts through the chat template (False: plain text completion, for a base
    model that was never taught the chat format, such as the tiny base).
    ``lora``: the run's LoraArguments; with ``use_peft`` the card says the LoRA settings, the trainable parameter
    count (``lora_trainable``: trainable, total) and how to load ``adapter/``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    init = getattr(args, "init_from_model", None) if args is not None else None
    lines = ["---", "library_name: transformers", "pipeline_tag: text-generation",
             "tags:", "- mypt", "- sft", "- trl", "- phase3a"]
    use_peft = bool(getattr(lora, "use_peft", False))
    if use_peft:
        lines += ["- peft", "- lora"]
    if init:
        lines.append(f"base_model: {Path(str(init)).name}")
    lines += ["---", "", f"# {model_name}", ""]
    lines.append(description or ("A MyPT model fine-tuned with the Phase 3a SFT pipeline (mypt_hf: TRL SFTTrainer, "
                                 "MyPT chat template, episode packing)."))
    lines.append("")
    if phase:
        lines += [f"**Phase:** {phase}", ""]
    lines += _usage(output_dir, chat)
    if gate_report:
        from ..evaluation.red_lines import gate_verdict

        overall = gate_verdict(gate_report)
        lines += ["## Evaluation gate", "",
                  f"Overall: **{overall}** (gated buckets must reach their "
                  "thresholds, and the tie-weights and train/eval parity checks must pass; every bucket is "
                  "reported).", "", gate_table(gate_report), ""]
        for name, check in (gate_report.get("checks") or {}).items():
            lines.append(f"- {name}: **{check.get('verdict')}** - {check.get('message')}")
        if gate_report.get("checks"):
            lines.append("")
        red_lines = gate_report.get("red_lines") or {}
        for check in red_lines.get("checks") or []:
            if check.get("verdict") == "RED":
                lines.append(f"- **RED LINE: {check['name']}** - {check.get('evidence')} (restart from the previous "
                             "phase)")
        if red_lines.get("checks"):
            clear = [c["name"] for c in red_lines["checks"] if c.get("verdict") != "RED"]
            lines += [f"Red lines not crossed (or not checkable): {', '.join(clear) or 'none'}.", ""]
    if (output_dir / "gates.png").exists() or gate_report:
        lines += ["![gate pass rates](gates.png)", ""]
    for name, result in ((gate_report or {}).get("held_out") or {}).items():
        breakdown = ", ".join(f"{k} {v['rate']:.0%}" for k, v in result.get("by_operator", {}).items())
        lines += [f"Held-out exact match on {name}: **{result['passed']}/{result['total']} = "
                  f"{result['exact_match']:.1%}**" + (f" ({breakdown})" if breakdown else ""), ""]
    lines += ["## Training", ""]
    if log_history:
        final = {key: _final(log_history, key) for key in
                 ("loss", "eval_loss", "mean_token_accuracy", "eval_mean_token_accuracy",
                  "supervised_tokens_per_second", "train_runtime")}
        rows = [f"| {key} | {_fmt(value)} |" for key, value in final.items() if value is not None]
        if rows:
            lines += ["| final metric | value |", "|---|---|", *rows, ""]
    if (output_dir / "loss.png").exists() or log_history:
        lines += ["![loss and masked-token accuracy](loss.png)", ""]
    if wall_time_s is not None:
        lines += [f"Wall time of the recipe (data, training, evaluation): {wall_time_s:.0f} s.", ""]
    if args is not None:
        lines += ["### Hyperparameters", "", "| name | value |", "|---|---|"]
        for key in _HYPERPARAMETERS:
            if hasattr(args, key):
                lines.append(f"| {key} | {_fmt(getattr(args, key))} |")
        lines.append("")
    if use_peft:
        from .lora import ADAPTER_DIR, card_section

        lines += card_section(lora, output_dir / ADAPTER_DIR, lora_trainable)
    if model_config is not None:
        keys = ("model_type", "dtype", "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "max_position_embeddings", "pos_encoding", "mlp_type", "norm_type", "tie_word_embeddings", "dropout")
        lines += ["### Model", "", "| name | value |", "|---|---|"]
        for key in keys:
            value = getattr(model_config, key, None)
            if key == "dtype":  # the dtype save_pretrained wrote (fp32 under bf16 autocast); unset before a save
                if value is None:
                    continue
                value = str(value).replace("torch.", "")
            if hasattr(model_config, key):
                lines.append(f"| {key} | {_fmt(value)} |")
        lines.append("")
    if data_sources:
        lines += ["## Data", "", "| source | rows | share | settings |", "|---|---|---|---|"]
        for source in data_sources:
            share = source.get("share")
            lines.append(f"| {_fmt(source.get('name', ''))} | {source.get('rows', '')} | "
                         f"{'' if share is None else f'{float(share):.0%}'} | {_fmt(source.get('settings', ''))} |")
        lines.append("")
    if dataset_metadata:
        keep = {k: v for k, v in dataset_metadata.items() if isinstance(v, (int, float, str, bool)) and len(str(v)) < 80}
        if keep:
            lines += ["### Prepared dataset", "", "| field | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in sorted(keep.items())]
            lines.append("")
    path = output_dir / "README.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
