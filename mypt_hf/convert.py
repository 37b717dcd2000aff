"""Native MyPT checkpoints -> HF model directories, and HF MyPT -> plain Llama where that is exact.

Native inputs (what the original project writes):
- a checkpoint directory with ``config.json`` + ``model.pt`` (a wrapper dict ``{"state_dict",
  "checkpoint_dtype", "model_dtype"}`` or a raw state dict) + ``tokenizer.json``;
- a legacy single file (``latest.pt`` / ``final.pt``) holding ``config`` and ``model_state_dict``
  (and ``tokenizer``), or a directory that holds only such a file.

Pickles are opened with ``torch.load(weights_only=True)``: a file that needs arbitrary code to load is
refused. Every floating tensor is widened to fp32 (the original loader copies bf16/fp16 values into an
fp32 model too). For tied models the stored ``lm_head.weight`` wins, as in the original's
``load_state_dict``. Tokenizer files in the legacy 15-tag layout get their embedding / lm_head rows and
``lm_head.bias`` entries moved to the canonical tag ids.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch

from .errors import MyPTInputError
from .io_utils import atomic_output_dir
from .tokens import GPT2_TAG_IDS, LEGACY_15_TAG_IDS, NUM_TAGS, FIRST_TAG_ID, STOP_TAG_STRINGS, EOT

PathLike = Union[str, os.PathLike]
LEGACY_FILE_NAMES = ("latest.pt", "final.pt")  # the original's resolution order
#: Spellings the legacy tokenizer files used for today's tag strings.
_LEGACY_ALIASES = {"<myPT_tool_call>": "<myPT_toolcall>", "</myPT_tool_call>": "</myPT_toolcall>"}
#: The original GPTConfig defaults for fields an old config.json may lack.
_ORIGINAL_DEFAULTS = {"block_size": 256, "vocab_size": 50304, "n_embd": 384, "n_head": 6, "n_layer": 6,
                      "dropout": 0.2, "bias": False, "tie_weights": False, "pos_encoding": "learned",
                      "mlp_type": "gelu", "norm_type": "layernorm", "rope_theta": 10000.0, "rope_scale": 1.0}


@dataclass
class NativeCheckpoint:
    """What a native checkpoint holds, read without running any of its code."""

    config: Dict[str, Any]
    state_dict: Dict[str, torch.Tensor]
    tokenizer_state: Optional[Dict[str, Any]]
    source: str
    layout: str  # "directory" or "legacy_file"
    checkpoint_dtype: Optional[str] = None
    notes: List[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- reading


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format since PyTorch 1.6
_PICKLE_PROTOCOL = b"\x80"  # the legacy torch.save format starts with a pickle (protocol >= 2)
_NOT_A_CHECKPOINT = ("not a PyTorch checkpoint (expected a file torch.save wrote: model.pt, latest.pt or final.pt "
                     "from the original project)")


def _safe_torch_load(path: Path) -> Any:
    if path.is_dir():
        raise MyPTInputError("expected a checkpoint file, got a directory", path=str(path))
    with path.open("rb") as handle:
        magic = handle.read(4)
    if not magic:
        raise MyPTInputError(f"empty file: {_NOT_A_CHECKPOINT}", path=str(path))
    if not (magic.startswith(_ZIP_MAGIC) or magic.startswith(_PICKLE_PROTOCOL)):
        raise MyPTInputError(_NOT_A_CHECKPOINT, path=str(path))
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):  # a damaged stream, not a class it would have to run
            raise MyPTInputError(f"damaged checkpoint: {_NOT_A_CHECKPOINT}", path=str(path)) from None
        reason = next((line.strip() for line in str(error).splitlines() if "Unsupported global" in line), "")
        raise MyPTInputError(
            "refusing to load: this pickle needs arbitrary code to unpickle (torch.load weights_only=True "
            f"rejected it: {reason[:200]}). Only tensors, dicts, lists and plain values "
            "are accepted; re-save the checkpoint from the original project as a state dict", path=str(path)) from None
    except Exception as error:  # noqa: BLE001 - torch reports a truncated/damaged file as many error types
        summary = (str(error).strip().splitlines() or [""])[0][:160]
        raise MyPTInputError(f"damaged or truncated checkpoint ({type(error).__name__}: {summary})",
                             path=str(path)) from None


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise MyPTInputError("not a JSON text file (not UTF-8)", path=str(path)) from None
    except json.JSONDecodeError as error:
        raise MyPTInputError(f"invalid JSON ({error.msg})", path=str(path), line=error.lineno) from None
    if not isinstance(data, dict):
        raise MyPTInputError("expected a JSON object", path=str(path))
    return data


def _as_state_dict(obj: Any, path: Path) -> Tuple[Dict[str, torch.Tensor], Optional[str]]:
    """Accept the wrapper dict written by save_checkpoint_bundle or a raw state dict."""
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        state, dtype = obj["state_dict"], obj.get("checkpoint_dtype")
    elif isinstance(obj, dict):
        state, dtype = obj, None
    else:
        raise MyPTInputError(f"expected a state dict or a wrapper dict, got {type(obj).__name__}", path=str(path))
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise MyPTInputError(f"not a state dict: non-tensor entries {bad[:5]}", path=str(path))
    return dict(state), dtype


def _load_legacy_file(path: Path) -> NativeCheckpoint:
    obj = _safe_torch_load(path)
    if not (isinstance(obj, dict) and "config" in obj and "model_state_dict" in obj):
        raise MyPTInputError("not a legacy MyPT checkpoint (needs the keys 'config' and 'model_state_dict')",
                             path=str(path))
    state, _ = _as_state_dict(obj["model_state_dict"], path)
    tok = obj.get("tokenizer") if isinstance(obj.get("tokenizer"), dict) else None
    if not isinstance(obj["config"], dict):
        raise MyPTInputError(f"'config' must be a dict of GPTConfig fields, got {type(obj['config']).__name__}",
                             path=str(path), field="config")
    return NativeCheckpoint(config=dict(obj["config"]), state_dict=state, tokenizer_state=tok,
                            source=str(path), layout="legacy_file")


def load_native_checkpoint(path: PathLike) -> NativeCheckpoint:
    """Read a native MyPT checkpoint (directory, ``model.pt`` inside one, or legacy single file)."""
    path = Path(path)
    if not path.exists():
        raise MyPTInputError("checkpoint not found", path=str(path))
    if path.is_file():
        if (path.parent / "config.json").is_file() and path.name not in LEGACY_FILE_NAMES:
            path = path.parent  # model.pt inside a checkpoint directory
        else:
            return _load_legacy_file(path)
    if (path / "config.json").is_file() and (path / "model.pt").is_file():
        config = _read_json(path / "config.json")
        state, dtype = _as_state_dict(_safe_torch_load(path / "model.pt"), path / "model.pt")
        tok = _read_json(path / "tokenizer.json") if (path / "tokenizer.json").is_file() else None
        return NativeCheckpoint(config=config, state_dict=state, tokenizer_state=tok, source=str(path),
                                layout="directory", checkpoint_dtype=dtype)
    for name in LEGACY_FILE_NAMES:
        if (path / name).is_file():
            return _load_legacy_file(path / name)
    raise MyPTInputError("no MyPT checkpoint here: expected config.json + model.pt, or latest.pt / final.pt",
                         path=str(path))


# ------------------------------------------------------------------------------------------- mapping


#: GPTConfig fields that must be whole numbers >= 1, and the number fields with their valid range.
_POSITIVE_INT_FIELDS = ("vocab_size", "n_embd", "n_head", "n_layer", "block_size")


def check_native_config(cfg: Dict[str, Any], where: Optional[str] = None) -> None:
    """Refuse a GPTConfig dict whose sizes are not whole numbers >= 1, whose n_head does not divide n_embd,
    or whose dropout / rope values are not numbers in range (MyPTInputError naming ``where`` and the field)."""
    for name in _POSITIVE_INT_FIELDS:
        value = cfg[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MyPTInputError(f"must be a whole number >= 1, got {value!r}", path=where, field=name)
    if cfg["n_embd"] % cfg["n_head"]:
        raise MyPTInputError(f"n_embd {cfg['n_embd']} is not a multiple of n_head {cfg['n_head']}", path=where,
                             field="n_head")
    if cfg["pos_encoding"] == "rope" and (cfg["n_embd"] // cfg["n_head"]) % 2:
        raise MyPTInputError(f"RoPE needs an even head size; n_embd {cfg['n_embd']} / n_head {cfg['n_head']} is odd",
                             path=where, field="n_head")
    for name, low, high in (("dropout", 0.0, 1.0), ("rope_theta", 0.0, None), ("rope_scale", 0.0, None)):
        value = cfg[name]
        bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not value == value
        if bad or (name == "dropout" and not low <= value < high) or (name != "dropout" and value <= low):
            valid = "in [0, 1)" if name == "dropout" else "> 0"
            raise MyPTInputError(f"must be a number {valid}, got {value!r}", path=where, field=name)


def native_config_to_hf(native: Dict[str, Any], notes: Optional[List[str]] = None, where: Optional[str] = None):
    """Build a MyPTConfig from the original ``GPTConfig`` dict, reproducing what the original built.

    The original treats any string other than rope/swiglu/rmsnorm as the GPT-2 variant; the converted
    config names that variant explicitly (and says so in ``notes``). ``where`` (the config's file) names the
    file in the MyPTInputError a bad value raises.
    """
    from .configuration_mypt import MyPTConfig

    notes = notes if notes is not None else []
    cfg = {**_ORIGINAL_DEFAULTS, **{k: v for k, v in native.items() if v is not None}}
    check_native_config(cfg, where)
    resolved = {}
    for key, special, fallback in (("pos_encoding", "rope", "learned"), ("mlp_type", "swiglu", "gelu"),
                                   ("norm_type", "rmsnorm", "layernorm")):
        value = cfg[key]
        resolved[key] = special if value == special else fallback
        if value not in (special, fallback):
            notes.append(f"config {key}={value!r}: the original ran this as {fallback!r}; converted as such")
    return MyPTConfig(
        vocab_size=int(cfg["vocab_size"]), hidden_size=int(cfg["n_embd"]), num_attention_heads=int(cfg["n_head"]),
        num_hidden_layers=int(cfg["n_layer"]), max_position_embeddings=int(cfg["block_size"]),
        bias=bool(cfg["bias"]), lm_head_bias=True, tie_word_embeddings=bool(cfg["tie_weights"]),
        rope_theta=float(cfg["rope_theta"]), rope_scale=float(cfg["rope_scale"]), dropout=float(cfg["dropout"]),
        **resolved)


def native_state_dict_to_hf(state: Dict[str, torch.Tensor], config) -> Dict[str, torch.Tensor]:
    """Rename the original's keys to MyPTForCausalLM's, split fused ``qkv`` (no permutation: the
    original's RoPE is rotate-half), widen every tensor to fp32. Unknown or missing keys are errors."""
    if any(".sa.heads." in k for k in state):
        raise MyPTInputError("per-head attention keys (blocks.N.sa.heads.*): a pre-2025-12-28 MyPT checkpoint "
                             "that the original's current code cannot load either; not supported")
    state = {k: v.detach().to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}
    remaining = dict(state)
    out: Dict[str, torch.Tensor] = {}

    def take(key: str) -> torch.Tensor:
        if key not in remaining:
            raise MyPTInputError(f"state dict lacks {key!r} needed by its config", field=key)
        return remaining.pop(key)

    c = config.hidden_size
    embedding = take("token_embedding_table.weight")
    lm_head_weight = remaining.pop("lm_head.weight", None)
    if lm_head_weight is None:
        if not config.tie_word_embeddings:
            raise MyPTInputError("state dict lacks 'lm_head.weight' and the model is not tied", field="lm_head.weight")
        lm_head_weight = embedding
    if config.tie_word_embeddings:
        embedding = lm_head_weight  # the original's load_state_dict writes lm_head.weight last into the shared tensor
    out["model.embed_tokens.weight"] = embedding
    out["lm_head.weight"] = lm_head_weight
    if config.lm_head_bias:
        out["lm_head.bias"] = take("lm_head.bias")
    if config.pos_encoding == "learned":
        out["model.embed_positions.weight"] = take("position_embedding_table.weight")
    for i in range(config.num_hidden_layers):
        src, dst = f"blocks.{i}.", f"model.layers.{i}."
        qkv = take(src + "sa.qkv.weight")
        if qkv.shape != (3 * c, c):
            raise MyPTInputError(f"{src}sa.qkv.weight has shape {tuple(qkv.shape)}, expected {(3 * c, c)}")
        for name, part in zip(("q_proj", "k_proj", "v_proj"), qkv.split(c, dim=0)):
            out[f"{dst}self_attn.{name}.weight"] = part.clone()
        if config.bias:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), take(src + "sa.qkv.bias").split(c, dim=0)):
                out[f"{dst}self_attn.{name}.bias"] = part.clone()
            out[f"{dst}self_attn.o_proj.bias"] = take(src + "sa.proj.bias")
        out[f"{dst}self_attn.o_proj.weight"] = take(src + "sa.proj.weight")
        if config.mlp_type == "swiglu":
            for a, b in (("w_gate", "gate_proj"), ("w_up", "up_proj"), ("w_down", "down_proj")):
                out[f"{dst}mlp.{b}.weight"] = take(f"{src}fwd.{a}.weight")
        else:
            for a, b in (("net.0", "up_proj"), ("net.2", "down_proj")):
                out[f"{dst}mlp.{b}.weight"] = take(f"{src}fwd.{a}.weight")
                out[f"{dst}mlp.{b}.bias"] = take(f"{src}fwd.{a}.bias")
        for a, b in (("ln1", "input_layernorm"), ("ln2", "post_attention_layernorm")):
            out[f"{dst}{b}.weight"] = take(f"{src}{a}.weight")
            if config.norm_type == "layernorm":
                out[f"{dst}{b}.bias"] = take(f"{src}{a}.bias")
    out["model.norm.weight"] = take("ln_f.weight")
    if config.norm_type == "layernorm":
        out["model.norm.bias"] = take("ln_f.bias")
    if remaining:
        raise MyPTInputError(f"state dict has keys its config does not explain: {sorted(remaining)[:8]}")
    return out


