"""A tiny training whose ranks get different data, for tests/test_distributed.py (run under torchrun / accelerate
launch, or imported for the one-process comparisons).

Every row of a rank's dataset is the same episode (rank 0: "Say Hello." -> "Hello.", rank 1: "Say OK." -> "OK."), so
whatever order the sampler and accelerate's batch sharding choose, rank 0 trains only on episode A and rank 1 only
on episode B. Synchronised gradients make the ranks' weights equal, and equal to one process training on A and B
together at twice the batch; unsynchronised ranks would end as one process trained on A (or on B) alone.

    python -m torch.distributed.run --nproc_per_node 2 tests/distributed_worker.py OUT_DIR [--bf16]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch

EPISODES = [("Say Hello.", "Hello."), ("Say OK.", "OK.")]
BLOCK, BATCH, STEPS = 96, 2, 3


def rows_for(tokenizer: Any, episodes: List[Tuple[str, str]]) -> Any:
    """Prepared rows (input_ids, labels, seq_lengths: the episode then a pad tail), one per episode."""
    from datasets import Dataset

    from mypt_hf.generation import build_chat_messages

    rows = []
    for user, reply in episodes:
        messages = build_chat_messages(user) + [{"role": "assistant", "content": reply}]
        out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids = list(out["input_ids"])
        labels = [t if m else -100 for t, m in zip(ids, out["assistant_masks"])]
        pad = BLOCK - len(ids)
        rows.append({"input_ids": ids + [tokenizer.pad_token_id] * pad, "labels": labels + [-100] * pad,
                     "seq_lengths": [len(ids), pad]})
    return Dataset.from_list(rows)


def train(out_dir: Path, episodes: List[Tuple[str, str]], batch: int, **overrides: Any) -> Tuple[Any, Dict]:
    """Train a fresh 2-layer, 64-wide model (seed 0) for STEPS steps on ``episodes``; (trainer, final state dict)."""
    from mypt_hf.tokenization_mypt import load_tokenizer
    from mypt_hf.training import MyPTSFTConfig, MyPTSFTTrainer
    from mypt_hf.training.modeling import ModelArguments, build_fresh_model

    torch.set_num_threads(1)
    tokenizer = load_tokenizer()
    model, _ = build_fresh_model(ModelArguments(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                block_size=128), tokenizer=tokenizer, seed=0)
    values = dict(output_dir=str(out_dir), max_steps=STEPS, per_device_train_batch_size=batch, learning_rate=3e-3,
                  warmup_steps=0, logging_steps=1, save_strategy="no", eval_strategy="no", seed=0,
                  disable_tqdm=True, dataloader_num_workers=0, report_to="none")
    values.update(overrides)
    trainer = MyPTSFTTrainer(model=model, args=MyPTSFTConfig(**values), train_dataset=rows_for(tokenizer, episodes),
                             processing_class=tokenizer)
    trainer.train()
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    return trainer, {name: tensor.detach().clone() for name, tensor in unwrapped.state_dict().items()}


def main() -> None:
    out = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    trainer, state = train(out / "run", [EPISODES[rank]] * BATCH, BATCH, bf16="--bf16" in sys.argv)
    args = trainer.args
    torch.save({"state": state, "world_size": args.world_size, "type": str(args.distributed_state.distributed_type),
                "steps": trainer.state.global_step, "mixed_precision": args.mixed_precision},
               out / f"rank{rank}.pt")
    import torch.distributed as dist

    if dist.is_initialized():  # tear gloo down before exit, else its threads can abort the process
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # gloo's threads sometimes abort ("terminate called without an active exception") at exit


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
