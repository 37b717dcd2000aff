"""Trainer callbacks: eval-prompt generation with and without the KV cache at every evaluation."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from transformers import TrainerCallback

from ..errors import MyPTInputError
from ..tokens import ASSISTANT_CLOSE, ASSISTANT_OPEN, EOT, SYSTEM_CLOSE, SYSTEM_OPEN, USER_CLOSE, USER_OPEN

logger = logging.getLogger(__name__)

_RAW_PROMPT = re.compile(
    "^(?:" + re.escape(SYSTEM_OPEN) + "(?P<system>.*?)" + re.escape(SYSTEM_CLOSE) + ")?"
    + re.escape(USER_OPEN) + "(?P<user>.*?)" + re.escape(USER_CLOSE) + re.escape(ASSISTANT_OPEN) + "$", re.S)


def load_eval_prompts(path: str | Path) -> Dict[str, List[Dict[str, str]]]:
    """Read an eval-prompts JSON file into {name: chat messages}.

    The file holds a ``prompts`` object (the original's format): name → either a raw MyPT prompt
    (``<myPT_system>…</myPT_system><myPT_user>…</myPT_user><myPT_assistant>``), a plain user message, or an
    object ``{"user": ..., "system": ...}``. Other keys (``expected_outputs``, ``notes``…) are ignored.
    """
    from ..generation import build_chat_messages

    path = Path(path)
    if not path.is_file():
        raise MyPTInputError("eval prompts file not found", path=str(path), field="eval_prompts_file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise MyPTInputError("not a JSON text file (not UTF-8); expected {'prompts': {name: prompt}}", path=str(path),
                             field="eval_prompts_file") from None
    except json.JSONDecodeError as error:
        raise MyPTInputError(f"invalid JSON ({error.msg})", path=str(path), line=error.lineno) from None
    prompts = data.get("prompts") if isinstance(data, dict) else None
    if not isinstance(prompts, dict) or not prompts:
        raise MyPTInputError("expected a non-empty 'prompts' object {name: prompt}", path=str(path), field="prompts")
    out: Dict[str, List[Dict[str, str]]] = {}
    for name, prompt in prompts.items():
        if isinstance(prompt, dict):
            if "user" not in prompt:
                raise MyPTInputError("prompt object needs a 'user' key", path=str(path), field=f"prompts.{name}")
            kwargs = {"system": prompt["system"]} if "system" in prompt else {}
            out[name] = build_chat_messages(prompt["user"], **kwargs)
        elif isinstance(prompt, str):
            match = _RAW_PROMPT.match(prompt.strip())
            if match:
                messages = []
                if match.group("system") is not None:
                    messages.append({"role": "system", "content": match.group("system")})
                messages.append({"role": "user", "content": match.group("user")})
                out[name] = messages
            elif ASSISTANT_OPEN in prompt or USER_OPEN in prompt:
                raise MyPTInputError("raw prompt must be [<myPT_system>…</myPT_system>]<myPT_user>…</myPT_user>"
                                     "<myPT_assistant>", path=str(path), field=f"prompts.{name}")
            else:
                out[name] = build_chat_messages(prompt)
        else:
            raise MyPTInputError("prompt must be a string or an object", path=str(path), field=f"prompts.{name}")
    return out


def _strip_reply(text: str) -> str:
    for stop in (ASSISTANT_CLOSE, EOT):
        text = text.split(stop, 1)[0]
    return text.strip()


class EvalPromptsCallback(TrainerCallback):
    """At every evaluation, generate each eval prompt greedily with and without the KV cache.

    Both completions are logged (``eval_gen`` / ``eval_gen_nocache`` in the log history, and one JSON line
    per evaluation in ``<output_dir>/eval_generations.jsonl``); prompts whose two completions differ are
    listed under ``eval_cache_mismatches`` and warned about (a mismatch means the cache path is broken).
    """

    def __init__(self, prompts_file: str | Path, max_new_tokens: int = 64, batch_size: int = 16) -> None:
        self.prompts = load_eval_prompts(prompts_file)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def on_evaluate(self, args, state, control, model=None, processing_class=None, **kwargs: Any):
        if model is None or processing_class is None:
            return
        if getattr(args, "fsdp", None) and args.world_size > 1:
            logger.warning("eval prompts are skipped under FSDP (sharded weights)")
            return
        if not state.is_world_process_zero:
            return
        result = self.generate(model, processing_class)
        result["step"] = state.global_step
        state.log_history.append({"step": state.global_step, "eval_gen": result["gen"],
                                  "eval_gen_nocache": result["gen_nocache"],
                                  "eval_cache_mismatches": result["cache_mismatches"]})
        if result["cache_mismatches"]:
            logger.warning("eval prompts: cached and uncached greedy generation differ for %s",
                           ", ".join(result["cache_mismatches"]))
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "eval_generations.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(result, ensure_ascii=False) + "\n")
        summary = "; ".join(f"{name}: {_strip_reply(text)!r}" for name, text in result["gen"].items())
        logger.info("step %d eval prompts: %s", state.global_step, summary)

    def generate(self, model: Any, tokenizer: Any) -> Dict[str, Any]:
        """Greedy completions with and without the cache, and the names where they differ."""
        import torch

        from ..generation import generate_replies

        names = list(self.prompts)
        conversations = [self.prompts[name] for name in names]
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                cached = generate_replies(model, tokenizer, conversations, max_new_tokens=self.max_new_tokens,
                                          batch_size=self.batch_size, use_cache=True, do_sample=False)
                uncached = generate_replies(model, tokenizer, conversations, max_new_tokens=self.max_new_tokens,
                                            batch_size=self.batch_size, use_cache=False, do_sample=False)
        finally:
            model.train(was_training)
        gen = dict(zip(names, cached))
        gen_nocache = dict(zip(names, uncached))
        mismatches = [name for name in names if gen[name] != gen_nocache[name]]
        return {"gen": gen, "gen_nocache": gen_nocache, "cache_mismatches": mismatches}