# ------------------------------------------------------------------------------------------- tag layout


def _tag_map(tokenizer_state: Optional[Dict[str, Any]]) -> Optional[Dict[str, int]]:
    if not tokenizer_state or tokenizer_state.get("token_kind") != "gpt2":
        return None
    enc = tokenizer_state.get("special_token_encoder") or {}
    return {_LEGACY_ALIASES.get(k, k): int(v) for k, v in enc.items()}


def detect_tag_layout(tokenizer_state: Optional[Dict[str, Any]]) -> str:
    """``"canonical"`` (19 tags at 50257-50275), ``"legacy15"`` (the pre-2026-02-15 layout), or ``"none"``
    (char-kind or no tokenizer state). Any other gpt2-kind layout is refused."""
    tags = _tag_map(tokenizer_state)
    if tags is None:
        return "none"
    if tags == GPT2_TAG_IDS or not tags:
        return "canonical"
    if tags == LEGACY_15_TAG_IDS:
        return "legacy15"
    raise MyPTInputError(f"tokenizer.json has an unknown special-token layout: {tags}", field="special_token_encoder")


def legacy15_row_moves() -> Dict[int, int]:
    """canonical id -> legacy id for all 19 tag rows, as a permutation of rows 50257-50275.

    The 15 legacy tags move to their canonical ids; the four tags that did not exist then
    (think/cite) receive the four rows the legacy model never assigned (50272-50275), in order.
    """
    moves = {GPT2_TAG_IDS[s]: legacy for s, legacy in LEGACY_15_TAG_IDS.items()}
    tag_rows = range(FIRST_TAG_ID, FIRST_TAG_ID + NUM_TAGS)
    free_targets = [i for i in tag_rows if i not in moves]
    free_sources = [i for i in tag_rows if i not in set(moves.values())]
    moves.update(zip(free_targets, free_sources))
    return moves


