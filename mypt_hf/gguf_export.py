"""MyPT -> one GGUF file for llama.cpp, for models that are exactly a Llama (``convert --to_llama``'s check).

What is written is what llama.cpp's own ``convert_hf_to_gguf.py`` writes for a ``LlamaForCausalLM`` with a GPT-2
byte-level BPE tokenizer, done in-process with the ``gguf`` package (no llama.cpp checkout, nothing compiled):

* ``general.architecture = "llama"`` and the ``llama.*`` hyperparameters (context, width, depth, FFN width, heads,
  kv heads, head size, RoPE base and dimension, linear RoPE scaling when ``rope_scale != 1``, RMSNorm epsilon,
  vocabulary size);
* the tensors under llama.cpp's names (``gguf.TensorNameMap``: ``token_embd``, ``blk.N.attn_q`` ... ``output_norm``,
  and ``output`` only for an untied model). MyPT's RoPE is HF Llama's rotate-half, so the q/k rows get the same
  ``LlamaModel.permute`` the converter applies to every HF Llama (llama.cpp's ``llama`` graph rotates adjacent pairs);
  1-D tensors and norms stay F32, the matrices take ``outtype`` (f32 / f16 / bf16);
* the tokenizer as ``tokenizer.ggml.model = "gpt2"`` with pre-tokenizer ``"gpt-2"`` (the regex MyPT's GPT-2 and
  embedded tokenizers split with), every id's token string and type (the 19 MyPT tags CONTROL, ids of a padded
  vocabulary ``[PAD<id>]`` UNUSED, as the converter does), the merges, and the chat template;
* the stop ids as MyPT uses them: ``eos`` = ``<myPT_eot>`` (end of the conversation), ``eot`` = ``</myPT_assistant>``
  (end of the assistant turn) — llama.cpp stops at both — ``pad`` = ``<myPT_eot>``; no BOS is added (MyPT never
  prepends one).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .errors import MyPTInputError
from .io_utils import atomic_files, check_outputs_writable
from .tokens import EOT, TAG_STRINGS, tag_ids_for_base

PathLike = Union[str, os.PathLike]

#: ``--outtype`` choices (convert_hf_to_gguf's names) -> (file type, type of the matrices).
OUTTYPES = ("f32", "f16", "bf16")
#: llama.cpp's name for the GPT-2 pre-tokenizer regex (``LLAMA_VOCAB_PRE_TYPE_GPT2``).
GGUF_PRE_TOKENIZER = "gpt-2"
GGUF_ARCH = "llama"


def _types(outtype: str):
    import gguf

    table = {"f32": (gguf.LlamaFileType.ALL_F32, gguf.GGMLQuantizationType.F32),
             "f16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
             "bf16": (gguf.LlamaFileType.MOSTLY_BF16, gguf.GGMLQuantizationType.BF16)}
    if outtype not in table:
        raise MyPTInputError(f"unknown outtype {outtype!r}; expected one of {', '.join(OUTTYPES)}", field="outtype")
    return table[outtype]


def llama_cpp_permute(weight: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf's ``LlamaModel.permute``: q/k rows (or bias entries) from HF's rotate-half order, where
    dimension ``j`` of a head pairs with ``j + head_dim/2``, to llama.cpp's, where ``2i`` pairs with ``2i+1``."""
    return (weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:])
            .swapaxes(1, 2)
            .reshape(weight.shape))


# ------------------------------------------------------------------------------------------- tokenizer


def check_gpt2_style_bpe(tokenizer) -> None:
    """Refuse a tokenizer llama.cpp's ``gpt2`` vocabulary with the ``gpt-2`` pre-tokenizer would not reproduce:
    it must be a byte-level BPE that splits with the GPT-2 regex (MyPT's GPT-2 and embedded tokenizers are)."""
    from .tokenization_mypt import GPT2_PATTERN

    data = json.loads(tokenizer.backend_tokenizer.to_str())
    model_type = (data.get("model") or {}).get("type")
    if model_type != "BPE":
        raise MyPTInputError(f"the tokenizer is a {model_type} model; GGUF export writes GPT-2 byte-level BPE only",
                             field="tokenizer")
    pre = data.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [part.get("type") for part in parts]
    gpt2_regex_bytelevel = kinds == ["ByteLevel"] and parts[0].get("use_regex", True) \
        and not parts[0].get("add_prefix_space", False)
    split_then_bytelevel = (kinds == ["Split", "ByteLevel"]
                            and (parts[0].get("pattern") or {}).get("Regex") == GPT2_PATTERN
                            and not parts[1].get("use_regex", True) and not parts[1].get("add_prefix_space", False))
    if not (gpt2_regex_bytelevel or split_then_bytelevel):
        raise MyPTInputError(f"the tokenizer's pre-tokenizer ({kinds}) is not GPT-2's byte-level split, which is the "
                             f"only one written as tokenizer.ggml.pre = {GGUF_PRE_TOKENIZER!r}", field="tokenizer")


