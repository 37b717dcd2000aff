"""Packing: whole episodes exactly once, groups respected, near-ideal fill; the collator's packed batch
trains exactly like the episodes run one by one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mypt_hf.data.packing import IGNORE_INDEX, PackedEpisodeCollator, build_blocks, pack_lengths


def _check_partition(blocks, lengths, block_size, groups=None):
    flat = np.concatenate(blocks)
    assert np.array_equal(np.sort(flat), np.arange(len(lengths))), "every episode exactly once"
    for block in blocks:
        assert lengths[block].sum() <= block_size
        if groups is not None:
            assert len({groups[i] for i in block}) == 1, "a block mixes groups"


@pytest.mark.parametrize("low,high,block", [(19, 40, 1024), (1, 300, 1024), (5, 900, 1024), (100, 500, 512)])
def test_pack_lengths_partition_and_groups(low, high, block):
    rng = np.random.default_rng(low)
    lengths = rng.integers(low, high, size=3000)
    groups = rng.choice(["COPY", "WRAP", "EXTRACT"], size=3000)
    blocks = pack_lengths(lengths, block, groups=groups, seed=3)
    _check_partition(blocks, lengths, block, groups)
    # never worse than best-fit-decreasing's usual behaviour: within 1 block per group of the volume bound
    bound = sum(math.ceil(lengths[groups == g].sum() / block) for g in set(groups))
    if high <= block // 4:
        assert len(blocks) <= bound + 3


def test_pack_lengths_near_ideal_fill_small_episodes():
    rng = np.random.default_rng(0)
    lengths = rng.integers(19, 40, size=20000)
    blocks = pack_lengths(lengths, 1024, seed=1)
    fill = lengths.sum() / (len(blocks) * 1024)
    assert len(blocks) == math.ceil(lengths.sum() / 1024)  # optimal
    assert fill > 0.998


def test_pack_lengths_deterministic_and_seeded():
    lengths = np.random.default_rng(1).integers(10, 60, size=2000)
    a = pack_lengths(lengths, 512, seed=5)
    b = pack_lengths(lengths, 512, seed=5)
    c = pack_lengths(lengths, 512, seed=6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    assert any(not np.array_equal(x, y) for x, y in zip(a, c))
    unshuffled = pack_lengths(lengths, 512, shuffle=False)
    _check_partition(unshuffled, lengths, 512)


def test_pack_lengths_rejects_overlong():
    with pytest.raises(ValueError, match="more than block size"):
        pack_lengths([10, 600, 20], 512)


def test_build_blocks_layout():
    lengths = np.array([3, 5, 2, 4])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    flat = np.arange(1, offsets[-1] + 1, dtype=np.int32)
    labels = flat.copy()
    labels[::2] = IGNORE_INDEX
    blocks = [np.array([1, 2]), np.array([3, 0])]
    packed = build_blocks(flat, labels, offsets, blocks, 8, pad_token_id=0)
    assert packed.input_ids.tolist() == [[4, 5, 6, 7, 8, 9, 10, 0], [11, 12, 13, 14, 1, 2, 3, 0]]
    assert packed.labels[0, -1] == IGNORE_INDEX and packed.labels[1, -1] == IGNORE_INDEX
    assert packed.labels[0, :7].tolist() == labels[3:10].tolist()
    assert [s.tolist() for s in packed.seq_lengths] == [[5, 2, 1], [4, 3, 1]]


def test_collator_packed_and_unpacked_shapes():
    collate = PackedEpisodeCollator(pad_token_id=0)
    rows = [{"input_ids": [5, 6, 7, 8, 9, 0], "labels": [5, 6, 7, 8, 9, -100], "seq_lengths": [2, 3, 1]},
            {"input_ids": [1, 2, 3, 4, 0, 0], "labels": [1, 2, 3, 4, -100, -100], "seq_lengths": [4, 2]}]
    batch = collate(rows)
    assert "attention_mask" not in batch
    assert batch["position_ids"].tolist() == [[0, 1, 0, 1, 2, 0], [0, 1, 2, 3, 0, 1]]
    # first token of every segment is never a target
    assert batch["labels"].tolist() == [[-100, 6, -100, 8, 9, -100], [-100, 2, 3, 4, -100, -100]]
    assert batch["cu_seq_lens_q"].dtype == torch.int32
    assert batch["cu_seq_lens_q"].tolist() == [0, 2, 5, 6, 10, 12]
    assert batch["max_length_q"] == 4 and batch["max_length_k"] == 4
    # unpacked rows: right padding + attention mask, labels -100 on padding
    plain = collate([{"input_ids": [1, 2, 3], "labels": [-100, 2, 3], "seq_lengths": [3]},
                     {"input_ids": [4], "labels": [4], "seq_lengths": [1]}])
    assert plain["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert plain["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert plain["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]
    assert "position_ids" not in plain


def _tiny_model(vocab: int):
    mod = pytest.importorskip("mypt_hf.modeling_mypt")
    from mypt_hf.configuration_mypt import MyPTConfig

    torch.manual_seed(0)
    config = MyPTConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        max_position_embeddings=64, pos_encoding="rope", mlp_type="swiglu", norm_type="rmsnorm",
                        tie_word_embeddings=True, dropout=0.0)
    config._attn_implementation = "sdpa"
    return mod.MyPTForCausalLM(config).eval()


def _token_losses(logits, labels):
    """Per-position cross-entropy of predicting labels[t] from position t-1 (the model's own shift)."""
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.size(-1)),
                                             shift_labels.reshape(-1), ignore_index=IGNORE_INDEX, reduction="none")
    return loss.view(shift_labels.shape), shift_labels != IGNORE_INDEX