def move_legacy15_rows(hf_state: Dict[str, torch.Tensor]) -> None:
    """Apply ``legacy15_row_moves`` to the embedding, lm_head weight and lm_head bias (in place)."""
    moves = legacy15_row_moves()
    targets = torch.tensor(sorted(moves))
    sources = torch.tensor([moves[t] for t in sorted(moves)])
    moved: Dict[int, torch.Tensor] = {}
    for key in ("model.embed_tokens.weight", "lm_head.weight", "lm_head.bias"):
        tensor = hf_state.get(key)
        if tensor is None:
            continue
        if tensor.shape[0] < FIRST_TAG_ID + NUM_TAGS:
            raise MyPTInputError(f"{key} has {tensor.shape[0]} rows; the 15-tag layout needs at least 50276")
        if id(tensor) in moved:  # tied: embedding and lm_head are one tensor
            hf_state[key] = moved[id(tensor)]
            continue
        new = tensor.clone()
        new[targets] = tensor[sources]
        moved[id(tensor)] = new
        hf_state[key] = new


# ------------------------------------------------------------------------------------------- convert


def build_hf_model(checkpoint: NativeCheckpoint):
    """The MyPTForCausalLM (fp32, eval mode) a native checkpoint describes, legacy tag rows moved."""
    from .modeling_mypt import MyPTForCausalLM

    where = config_location(checkpoint)
    config = native_config_to_hf(checkpoint.config, checkpoint.notes, where=where)
    check_config_matches_weights(checkpoint, config)
    if "lm_head.bias" not in checkpoint.state_dict:
        config.lm_head_bias = False
        checkpoint.notes.append("state dict has no lm_head.bias; converted without one")
    try:
        hf_state = native_state_dict_to_hf(checkpoint.state_dict, config)
    except MyPTInputError as error:
        if error.path is not None:
            raise
        raise MyPTInputError(f"weights do not match the config ({_reason(error)})", path=weights_location(checkpoint),
                             field=error.field) from None
    layout = detect_tag_layout(checkpoint.tokenizer_state)
    if layout == "legacy15":
        move_legacy15_rows(hf_state)
        checkpoint.notes.append("legacy 15-tag layout: embedding/lm_head rows and lm_head.bias entries moved to "
                                "the canonical ids 50257-50275")
    if layout != "none":
        config.eos_token_id = [GPT2_TAG_IDS[s] for s in STOP_TAG_STRINGS]
        config.pad_token_id = GPT2_TAG_IDS[EOT]
    with torch.device("cpu"):
        model = MyPTForCausalLM(config).to(torch.float32)
    try:
        model.load_state_dict(hf_state, strict=True)
    except RuntimeError as error:  # a tensor whose shape the config does not give
        detail = next((line.strip() for line in str(error).splitlines()[1:] if line.strip()), str(error))[:300]
        raise MyPTInputError(f"weights do not match the config: {detail}", path=where) from None
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.bos_token_id = None
    return model.eval()


