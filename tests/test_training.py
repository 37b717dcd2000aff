"""MyPTSFTConfig / MyPTSFTTrainer on a tiny MyPT model with hand-built prepared datasets (CPU, seconds)."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from mypt_hf.errors import MyPTInputError

torch.set_num_threads(1)

USERS = ["Say Hello.", "Say OK.", "Say yes.", "Reply with cat.", "Say blue.", "Say dog."]
REPLIES = ["Hello.", "OK.", "yes.", "cat.", "blue.", "dog."]


@pytest.fixture(scope="module")
def tokenizer():
    from mypt_hf.tokenization_mypt import load_tokenizer

    return load_tokenizer()


def _episode(tokenizer, user, reply):
    from mypt_hf.generation import build_chat_messages

    messages = build_chat_messages(user) + [{"role": "assistant", "content": reply}]
    out = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    ids = list(out["input_ids"])
    labels = [t if m else -100 for t, m in zip(ids, out["assistant_masks"])]
    return ids, labels


def packed_dataset(tokenizer, n_rows=12, block=96, per_row=2):
    """Rows of ``per_row`` episodes + a pad tail, in the prepare() layout (input_ids, labels, seq_lengths)."""
    from datasets import Dataset

    rows = []
    k = 0
    for _ in range(n_rows):
        ids, labels, lengths = [], [], []
        for _ in range(per_row):
            e_ids, e_labels = _episode(tokenizer, USERS[k % len(USERS)], REPLIES[k % len(REPLIES)])
            k += 1
            ids += e_ids
            labels += e_labels
            lengths.append(len(e_ids))
        pad = block - len(ids)
        assert pad > 0
        ids += [tokenizer.pad_token_id] * pad
        labels += [-100] * pad
        lengths.append(pad)
        rows.append({"input_ids": ids, "labels": labels, "seq_lengths": lengths})
    return Dataset.from_list(rows)


def metadata_for(tokenizer, rows, block_size=128, packing_enabled=True):
    """A PreparedMetadata for hand-built rows, as prepare would record it."""
    from mypt_hf.data.metadata import SCHEMA, PreparedMetadata, TokenizerRecord
    from mypt_hf.tokenization_mypt import model_vocab_size, tokenizer_fingerprint

    return PreparedMetadata(schema=SCHEMA, prepare_mode="val_split", splits={"train": {"rows": rows}},
                            packing_enabled=packing_enabled, block_size=block_size,
                            pad_token_id=tokenizer.pad_token_id,
                            tokenizer=TokenizerRecord(name=None, vocab_size=len(tokenizer),
                                                      model_vocab_size=model_vocab_size(tokenizer),
                                                      fingerprint=tokenizer_fingerprint(tokenizer)))


def tiny_model(tokenizer, layers=2, width=64, seed=0):
    from mypt_hf.training.modeling import ModelArguments, build_fresh_model

    model, _ = build_fresh_model(ModelArguments(hidden_size=width, num_hidden_layers=layers, num_attention_heads=4,
                                                block_size=128), tokenizer=tokenizer, seed=seed)
    return model


def make_args(tmp_path, **overrides):
    from mypt_hf.training import MyPTSFTConfig

    values = dict(output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4, learning_rate=3e-3,
                  warmup_steps=1, logging_steps=1, save_strategy="no", eval_strategy="no", seed=0,
                  disable_tqdm=True, dataloader_num_workers=0)
    values.update(overrides)
    return MyPTSFTConfig(**values)


def make_trainer(tmp_path, tokenizer, model=None, dataset=None, **overrides):
    from mypt_hf.training import MyPTSFTTrainer

    dataset = dataset if dataset is not None else packed_dataset(tokenizer)
    model = model if model is not None else tiny_model(tokenizer)
    return MyPTSFTTrainer(model=model, args=make_args(tmp_path, **overrides), train_dataset=dataset,
                          processing_class=tokenizer, dataset_metadata=metadata_for(tokenizer, len(dataset)))


# --------------------------------------------------------------------------------------------------


def test_config_defaults_are_mypt_and_cpu_safe(tmp_path):
    from mypt_hf.training import MyPTSFTConfig

    args = MyPTSFTConfig(output_dir=str(tmp_path), gradient_checkpointing=None)  # bf16 left to the machine
    assert (args.adam_beta1, args.adam_beta2) == (0.9, 0.95)
    assert args.weight_decay == 0.05 and args.max_grad_norm == 1.0
    assert str(args.lr_scheduler_type.value if hasattr(args.lr_scheduler_type, "value") else args.lr_scheduler_type) \
        == "cosine_with_min_lr" and args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    if not torch.cuda.is_available():  # auto precision is fp32 on CPU; an explicit bf16 is honoured (CPU autocast)
        assert args.bf16 is False and args.use_cpu and args.mixed_precision == "no"
        explicit = MyPTSFTConfig(output_dir=str(tmp_path), bf16=True)
        assert explicit.bf16 is True and explicit.use_cpu and explicit.mixed_precision == "bf16"
    assert args.activation_checkpointing is False
    assert args.dataset_kwargs["skip_prepare_dataset"] is True and not args.packing and not args.padding_free
    with pytest.raises(MyPTInputError):
        MyPTSFTConfig(output_dir=str(tmp_path), packing=True)


def test_few_steps_lower_the_loss_and_log_metrics(tmp_path, tokenizer):
    trainer = make_trainer(tmp_path, tokenizer, max_steps=12)
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses[-1] < losses[0] * 0.8, losses
    last = [e for e in trainer.state.log_history if "loss" in e][-1]
    for key in ("mean_token_accuracy", "supervised_tokens_per_second", "learning_rate", "num_tokens"):
        assert key in last
    # (B, L) batches without attention_mask: every token of every row counts (TRL counted one row per batch)
    assert last["num_tokens"] == 12 * 4 * 96
    # schedule: warmup then cosine to 10 % of the peak
    lrs = [e["learning_rate"] for e in trainer.state.log_history if "learning_rate" in e]
    assert max(lrs) == pytest.approx(3e-3)
    assert 3e-4 * 0.999 <= lrs[-1] < 4e-4 and min(lrs[1:]) >= 3e-4 * 0.999


def test_optimizer_groups_decay_only_matrices(tmp_path, tokenizer):
    trainer = make_trainer(tmp_path, tokenizer)
    trainer.create_optimizer()
    names = dict(trainer.model.named_parameters())
    decayed = set(trainer.get_decay_parameter_names(trainer.model))
    embedding = trainer.model.get_input_embeddings().weight
    assert all(names[n].ndim >= 2 for n in decayed)
    assert not any(names[n] is embedding for n in decayed)
    assert any("norm" in n for n in names) and not any("norm" in n for n in decayed)
    groups = trainer.optimizer.param_groups
    assert sorted(g["weight_decay"] for g in groups) == [0.0, 0.05]
    assert all(g["betas"] == (0.9, 0.95) for g in groups)


def _collated(trainer, dataset, rows=2):
    batch = trainer.data_collator([dataset[i] for i in range(rows)])
    return {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}


def test_loss_is_mean_ce_over_supervised_tokens(tmp_path, tokenizer):
    dataset = packed_dataset(tokenizer)
    trainer = make_trainer(tmp_path, tokenizer, dataset=dataset)
    model = trainer.model.eval()
    batch = _collated(trainer, dataset)
    with torch.no_grad():
        loss = trainer.compute_loss(model, dict(batch)).item()
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
    targets = batch["labels"][:, 1:]
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)).float(), targets.reshape(-1),
                                           ignore_index=-100, reduction="sum")
    count = targets.ne(-100).sum()
    assert loss == pytest.approx((ce / count).item(), rel=1e-4)
    # under gradient accumulation the denominator is the whole step's supervised-token count
    with torch.no_grad():
        scaled = trainer.compute_loss(model, dict(batch), num_items_in_batch=2 * count).item()
    assert scaled == pytest.approx(loss / 2, rel=1e-4)


def test_unsupervised_token_does_not_change_loss_supervised_does(tmp_path, tokenizer):
    dataset = packed_dataset(tokenizer)
    trainer = make_trainer(tmp_path, tokenizer, dataset=dataset)
    model = trainer.model.eval()
    batch = _collated(trainer, dataset, rows=1)

    def loss_of(b):
        with torch.no_grad():
            return trainer.compute_loss(model, dict(b)).item()

    base = loss_of(batch)
    labels = batch["labels"][0]
    supervised = labels.ne(-100).nonzero().flatten().tolist()
    # an unsupervised token that no supervised target depends on: the pad tail after the last episode
    tail = supervised[-1] + 1
    changed = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
    changed["input_ids"][0, tail] = (changed["input_ids"][0, tail] + 7) % 500
    assert loss_of(changed) == pytest.approx(base, abs=1e-6)
    # an unsupervised prompt token of the SECOND episode does not reach the FIRST episode's targets
    first_len = dataset[0]["seq_lengths"][0]
    changed = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
    changed["input_ids"][0, first_len + 3] = (changed["input_ids"][0, first_len + 3] + 7) % 500
    first_targets = [p for p in supervised if p < first_len]
    with torch.no_grad():
        a = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0, :first_len]
        b = model(input_ids=changed["input_ids"], position_ids=changed["position_ids"]).logits[0, :first_len]
    assert first_targets and torch.allclose(a, b, atol=1e-5)
    # a supervised target token changes the loss
    pos = supervised[0]
    changed = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in batch.items()}
    new = (int(changed["input_ids"][0, pos]) + 11) % 500
    changed["input_ids"][0, pos] = new
    changed["labels"][0, pos] = new
    assert abs(loss_of(changed) - base) > 1e-4


def test_freeze_layers_and_embeddings_really_freeze(tmp_path, tokenizer):
    model = tiny_model(tokenizer, layers=3)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = make_trainer(tmp_path, tokenizer, model=model, freeze_layers=2, freeze_embeddings=True, max_steps=3)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    embedding_name = next(n for n, p in after.items() if p is trainer.model.get_input_embeddings().weight)
    for name, old in before.items():
        frozen = ".layers.0." in name or ".layers.1." in name or name == embedding_name
        same = torch.equal(old, after[name].detach())
        assert same == frozen, (name, frozen)


def test_coverage_sets_max_steps(tmp_path, tokenizer):
    from mypt_hf.training.config import resolve_max_steps

    args = make_args(tmp_path, max_steps=-1, coverage=2.0, per_device_train_batch_size=4,
                     gradient_accumulation_steps=2)
    assert resolve_max_steps(args, metadata_for(tokenizer, 100)) == math.ceil(2.0 * 100 / 8)
    trainer = make_trainer(tmp_path, tokenizer, max_steps=-1, coverage=1.5)  # 12 rows, batch 4 -> 5 steps
    assert trainer.args.max_steps == 5
    explicit = make_args(tmp_path, max_steps=7, coverage=3.0)
    assert resolve_max_steps(explicit, metadata_for(tokenizer, 100)) == 7


def test_save_from_pretrained_generate_round_trip(tmp_path, tokenizer):
    from transformers import AutoModelForCausalLM

    import mypt_hf  # noqa: F401
    from mypt_hf.generation import build_chat_messages, generate_replies
    from mypt_hf.tokenization_mypt import load_tokenizer, stop_token_ids

    trainer = make_trainer(tmp_path, tokenizer, max_steps=3)
    trainer.train()
    out = tmp_path / "saved"
    trainer.save_model(str(out))
    # the model card is not written by save_model (it would be overwritten by the run's card, which has the gate)
    assert (out / "model.safetensors").is_file() and not (out / "README.md").exists()
    loaded = AutoModelForCausalLM.from_pretrained(str(out))
    loaded_tok = load_tokenizer(str(out))
    assert loaded_tok.chat_template and len(loaded_tok) == len(tokenizer)
    assert list(loaded.generation_config.eos_token_id) == stop_token_ids(tokenizer)
    assert loaded.generation_config.pad_token_id == tokenizer.pad_token_id
    conversations = [build_chat_messages(u) for u in USERS[:3]]
    ours = generate_replies(trainer.model, tokenizer, conversations, max_new_tokens=6)
    theirs = generate_replies(loaded, loaded_tok, conversations, max_new_tokens=6)
    assert ours == theirs


def test_resume_continues_from_saved_step(tmp_path, tokenizer):
    from transformers import TrainerCallback

    first = make_trainer(tmp_path, tokenizer, max_steps=4, save_strategy="steps", save_steps=2)
    first.train()
    checkpoint = tmp_path / "out" / "checkpoint-2"
    assert checkpoint.is_dir()

    class CountSteps(TrainerCallback):
        steps = []

        def on_step_end(self, args, state, control, **kwargs):
            CountSteps.steps.append(state.global_step)

    resumed = make_trainer(tmp_path, tokenizer, max_steps=4, save_strategy="no")
    resumed.add_callback(CountSteps())
    resumed.train(resume_from_checkpoint=str(checkpoint))
    assert CountSteps.steps == [3, 4]
    assert resumed.state.global_step == 4
    final_first = dict(first.model.named_parameters())
    for name, param in resumed.model.named_parameters():
        assert torch.allclose(param, final_first[name], atol=1e-5), name


def test_bad_input_is_refused_before_any_step(tmp_path, tokenizer):
    from mypt_hf.tokenization_mypt import load_tokenizer
    from mypt_hf.training import MyPTSFTTrainer
    from mypt_hf.training.modeling import load_model_for_training

    dataset = packed_dataset(tokenizer)
    other = load_tokenizer("embedded:300")
    with pytest.raises(MyPTInputError, match="different tokenizer|tokenizer has"):
        MyPTSFTTrainer(model=tiny_model(tokenizer), args=make_args(tmp_path), train_dataset=dataset,
                       processing_class=other, dataset_metadata=metadata_for(tokenizer, len(dataset)))
    # token ids beyond the model's embedding (a dataset prepared with a bigger vocabulary)
    big = dataset.map(lambda row: {"input_ids": [5000] + row["input_ids"][1:]})
    with pytest.raises(MyPTInputError, match="embedding rows"):
        MyPTSFTTrainer(model=tiny_model(tokenizer), args=make_args(tmp_path), train_dataset=big,
                       processing_class=tokenizer, dataset_metadata=None)
    with pytest.raises(MyPTInputError, match="init_from_model"):
        load_model_for_training(tmp_path / "no-such-model")
    # blocks longer than the model's context (128): by the metadata's block size, and by the rows themselves
    meta = metadata_for(tokenizer, len(dataset), block_size=256)
    with pytest.raises(MyPTInputError, match="256-token blocks but the model's context is 128"):
        MyPTSFTTrainer(model=tiny_model(tokenizer), args=make_args(tmp_path), train_dataset=dataset,
                       processing_class=tokenizer, dataset_metadata=meta)
    long_rows = packed_dataset(tokenizer, n_rows=2, block=160)
    with pytest.raises(MyPTInputError, match="160-token row"):
        MyPTSFTTrainer(model=tiny_model(tokenizer), args=make_args(tmp_path), train_dataset=long_rows,
                       processing_class=tokenizer, dataset_metadata=metadata_for(tokenizer, len(long_rows)))


DDP_WORKER = r"""
import hashlib, os, sys
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
torch.set_num_threads(1)
from pathlib import Path
out = Path(sys.argv[1])
import test_training_helpers as h  # written next to this script by the test
from mypt_hf.tokenization_mypt import load_tokenizer
tok = load_tokenizer()
model = h.tiny_model(tok, seed=0)
start = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
trainer = h.make_trainer(out, tok, model=model, max_steps=2, per_device_train_batch_size=2)
trainer.train()
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in trainer.model.parameters())).hexdigest()
rank = int(os.environ["RANK"])
(out / f"rank{rank}.txt").write_text(f"world={trainer.args.world_size} step={trainer.state.global_step} {digest} {start}")
import torch.distributed as dist
if dist.is_initialized():  # tear gloo down before exit, else its threads can abort the process
    dist.barrier()
    dist.destroy_process_group()