def test_collator_packed_loss_equals_episodes_alone():
    vocab = 64
    model = _tiny_model(vocab)
    rng = np.random.default_rng(0)
    episodes = []
    for n in (7, 5, 9, 4, 6, 8):
        ids = rng.integers(1, vocab, size=n).tolist()
        # realistic mask: prompt unsupervised, answer supervised; the first token is a target on purpose,
        # the collator must still not train it across the boundary
        labels = [ids[0]] + [IGNORE_INDEX] * (n // 2 - 1) + ids[n // 2:]
        episodes.append((ids, labels))
    block = 24
    rows = []
    for group in ([0, 1, 2], [3, 4, 5]):
        ids = sum((episodes[i][0] for i in group), [])
        labels = sum((episodes[i][1] for i in group), [])
        seq = [len(episodes[i][0]) for i in group]
        pad = block - len(ids)
        rows.append({"input_ids": ids + [0] * pad, "labels": labels + [IGNORE_INDEX] * pad, "seq_lengths": seq + [pad]})
    batch = PackedEpisodeCollator(pad_token_id=0)(rows)
    with torch.no_grad():
        packed_logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
    packed_loss, packed_mask = _token_losses(packed_logits, batch["labels"])
    got = [packed_loss[r][packed_mask[r]] for r in range(2)]

    alone = []
    for ids, labels in episodes:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits
        loss, mask = _token_losses(logits, torch.tensor([labels]))
        alone.append(loss[0][mask[0]])
    expected = [torch.cat(alone[:3]), torch.cat(alone[3:])]
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    # and the batch-mean loss the trainer computes equals the mean over the episodes' supervised tokens
    torch.testing.assert_close(torch.cat(got).mean(), torch.cat(expected).mean(), atol=1e-6, rtol=1e-6)


def test_collator_in_trl_sft_trainer(tmp_path):
    """Two optimizer steps of TRL's SFTTrainer on a packed prepared dataset with our collator."""
    trl = pytest.importorskip("trl")
    from mypt_hf.data.operators import operators
    from mypt_hf.data.prepare import PrepareConfig, prepare_dataset
    from mypt_hf.tokenization_mypt import load_tokenizer

    tok = load_tokenizer(None)
    splits = operators(n_train=120, n_val=12, tokenizer=tok)
    ds, _ = prepare_dataset(splits["train"], tok, config=PrepareConfig(val_split=0.0, enable_packing=True, pack_block_size=128, pack_by_field="_meta.operator"), verbose=False)
    model = _tiny_model(((len(tok) + 63) // 64) * 64)
    model.train()
    seen = []
    collator = PackedEpisodeCollator(pad_token_id=tok.pad_token_id)

    def spy(features):
        batch = collator(features)
        seen.append(batch)
        return batch

    config = trl.SFTConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, packing=False,
                           padding_free=False, dataset_kwargs={"skip_prepare_dataset": True}, max_length=128,
                           report_to=[], logging_steps=1, save_strategy="no", use_cpu=True, bf16=False,
                           activation_checkpointing=False, dataloader_num_workers=0)
    trainer = trl.SFTTrainer(model=model, args=config, train_dataset=ds["train"], processing_class=tok,
                             data_collator=spy)
    result = trainer.train()
    assert result.global_step == 2 and np.isfinite(result.training_loss)
    assert "position_ids" in seen[0] and "attention_mask" not in seen[0]
    assert seen[0]["input_ids"].shape == (2, 128)