def config_location(checkpoint: NativeCheckpoint) -> str:
    """The file that holds a native checkpoint's config (``config.json``, or the legacy single file)."""
    source = Path(checkpoint.source)
    return str(source / "config.json") if checkpoint.layout == "directory" else str(source)


def weights_location(checkpoint: NativeCheckpoint) -> str:
    """The file that holds a native checkpoint's weights (``model.pt``, or the legacy single file)."""
    source = Path(checkpoint.source)
    return str(source / "model.pt") if checkpoint.layout == "directory" else str(source)


def _reason(error: MyPTInputError) -> str:
    """The message of an error raised without a path or line (its ``field 'x': `` prefix removed)."""
    text = str(error)
    prefix = f"field '{error.field}': " if error.field else ""
    return text[len(prefix):] if text.startswith(prefix) else text


def check_config_matches_weights(checkpoint: NativeCheckpoint, config) -> None:
    """Refuse a config whose vocab_size / n_embd / block_size disagree with the embedding tables' shapes
    (MyPTInputError naming the config's file and the field, with the size the weights have)."""
    where = config_location(checkpoint)
    embedding = checkpoint.state_dict.get("token_embedding_table.weight")
    if embedding is not None and embedding.dim() == 2:
        rows, width = embedding.shape
        if rows != config.vocab_size:
            raise MyPTInputError(f"is {config.vocab_size} but the weights have {rows} embedding rows", path=where,
                                 field="vocab_size")
        if width != config.hidden_size:
            raise MyPTInputError(f"is {config.hidden_size} but the weights are {width} wide", path=where,
                                 field="n_embd")
    layers = {int(key.split(".")[1]) for key in checkpoint.state_dict
              if key.startswith("blocks.") and key.split(".")[1].isdigit()}
    if layers and max(layers) + 1 != config.num_hidden_layers:
        raise MyPTInputError(f"is {config.num_hidden_layers} but the weights hold {max(layers) + 1} blocks", path=where,
                             field="n_layer")
    positions = checkpoint.state_dict.get("position_embedding_table.weight")
    if config.pos_encoding == "learned" and positions is not None and positions.shape[0] != config.max_position_embeddings:
        raise MyPTInputError(f"is {config.max_position_embeddings} but the weights hold {positions.shape[0]} positions",
                             path=where, field="block_size")


