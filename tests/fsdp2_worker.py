"""FSDP2 on CPU (gloo) without accelerate, for tests/test_distributed.py: accelerate sets up FSDP only for
multi-GPU-type processes (mypt_hf.training.distributed), so the FSDP path of a phase is driven here by torch itself,
the way accelerate drives it on GPUs with recipes/accelerate/fsdp.yaml:

1. ``fully_shard`` every MyPTDecoderLayer, then the root (fsdp_auto_wrap_policy TRANSFORMER_BASED_WRAP,
   fsdp_transformer_layer_cls_to_wrap MyPTDecoderLayer, fsdp_version 2);
2. train a few AdamW steps, each rank on different data (tests/distributed_worker.py's episodes);
3. the full state dict with accelerate's FSDP2 options (Accelerator.get_state_dict: full_state_dict,
   broadcast_from_rank0, cpu_offload), saved by rank 0 with save_pretrained (FULL_STATE_DICT);
4. the gate on rank 0 alone, on the full model loaded from the saved directory (PhaseRun.evaluation_model under
   FSDP), while rank 1 waits at a barrier (a deadlock fails by the process group's timeout);
5. the next phase's start on every rank: load_model_for_training(saved).

    python -m torch.distributed.run --nproc_per_node 2 tests/fsdp2_worker.py OUT_DIR
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import sys
from pathlib import Path

import torch


def digest(state) -> str:
    """sha256 over a state dict's tensors in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.fsdp import fully_shard

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import distributed_worker as data

    from mypt_hf.modeling_mypt import MyPTDecoderLayer, set_mypt_generation_config
    from mypt_hf.tokenization_mypt import load_tokenizer
    from mypt_hf.training.modeling import ModelArguments, build_fresh_model, load_model_for_training

    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    saved = out / "fsdp_model"
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=90))
    rank = dist.get_rank()
    tokenizer = load_tokenizer()
    model, _ = build_fresh_model(ModelArguments(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                block_size=128), tokenizer=tokenizer, seed=0)
    start = digest(model.state_dict())
    layers = [module for module in model.modules() if isinstance(module, MyPTDecoderLayer)]
    for layer in layers:
        fully_shard(layer)
    fully_shard(model)
    sharded = type(next(model.parameters())).__name__  # DTensor once sharded
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95))
    rows = data.rows_for(tokenizer, [data.EPISODES[rank]] * data.BATCH)
    batch = {key: torch.tensor(rows[key]) for key in ("input_ids", "labels")}
    losses = []
    model.train()
    for _ in range(data.STEPS):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.detach().item())
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True,
                                                                cpu_offload=True))
    report = None
    if rank == 0:
        plain, _ = build_fresh_model(ModelArguments(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                                    block_size=128), tokenizer=tokenizer, seed=1)
        missing, unexpected = plain.load_state_dict(full, strict=False)
        set_mypt_generation_config(plain, tokenizer)
        plain.save_pretrained(str(saved))
        tokenizer.save_pretrained(str(saved))
        # the gate, as PhaseRun.gate runs it under FSDP: rank 0 only, on the full model loaded from disk
        from transformers import AutoModelForCausalLM

        from mypt_hf.evaluation.copy_probe import copy_probe, copy_probe_phrases

        evaluated = AutoModelForCausalLM.from_pretrained(str(saved)).eval()
        report = copy_probe(evaluated, tokenizer, copy_probe_phrases(3), threshold=0.8)
        report = {"missing": list(missing), "unexpected": list(unexpected), "total": report["buckets"]["copy"]["total"],
                  "full_digest": digest(full)}
    dist.barrier()  # rank 1 waits here while rank 0 saves and gates
    nxt, _ = load_model_for_training(str(saved))  # the next phase's start, on every rank
    result = {"rank": rank, "world": dist.get_world_size(), "sharded": sharded, "losses": losses, "start": start,
              "loaded_digest": digest(nxt.state_dict()), "gate": report}
    (out / f"fsdp_rank{rank}.json").write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # gloo's threads sometimes abort at interpreter exit


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