def gguf_vocab(tokenizer, vocab_size: int) -> Tuple[List[str], List[int]]:
    """Token strings and types for ids ``0 .. vocab_size-1``, as convert_hf_to_gguf's ``get_vocab_base``: added
    special tokens CONTROL, other added tokens USER_DEFINED, ids the tokenizer lacks ``[PAD<id>]`` UNUSED, the rest
    NORMAL. Refuses a tokenizer larger than the model or without the 19 MyPT tags as CONTROL at their ids."""
    import gguf

    vocab = tokenizer.get_vocab()
    if max(vocab.values()) >= vocab_size:
        raise MyPTInputError(f"the tokenizer has ids up to {max(vocab.values())} but the model only {vocab_size} "
                             "embedding rows", field="tokenizer")
    reverse = {index: token for token, index in vocab.items()}
    added = tokenizer.added_tokens_decoder
    tokens: List[str] = []
    types: List[int] = []
    for index in range(vocab_size):
        if index not in reverse:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        token = reverse[index]
        if index in added:
            # llama.cpp expects CONTROL / USER_DEFINED tokens pre-normalized (the converter's round trip)
            if not added[index].normalized:
                token = tokenizer.decode(tokenizer.encode(token, add_special_tokens=False))
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(token)
    base = tokenizer.convert_tokens_to_ids(TAG_STRINGS[0])
    for tag, index in tag_ids_for_base(base if isinstance(base, int) else -1).items():
        if not (0 <= index < vocab_size and tokens[index] == tag and types[index] == gguf.TokenType.CONTROL):
            raise MyPTInputError(f"the tokenizer lacks the MyPT tag {tag} as a special token at id {index}; "
                                 "it is not a MyPT tokenizer", field="tokenizer")
    return tokens, [int(t) for t in types]


def _merges(tokenizer) -> List[str]:
    """The BPE merges as ``"a b"`` strings, read the way convert_hf_to_gguf does (``gguf.SpecialVocab``)."""
    import gguf

    with tempfile.TemporaryDirectory() as scratch:
        tokenizer.backend_tokenizer.save(str(Path(scratch) / "tokenizer.json"))
        merges = gguf.SpecialVocab(scratch, load_merges=True, special_token_types=()).merges
    if not merges:
        raise MyPTInputError("the tokenizer has no BPE merges", field="tokenizer")
    return list(merges)


# ------------------------------------------------------------------------------------------- writing


def _add_hyperparameters(writer, cfg, file_type) -> None:
    import gguf

    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    if cfg.rope_scale != 1.0:  # MyPT divides positions by rope_scale: llama.cpp's linear scaling
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(cfg.rope_scale))
    writer.add_rope_freq_base(float(cfg.rope_theta))
    writer.add_layer_norm_rms_eps(float(cfg.norm_eps))
    writer.add_key_length(cfg.head_dim)
    writer.add_value_length(cfg.head_dim)
    writer.add_file_type(file_type)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_rope_dimension_count(cfg.head_dim)


def _add_tokenizer(writer, tokenizer, vocab_size: int) -> None:
    from .tokenization_mypt import stop_token_ids

    check_gpt2_style_bpe(tokenizer)
    tokens, types = gguf_vocab(tokenizer, vocab_size)
    turn_end, conversation_end = stop_token_ids(tokenizer)  # </myPT_assistant>, <myPT_eot>
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(GGUF_PRE_TOKENIZER)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(_merges(tokenizer))
    writer.add_eos_token_id(conversation_end)
    writer.add_eot_token_id(turn_end)
    writer.add_pad_token_id(tokenizer.convert_tokens_to_ids(EOT))
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def gguf_tensors(model) -> Dict[str, np.ndarray]:
    """llama.cpp tensor name -> fp32 array in llama.cpp's layout (q/k permuted; no ``output`` when tied; the
    lm_head bias, which the Llama check has proven zero, left out)."""
    import gguf

    cfg = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    out: Dict[str, np.ndarray] = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.bias" or (name == "lm_head.weight" and cfg.tie_word_embeddings):
            continue
        new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise RuntimeError(f"no llama.cpp name for the MyPT tensor {name!r}")
        data = tensor.detach().float().cpu().numpy()
        if name.endswith(("q_proj.weight", "q_proj.bias", "k_proj.weight", "k_proj.bias")):
            data = llama_cpp_permute(data, cfg.num_attention_heads)
        out[new_name] = np.ascontiguousarray(data)
    return out