def _resolve_tokenizer(checkpoint: NativeCheckpoint, tokenizer: Any, skip_tokenizer: bool):
    """A MyPT tokenizer for the output dir, or None (with a note saying why)."""
    if skip_tokenizer:
        checkpoint.notes.append("tokenizer skipped on request")
        return None
    kind = (checkpoint.tokenizer_state or {}).get("token_kind")
    if tokenizer is None and kind != "gpt2":
        checkpoint.notes.append(f"tokenizer kind {kind!r} (toy char-level or absent) has no HF equivalent; "
                                "no tokenizer written (pass --tokenizer to attach one)")
        return None
    from .tokenization_mypt import load_tokenizer

    if tokenizer is None or isinstance(tokenizer, (str, os.PathLike)):
        spec = tokenizer if tokenizer is not None else "openai-community/gpt2"
        try:
            tokenizer = load_tokenizer(spec)
        except MyPTInputError:
            raise
        except Exception as error:  # hub id without network, etc.
            raise MyPTInputError(
                f"cannot build the GPT-2 tokenizer from {str(spec)!r} ({type(error).__name__}); pass --tokenizer "
                "PATH.tiktoken or a local tokenizer directory, or --skip_tokenizer") from None
    return tokenizer


def _check_tokenizer_fits(tokenizer, model) -> None:
    if len(tokenizer) > model.config.vocab_size:
        raise MyPTInputError(f"tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size} rows")
    if model.config.eos_token_id is not None:
        for tag in STOP_TAG_STRINGS:
            if tokenizer.convert_tokens_to_ids(tag) != GPT2_TAG_IDS[tag]:
                raise MyPTInputError(f"tokenizer puts {tag} at {tokenizer.convert_tokens_to_ids(tag)}, "
                                     f"the checkpoint at {GPT2_TAG_IDS[tag]}")


