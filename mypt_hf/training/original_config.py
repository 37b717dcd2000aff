"""The original MyPT train.py's config files, read into mypt_hf's training options.

The guide trains with ``python train.py --config_file configs/sft1/750M_phase3a1_alpha.json``; those JSON files
(``/work/shared/reference/original-configs``) mix the original's training keys with ``GPTConfig`` fields. The
original removes its training keys and requires everything else to be a ``GPTConfig`` field. This module does the
same against mypt_hf's fields: every key the original reads is either

* **mapped** to a ``MyPTSFTConfig`` / ``ModelArguments`` field (``max_iters`` -> ``max_steps``, ``use_amp`` +
  ``amp_dtype`` -> ``bf16``/``fp16``, ``eval_interval`` -> ``eval_steps`` with evaluation and saving every that many
  steps, as the original checkpoints at every eval, ...),
* **ignored on purpose**, with a one-line reason printed once per run (:data:`IGNORED`), when its value is the
  one the pipeline behaves as anyway, or
* **refused** with a named error when its value asks for something this pipeline does not do
  (``use_loss_mask: false``, ``curriculum``, ``eval_sets`` other than null, ...), rather than silently training
  differently from what the file says.

Keys that are neither the original's nor mypt_hf's stay for HfArgumentParser to refuse. ``comment*`` keys are
skipped, as the original's configs use them for notes.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..errors import MyPTInputError

#: original key -> mypt_hf key (value unchanged).
RENAMED: Dict[str, str] = {
    "max_iters": "max_steps", "warmup_iters": "warmup_steps", "grad_clip": "max_grad_norm",
    "grad_accum_steps": "gradient_accumulation_steps", "batch_size": "per_device_train_batch_size",
    "epoch_seed": "seed", "n_embd": "hidden_size", "n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
    "tie_weights": "tie_word_embeddings", "use_checkpoint": "activation_checkpointing", "name": "run_name",
}

#: original keys kept under the same name (a MyPTSFTConfig or ModelArguments field of the same meaning).
SAME_NAME = ("learning_rate", "weight_decay", "freeze_layers", "freeze_embeddings", "dropout", "block_size",
             "pos_encoding", "mlp_type", "norm_type")

#: original keys ignored on purpose -> why (printed once when a config holds them).
IGNORED: Dict[str, str] = {
    "description": "free text; the model card names the run",
    "eval_iters": "evaluation reads the whole validation split (the original sampled eval_iters batches of it)",
    "save_every": "unused by the original train.py as well",
    "eval_seed": "evaluation here is deterministic (no sampling, the whole split), so there is nothing to reseed",
    "log_file": "the training log is trainer_state.json and the model card (report_to adds trackers)",
    "terminal_log_file": "stdout is not teed; redirect it (`| tee FILE`)",
    "gold_selection": "no separate <name>_gold copy; the saved model is the last step, as the original's main folder",
    "token_accuracy_saturation": "the saturation detector only logged in the original; masked token accuracy is logged",
    "vocab_size": "the vocabulary comes from the tokenizer (fresh model) or the base model (init_from_model)",
    "device": "accelerate places the model",
    "save_dtype": "models are saved in the dtype they trained in, as safetensors",
    "episode_min_tokens": "the original's loader skipped short episodes; prepare-chat-sft refuses empty ones",
    "epoch_drop_last": "unused by the original train.py as well",
    "batch_sampling_mode": "'epoch' is what the Trainer does (a new seeded shuffle every epoch)",
    "epoch_shuffle": "the Trainer shuffles every epoch (true, as the original's configs set it)",
    "pad_token_id": "the tokenizer's pad id is used (the original's null also meant <myPT_eot>)",
    "use_loss_mask": "prepared datasets always carry the assistant-only loss mask",
    "segment_position_reset": "packed episodes always restart their positions (and attend only within themselves)",
    "bias": "MyPT has no attention biases (bias false, as in every original config)",
    "rope_scale": "1.0 (no position interpolation) is what MyPT does",
    "eval_sets": "null: no extra evaluation sets",
    "neftune_alpha": "0: no NEFTune noise",
    "rope_theta": "10000, MyPT's RoPE base (a base model keeps its own)",
}

#: for an ignored key, the values it may have (anything else is refused: the pipeline would train differently).
_ACCEPTED: Dict[str, Callable[[Any], bool]] = {
    "batch_sampling_mode": lambda v: v == "epoch",
    "epoch_shuffle": lambda v: v is True,
    "use_loss_mask": lambda v: v is True,
    "segment_position_reset": lambda v: v is True,
    "bias": lambda v: v is False,
    "rope_scale": lambda v: v in (1, 1.0, None),
    "eval_sets": lambda v: v in (None, {}),
    "neftune_alpha": lambda v: v in (0, 0.0, None),
    "pad_token_id": lambda v: v is None or v == 50275,
    "rope_theta": lambda v: v in (10000, 10000.0),
}
_WHAT_INSTEAD: Dict[str, str] = {
    "batch_sampling_mode": "only 'epoch' sampling is supported",
    "epoch_shuffle": "the Trainer always shuffles; unshuffled training is not supported",
    "use_loss_mask": "the loss is always masked to the assistant's replies; train on every token is not supported",
    "segment_position_reset": "packed episodes always restart positions; pack with --enable_packing false instead",
    "bias": "MyPT has no attention biases",
    "rope_scale": "RoPE position interpolation is not supported (use rope_scale 1.0)",
    "eval_sets": "extra evaluation sets are not supported; evaluate them afterwards with `mypt-hf eval`",
    "neftune_alpha": "set neftune_noise_alpha (TRL's name) instead",
    "pad_token_id": "the pad id is the tokenizer's <myPT_eot> (50275); another pad id is not supported",
    "rope_theta": "only MyPT's RoPE base 10000 is supported",
}

#: original keys with no counterpart at all: refused with why.
REFUSED: Dict[str, str] = {
    "curriculum": "pretraining data curricula are not part of SFT; prepare the mix you want with `mypt-hf mix`",
}


def _amp(values: Dict[str, Any], data: Mapping[str, Any], path: str) -> None:
    use_amp = data.get("use_amp", True)
    dtype = data.get("amp_dtype", "bf16")
    if not isinstance(use_amp, bool):
        raise MyPTInputError(f"must be true or false, got {use_amp!r}", path=path, field="use_amp")
    if dtype not in ("bf16", "bfloat16", "fp16", "float16"):
        raise MyPTInputError(f"must be 'bf16' or 'fp16', got {dtype!r}", path=path, field="amp_dtype")
    if not use_amp:
        values.update(bf16=False, fp16=False)
    elif dtype in ("fp16", "float16"):
        values.update(fp16=True, bf16=False)
    # use_amp with bf16: bf16 stays None = bf16 where the GPU supports it, fp32 on CPU (the original: no AMP on CPU)


def translate_original_config(data: Mapping[str, Any], path: str) -> Tuple[Dict[str, Any], List[str]]:
    """``(values, notes)``: ``data`` (a parsed config file) with the original's keys mapped to mypt_hf's, and one
    note per key ignored on purpose. Keys already in mypt_hf's names pass through unchanged.

    Raises MyPTInputError naming ``path`` and the key for a value this pipeline cannot honour.
    """
    values: Dict[str, Any] = {}
    notes: List[str] = []
    for key, value in data.items():
        if key.startswith("comment"):
            continue
        if key in REFUSED:
            raise MyPTInputError(f"not supported: {REFUSED[key]}", path=path, field=key)
        if key in IGNORED:
            accept = _ACCEPTED.get(key)
            if accept is not None and not accept(value):
                raise MyPTInputError(f"{value!r} is not supported: {_WHAT_INSTEAD[key]}", path=path, field=key)
            notes.append(f"{key}: ignored - {IGNORED[key]}")
            continue
        if key in ("use_amp", "amp_dtype"):
            continue  # both read together below
        if key == "eval_interval":
            # the original evaluates and checkpoints every eval_interval steps
            values.update(eval_steps=value, eval_strategy="steps")
            values.setdefault("save_steps", value)
            values.setdefault("save_strategy", "steps")
            continue
        values[RENAMED.get(key, key)] = value
    if "use_amp" in data or "amp_dtype" in data:
        _amp(values, data, path)
    return values, notes


def original_keys() -> List[str]:
    """Every key the original train.py reads from a config file, sorted."""
    keys = set(RENAMED) | set(SAME_NAME) | set(IGNORED) | set(REFUSED) | {"use_amp", "amp_dtype", "eval_interval"}
    return sorted(keys)


def format_notes(notes: List[str], path: Optional[str] = None) -> str:
    """The ignored keys, one line each, for the start of a run."""
    head = f"{path}: " if path else ""
    return "\n".join(f"{head}{note}" for note in notes)


__all__ = ["RENAMED", "SAME_NAME", "IGNORED", "REFUSED", "translate_original_config", "original_keys",
           "format_notes"]
