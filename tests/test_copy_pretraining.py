"""The tiny base's copy-pretraining data and its copy-probe gate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mypt_hf.errors import MyPTInputError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tokenizer():
    from mypt_hf.tokenization_mypt import load_tokenizer

    return load_tokenizer(None)  # the embedded default


def test_rows_are_full_blocks_of_copies_with_the_loss_on_the_copies_only(tokenizer):
    from mypt_hf.data.copy_pretraining import copy_pretraining_dataset, ordinary_token_ids

    dataset, metadata = copy_pretraining_dataset(tokenizer, n_train_rows=40, n_val_rows=8, block_size=64, seed=3)
    assert (len(dataset["train"]), len(dataset["validation"])) == (40, 8)
    assert metadata.prepare_mode == "copy_pretraining" and metadata.block_size == 64
    ordinary = set(ordinary_token_ids(tokenizer))
    supervised = 0
    for row in dataset["train"]:
        ids, labels = np.array(row["input_ids"]), np.array(row["labels"])
        assert len(ids) == 64 and row["seq_lengths"] == [64]
        assert set(ids.tolist()) <= ordinary  # no chat tags: the base learns copying, not the format
        for i in np.flatnonzero(labels != -100):
            assert labels[i] == ids[i]  # aligned with input_ids (the model shifts)
            assert ids[i] in ids[:i]  # every supervised token is a copy of an earlier one
        supervised += int((labels != -100).sum())
    share = supervised / (40 * 64)
    assert 0.3 < share < 0.5  # about half of each segment is the copy (less the separator / first random token)
    assert metadata.splits["train"]["supervised_tokens"] == supervised


def test_same_arguments_same_rows_and_validation_is_new_text(tokenizer):
    from mypt_hf.data.copy_pretraining import copy_pretraining_dataset

    a, meta_a = copy_pretraining_dataset(tokenizer, n_train_rows=20, n_val_rows=20, block_size=64, seed=7)
    b, meta_b = copy_pretraining_dataset(tokenizer, n_train_rows=20, n_val_rows=20, block_size=64, seed=7)
    c, meta_c = copy_pretraining_dataset(tokenizer, n_train_rows=20, n_val_rows=0, block_size=64, seed=8)
    assert meta_a.content_fingerprints == meta_b.content_fingerprints
    assert a["train"]["input_ids"] == b["train"]["input_ids"]
    assert meta_c.content_fingerprints["train"] != meta_a.content_fingerprints["train"]
    assert a["train"]["input_ids"] != a["validation"]["input_ids"]


def _segments(tokenizer, n=200, **shares):
    from mypt_hf.data.copy_pretraining import _SegmentSource

    source = _SegmentSource(tokenizer, 5, 0.0, **shares)
    for _ in range(n):
        ids, labels = source.segment()
        start = next(i for i, label in enumerate(labels) if label != -100)
        assert labels[start:] == ids[start:] and all(label == -100 for label in labels[:start])
        yield tokenizer.decode(ids[:start]), tokenizer.decode(ids[start:])


def test_bare_copies_drop_only_the_leading_space_so_the_first_word_is_retokenized(tokenizer):
    retokenized = 0
    for source, copy in _segments(tokenizer, bare_share=1.0):
        assert not copy.startswith(" ")
        assert source.endswith(tuple(s for s in (" ->", ":", " =", "\n", " |", ".", ",", " and", " then")))
        assert source.startswith(" " + copy)  # the phrase, then the separator
        retokenized += tokenizer.encode(" " + copy, add_special_tokens=False)[0] != \
            tokenizer.encode(copy, add_special_tokens=False)[0]
    assert retokenized > 150  # the copy's first token is not the source's: it cannot be copied token for token


def test_framed_segments_copy_the_phrase_without_its_lead_words_or_quotes(tokenizer):
    quoted = bare = 0
    for source, copy in _segments(tokenizer, framed_share=1.0):
        words = copy.strip()
        assert source.startswith("\n")
        lead, _, tail = source[1:].partition(words)
        assert tail and lead and words not in lead  # lead words first, then the phrase, then quote / turn break
        assert lead[0].isupper() and tail.rstrip(" ->=|\n") in ("", '"', "'", "`", "|")
        quoted += tail[0] in "\"'`|"
        bare += not copy.startswith(" ")
    assert quoted > 20 and bare > 20  # some quoted phrases, some copies after a line break (no leading space)


def test_variants_start_keeps_the_first_rows_plain(tokenizer):
    from mypt_hf.data.copy_pretraining import copy_pretraining_dataset

    plain, _ = copy_pretraining_dataset(tokenizer, n_train_rows=20, block_size=64, seed=9)
    mixed, meta = copy_pretraining_dataset(tokenizer, n_train_rows=20, block_size=64, seed=9, bare_share=0.5,
                                           framed_share=0.5, variants_start=0.5)
    assert mixed["train"]["input_ids"][:10] == plain["train"]["input_ids"][:10]
    assert mixed["train"]["input_ids"][10:] != plain["train"]["input_ids"][10:]
    assert meta.copy_pretraining["variants_start"] == 0.5


@pytest.mark.parametrize("kwargs, field", [
    ({"n_train_rows": 0}, "copy_train_rows"),
    ({"n_train_rows": 4, "n_val_rows": -1}, "copy_val_rows"),
    ({"n_train_rows": 4, "block_size": 16}, "pack_block_size"),
    ({"n_train_rows": 4, "random_token_share": 1.5}, "copy_random_token_share"),
    ({"n_train_rows": 4, "bare_share": -0.1}, "copy_bare_share"),
    ({"n_train_rows": 4, "framed_share": 2.0}, "copy_framed_share"),
    ({"n_train_rows": 4, "variants_start": 1.5}, "copy_variants_start"),
])
def test_bad_arguments_are_refused(tokenizer, kwargs, field):
    from mypt_hf.data.copy_pretraining import copy_pretraining_dataset

    with pytest.raises(MyPTInputError) as error:
        copy_pretraining_dataset(tokenizer, **kwargs)
    assert error.value.field == field


class _Copier(torch.nn.Module):
    """A stand-in model whose greedy continuation of ``phrase ->`` is ``phrase`` (or a corrupted phrase)."""

    def __init__(self, tokenizer, corrupt_every: int = 0, bare: bool = False):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.tokenizer, self.bare = tokenizer, bare
        self.separator = tokenizer.encode(" ->", add_special_tokens=False)
        self.corrupt_every, self.calls = corrupt_every, 0

    def generate(self, input_ids, max_new_tokens, **kwargs):
        prompt = input_ids[0].tolist()
        copy = prompt[: len(prompt) - len(self.separator)]
        if self.bare:  # the phrase without its leading space, re-tokenized, as a chat reply starts
            copy = self.tokenizer.encode(self.tokenizer.decode(copy).lstrip(), add_special_tokens=False)
        copy = (copy + copy)[:max_new_tokens]
        self.calls += 1
        if self.corrupt_every and self.calls % self.corrupt_every == 0:
            copy = copy[::-1] if len(set(copy)) > 1 else [copy[0] + 1] + copy[1:]
        return torch.tensor([prompt + copy])


def test_copy_probe_scores_exact_copies_and_gates_on_the_threshold(tokenizer):
    from mypt_hf.evaluation.copy_probe import copy_probe, copy_probe_phrases
    from mypt_hf.evaluation.suite import format_report

    phrases = copy_probe_phrases(10)
    assert phrases == copy_probe_phrases(10) and len(set(phrases)) == 10
    report = copy_probe(_Copier(tokenizer), tokenizer, phrases, threshold=0.8)
    assert report["passed"] and report["buckets"]["copy"]["rate"] == 1.0
    report = copy_probe(_Copier(tokenizer, bare=True), tokenizer, phrases, threshold=0.8)
    assert report["buckets"]["copy"]["rate"] == 1.0  # a copy without the leading space counts too
    report = copy_probe(_Copier(tokenizer, corrupt_every=4), tokenizer, phrases, threshold=0.8)
    bucket = report["buckets"]["copy"]
    assert (bucket["passed"], bucket["total"], bucket["verdict"]) == (8, 10, "PASS")
    report = copy_probe(_Copier(tokenizer, corrupt_every=2), tokenizer, phrases, threshold=0.8)
    assert not report["passed"] and report["buckets"]["copy"]["passed"] == 5
    assert "copy" in format_report(report) and "OVERALL: FAIL (5/10 items)" in format_report(report)


def test_copy_replay_adds_the_share_of_copy_rows_and_keeps_every_prepared_row(tokenizer):
    from mypt_hf.data.copy_pretraining import add_copy_replay
    from mypt_hf.data.prepare import PrepareConfig, prepare_dataset

    import datasets

    episodes = datasets.Dataset.from_list([{"messages": [{"role": "user", "content": f"Say word{i}."},
                              {"role": "assistant", "content": f"word{i}."}]} for i in range(60)])
    dataset, metadata = prepare_dataset(episodes, tokenizer, config=PrepareConfig(val_split=0.1, enable_packing=True, pack_block_size=64, seed=1), verbose=False)
    n_prepared = len(dataset["train"])
    merged, merged_meta = add_copy_replay(dataset, metadata, tokenizer, 0.6, seed=4)
    again, again_meta = add_copy_replay(dataset, metadata, tokenizer, 0.6, seed=4)
    n_copy = round(0.6 / 0.4 * n_prepared)
    assert merged_meta.copy_replay["rows"] == n_copy and len(merged["train"]) == n_prepared + n_copy
    assert merged_meta.splits["train"]["rows"] == n_prepared + n_copy
    # every prepared row is still there once, in a shuffled order; validation is untouched
    rows = sorted(map(tuple, merged["train"]["input_ids"]))
    for row in dataset["train"]["input_ids"]:
        rows.remove(tuple(row))
    assert len(rows) == n_copy and merged["train"]["input_ids"][:n_prepared] != dataset["train"]["input_ids"]
    assert merged["validation"]["input_ids"] == dataset["validation"]["input_ids"]
    supervised = 0
    for row in merged["train"]:
        if row["seq_lengths"] == [64] and len(row["input_ids"]) == 64 and tuple(row["input_ids"]) in rows:
            ids, labels = np.array(row["input_ids"]), np.array(row["labels"])
            assert all(ids[i] in ids[:i] for i in np.flatnonzero(labels != -100))  # copies only
            supervised += int((labels != -100).sum())
    assert supervised == merged_meta.copy_replay["supervised_tokens"]
    assert merged_meta.splits["train"]["supervised_tokens"] == metadata.splits["train"]["supervised_tokens"] + supervised
    train_stats = merged_meta.splits["train"]
    assert train_stats["mask_ratio"] == train_stats["supervised_tokens"] / train_stats["tokens"]
    # deterministic; share 0 is a no-op; a bad share names the field
    assert again["train"]["input_ids"] == merged["train"]["input_ids"]
    assert again_meta.content_fingerprints == merged_meta.content_fingerprints != metadata.content_fingerprints
    assert add_copy_replay(dataset, metadata, tokenizer, 0.0) == (dataset, metadata)
    for share in (1.0, -0.2):
        with pytest.raises(MyPTInputError, match="copy replay share") as error:
            add_copy_replay(dataset, metadata, tokenizer, share)
        assert error.value.field == "copy_replay_share"