def convert_checkpoint(input_path: PathLike, output_dir: PathLike, tokenizer: Any = None, *,
                       skip_tokenizer: bool = False, overwrite: bool = False) -> Path:
    """Convert a native MyPT checkpoint into an HF model directory (written atomically).

    ``tokenizer``: a tokenizer, or a spec for ``mypt_hf.tokenization_mypt.load_tokenizer`` (a *.tiktoken
    file, a tokenizer dir, a hub id); needed for gpt2-kind checkpoints unless ``skip_tokenizer``.
    Char-kind toy tokenizers are skipped with a note. Returns the output directory.
    """
    from .modeling_mypt import set_mypt_generation_config

    checkpoint = load_native_checkpoint(input_path)
    model = build_hf_model(checkpoint)
    tok = _resolve_tokenizer(checkpoint, tokenizer, skip_tokenizer)
    if tok is not None:
        _check_tokenizer_fits(tok, model)
        set_mypt_generation_config(model, tok)
    info = {"source": checkpoint.source, "source_layout": checkpoint.layout,
            "checkpoint_dtype": checkpoint.checkpoint_dtype, "original_config": checkpoint.config,
            "tag_layout": detect_tag_layout(checkpoint.tokenizer_state), "notes": checkpoint.notes,
            "tokenizer_written": tok is not None}
    with atomic_output_dir(output_dir, overwrite=overwrite) as tmp:
        model.save_pretrained(tmp)
        if tok is not None:
            tok.save_pretrained(tmp)
        (tmp / "mypt_conversion.json").write_text(json.dumps(info, indent=2, default=str) + "\n", encoding="utf-8")
    for note in checkpoint.notes:
        print(f"note: {note}")
    return Path(output_dir)


# ------------------------------------------------------------------------------------------- Llama export


def llama_export_blockers(model) -> List[str]:
    """Reasons a MyPT model is not exactly a ``LlamaForCausalLM`` (empty list = exportable)."""
    cfg = model.config
    reasons = []
    if cfg.pos_encoding != "rope":
        reasons.append(f"pos_encoding is {cfg.pos_encoding!r} (Llama has only RoPE)")
    if cfg.mlp_type != "swiglu":
        reasons.append(f"mlp_type is {cfg.mlp_type!r} (Llama has only SwiGLU)")
    if cfg.norm_type != "rmsnorm":
        reasons.append(f"norm_type is {cfg.norm_type!r} (Llama has only RMSNorm)")
    bias = getattr(model.lm_head, "bias", None)
    if bias is not None and bool(torch.any(bias != 0)):
        reasons.append("lm_head has a non-zero bias (the original always trains one); LlamaForCausalLM's lm_head has "
                       "no bias, so its logits would differ")
    return reasons