sys.stdout.flush(); sys.stderr.flush()
os._exit(0)  # gloo's threads sometimes abort ("terminate called without an active exception") at interpreter exit
"""


@pytest.mark.slow
def test_two_process_cpu_run_keeps_ranks_identical(tmp_path):
    """Two optimizer steps with 2 processes (torchrun, gloo on CPU); both ranks end with identical weights."""
    import subprocess
    import sys

    script = tmp_path / "ddp_worker.py"
    script.write_text(DDP_WORKER)
    import shutil

    shutil.copy(__file__, tmp_path / "test_training_helpers.py")
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    import socket

    with socket.socket() as probe:  # a free port: a fixed one collides with other runs on a shared machine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_addr", "127.0.0.1", "--master_port", str(port), str(script), str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=240)
    log = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, log
    digests = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert digests[0][0] == "world=2" and digests[1][0] == "world=2", (digests, log)
    assert digests[0][1] == "step=2", digests
    assert digests[0][2] == digests[1][2], digests  # identical weights on both ranks
    assert digests[0][2] != digests[0][3]  # and training did change them


def test_eval_prompts_generated_with_and_without_cache_at_each_eval(tmp_path, tokenizer):
    from mypt_hf.tokens import ASSISTANT_OPEN, SYSTEM_CLOSE, SYSTEM_OPEN, USER_CLOSE, USER_OPEN

    prompts = tmp_path / "prompts.json"
    raw = f"{SYSTEM_OPEN}You are MyPT.{SYSTEM_CLOSE}{USER_OPEN}Say Hello.{USER_CLOSE}{ASSISTANT_OPEN}"
    prompts.write_text(json.dumps({"prompts": {"say_hello": raw, "say_ok": {"user": "Say OK."}, "plain": "Say yes."},
                                   "expected_outputs": {"say_hello": "Hello."}}))
    dataset = packed_dataset(tokenizer)
    from mypt_hf.training import MyPTSFTTrainer

    args = make_args(tmp_path, max_steps=2, eval_strategy="steps", eval_steps=1, eval_prompts_file=str(prompts),
                     eval_max_new_tokens=4)
    trainer = MyPTSFTTrainer(model=tiny_model(tokenizer), args=args, train_dataset=dataset,
                             eval_dataset=dataset.select(range(4)), processing_class=tokenizer,
                             dataset_metadata=metadata_for(tokenizer, len(dataset)))
    trainer.train()
    lines = [json.loads(x) for x in (tmp_path / "out" / "eval_generations.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2]
    for entry in lines:
        assert set(entry["gen"]) == {"say_hello", "say_ok", "plain"} == set(entry["gen_nocache"])
        assert entry["cache_mismatches"] == [n for n in entry["gen"] if entry["gen"][n] != entry["gen_nocache"][n]]
    evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    assert evals and all("eval_mean_token_accuracy" in e for e in evals)
    assert any("eval_gen" in e for e in trainer.state.log_history)


def test_train_command_and_unknown_config_key(tmp_path, tokenizer):
    from mypt_hf.cli import main
    from mypt_hf.data.prepare import PrepareConfig, prepare
    from mypt_hf.data.schema import make_episode
    from datasets import Dataset

    episodes = Dataset.from_list([make_episode(u, r) for u, r in zip(USERS * 4, REPLIES * 4)])
    data = tmp_path / "prepared"
    prepare(episodes, data, tokenizer, config=PrepareConfig(val_split=0.2, enable_packing=True, pack_block_size=96), verbose=False)
    config = tmp_path / "cfg.yaml"
    config.write_text("hidden_size: 32\nnum_hidden_layers: 1\nnum_attention_heads: 2\nblock_size: 128\n"
                      "max_iters: 2\nbatch_size: 2\nlogging_steps: 1\nsave_strategy: 'no'\neval_strategy: 'no'\n"
                      "disable_tqdm: true\n")
    out = tmp_path / "model"
    assert main(["train", "--dataset_dir", str(data), "--config_file", str(config), "--output_dir", str(out),
                 "--learning_rate", "0.001"]) == 0
    assert (out / "model.safetensors").is_file() and (out / "loss.png").is_file()
    # fine-tuning into the starting model's own directory would overwrite it: refused, the model untouched
    weights = (out / "model.safetensors").read_bytes()
    assert main(["train", "--dataset_dir", str(data), "--init_from_model", str(out), "--output_dir",
                 str(tmp_path / "." / "model"), "--max_steps", "1"]) == 2
    assert (out / "model.safetensors").read_bytes() == weights
    config.write_text("max_iters: 2\nlearnign_rate: 0.1\n")
    assert main(["train", "--dataset_dir", str(data), "--config_file", str(config), "--output_dir",
                 str(tmp_path / "m2")]) == 2
    assert not (tmp_path / "m2").exists()
    assert main(["train", "--dataset_dir", str(data), "--init_from_model", str(tmp_path / "none"),
                 "--output_dir", str(tmp_path / "m3")]) == 2