def export_gguf(hf_dir: PathLike, out: PathLike, *, outtype: str = "f16", overwrite: bool = False,
                source: Optional[PathLike] = None) -> Path:
    """Write the MyPT model in ``hf_dir`` (saved with its tokenizer) as one GGUF file ``out`` for llama.cpp.

    Refused (MyPTInputError naming ``source`` or ``hf_dir`` and every reason) unless the model is exactly a Llama
    (:func:`mypt_hf.convert.load_llama_exportable`) and its tokenizer a GPT-2-style byte-level BPE with the MyPT
    tags. ``out`` appears whole or not at all; an existing one is replaced only with ``overwrite``.
    """
    import gguf

    from .convert import load_llama_exportable
    from .model_files import tokenizer_files_missing
    from .tokenization_mypt import load_tokenizer

    hf_dir, out = Path(hf_dir), Path(out)
    file_type, matrix_type = _types(outtype)
    _check_out(out, overwrite)
    named = str(source) if source is not None else str(hf_dir)
    model = load_llama_exportable(hf_dir, source=source, flag="convert-to-gguf", target="llama.cpp's llama (GGUF)")
    missing = tokenizer_files_missing(hf_dir)
    if missing is not None:
        raise MyPTInputError(f"no tokenizer files (needs {missing}); a GGUF file carries the tokenizer: save it into "
                             "the model directory, or for a native checkpoint pass --tokenizer", path=named,
                             field="tokenizer")
    tokenizer = load_tokenizer(str(hf_dir))
    tensors = gguf_tensors(model)
    with atomic_files([out]) as temps:
        writer = gguf.GGUFWriter(temps[out], arch=GGUF_ARCH)
        try:
            writer.add_name(Path(named).name)
            _add_hyperparameters(writer, model.config, file_type)
            writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
            _add_tokenizer(writer, tokenizer, model.config.vocab_size)
            for name, data in tensors.items():
                # As the converter: 1-D tensors and norms F32 (llama.cpp reads them as F32), matrices in outtype.
                qtype = gguf.GGMLQuantizationType.F32 if data.ndim <= 1 or name.endswith("_norm.weight") \
                    else matrix_type
                writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    return out


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_dir():
        raise MyPTInputError("is a directory; --out names the .gguf file to write", path=str(out), field="out")
    check_outputs_writable([out], overwrite=overwrite, field="out")


def convert_to_gguf(input_path: PathLike, out: PathLike, *, outtype: str = "f16", tokenizer=None,
                    overwrite: bool = False) -> Path:
    """:func:`export_gguf` for an HF MyPT directory or a native MyPT checkpoint (converted first in a scratch
    directory with ``tokenizer``, as ``convert`` does; errors name the user's input)."""
    from .convert import convert_checkpoint
    from .model_files import read_model_config

    source, out = Path(input_path), Path(out)
    _types(outtype)
    _check_out(out, overwrite)  # before any work
    if source.is_dir() and (source / "config.json").is_file() and "model_type" in read_model_config(source,
                                                                                                   field="input"):
        if tokenizer is not None:
            raise MyPTInputError("--tokenizer applies to native checkpoints; an HF model directory carries its own",
                                 path=str(source), field="tokenizer")
        return export_gguf(source, out, outtype=outtype, overwrite=overwrite)
    with tempfile.TemporaryDirectory() as scratch:
        hf_dir = Path(scratch) / "hf"
        convert_checkpoint(source, hf_dir, tokenizer)
        return export_gguf(hf_dir, out, outtype=outtype, overwrite=overwrite, source=source)


__all__ = ["OUTTYPES", "GGUF_PRE_TOKENIZER", "llama_cpp_permute", "check_gpt2_style_bpe", "gguf_vocab",
           "gguf_tensors", "export_gguf", "convert_to_gguf"]