def load_llama_exportable(hf_dir: PathLike, *, source: Optional[PathLike] = None, flag: str = "--to_llama",
                          target: str = "LlamaForCausalLM"):
    """The MyPT model saved in ``hf_dir`` (fp32, eval mode), refused unless it is exactly a Llama.

    The one check every Llama-shaped export uses (``--to_llama``, GGUF): a MyPTInputError naming ``source`` (or
    ``hf_dir``) and every reason of :func:`llama_export_blockers`. ``flag`` and ``target`` only word the message.
    """
    from .model_files import load_causal_lm
    from .modeling_mypt import MyPTForCausalLM

    named = str(source) if source is not None else str(hf_dir)
    model = load_causal_lm(Path(hf_dir), field="input", dtype=torch.float32)
    if not isinstance(model, MyPTForCausalLM):
        raise MyPTInputError(f"{flag} exports MyPT models; this one is {type(model).__name__}", path=named,
                             field="input")
    reasons = llama_export_blockers(model)
    if reasons:
        raise MyPTInputError(f"cannot export to {target} exactly: " + "; ".join(reasons), path=named)
    return model.eval()


def export_llama(hf_dir: PathLike, output_dir: PathLike, *, overwrite: bool = False,
                 source: Optional[PathLike] = None) -> Path:
    """Write a plain ``LlamaForCausalLM`` directory with the same logits as the MyPT model in ``hf_dir``.

    Refuses (MyPTInputError naming every reason) when the architecture is not exactly Llama's. ``source``: the
    path errors name (the user's native checkpoint when ``hf_dir`` is a scratch conversion of it).
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    hf_dir = Path(hf_dir)
    model = load_llama_exportable(hf_dir, source=source)
    cfg = model.config
    rope = {"rope_type": "default", "rope_theta": float(cfg.rope_theta)}
    if cfg.rope_scale != 1.0:
        rope = {"rope_type": "linear", "factor": float(cfg.rope_scale), "rope_theta": float(cfg.rope_theta)}
    llama_cfg = LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_attention_heads, max_position_embeddings=cfg.max_position_embeddings,
        rms_norm_eps=float(cfg.norm_eps), tie_word_embeddings=bool(cfg.tie_word_embeddings), rope_parameters=rope,
        attention_bias=bool(cfg.bias), mlp_bias=False, attention_dropout=float(cfg.dropout), hidden_act="silu",
        # No pad id in the Llama config: LlamaModel would make it an nn.Embedding padding_idx, freezing the
        # trained <myPT_eot> row in fine-tuning. The pad id lives in generation_config.
        pad_token_id=None, bos_token_id=None, eos_token_id=cfg.eos_token_id)
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.bias"}
    with torch.device("cpu"):
        llama = LlamaForCausalLM(llama_cfg).to(torch.float32)
    llama.load_state_dict(state, strict=True)
    if llama_cfg.tie_word_embeddings:
        llama.tie_weights()
    llama.generation_config = model.generation_config
    with atomic_output_dir(output_dir, overwrite=overwrite) as tmp:
        llama.save_pretrained(tmp)
        if (hf_dir / "tokenizer.json").is_file() or (hf_dir / "tokenizer_config.json").is_file():
            AutoTokenizer.from_pretrained(str(hf_dir)).save_pretrained(tmp)
        if (hf_dir / "mypt_conversion.json").is_file():
            shutil.copy2(hf_dir / "mypt_conversion.json", tmp / "mypt_conversion.json")
    if cfg.dropout:
        print("note: residual dropout has no Llama equivalent (inference is unaffected); attention_dropout kept")
    return Path(output_dir)


__all__ = ["NativeCheckpoint", "load_native_checkpoint", "native_config_to_hf", "native_state_dict_to_hf",
           "detect_tag_layout", "legacy15_row_moves", "move_legacy15_rows", "build_hf_model", "convert_checkpoint",
           "llama_export_blockers", "load_llama_exportable", "export_llama"]
