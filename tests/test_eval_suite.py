"""The eval suite: bucket contents, the runner end to end on a tiny random MyPT model, and `mypt-hf eval`."""

from __future__ import annotations

import json

import pytest
import torch

from mypt_hf import tokens
from mypt_hf.cli import main
from mypt_hf.configuration_mypt import MyPTConfig
from mypt_hf.data import operators as generator
from mypt_hf.data.reserved import RESERVED_ANTI_ECHO_WORDS, RESERVED_OPERATOR_PAYLOADS, RESERVED_OPERATOR_TEMPLATES
from mypt_hf.errors import MyPTInputError
from mypt_hf.evaluation.suite import build_items, format_report, resolve_buckets, run_eval_suite, score_items
from mypt_hf.modeling_mypt import MyPTForCausalLM, set_mypt_generation_config
from mypt_hf.tokenization_mypt import load_tokenizer, model_vocab_size


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = MyPTConfig(vocab_size=model_vocab_size(tokenizer), hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=256)
    model = MyPTForCausalLM(config).eval()
    set_mypt_generation_config(model, tokenizer)
    return model


@pytest.fixture(scope="module")
def model_dir(model, tokenizer, tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_bucket_contents():
    items = build_items()
    counts = {}
    for item in items:
        counts[item.bucket] = counts.get(item.bucket, 0) + 1
    assert counts == {"format_strict": 5, "echo_basic": 8, "anti_echo": 4, "regression_basic": 7,
                      "operators": len(RESERVED_OPERATOR_PAYLOADS)}
    assert all(i.system == tokens.DEFAULT_SYSTEM_PROMPT for i in items if i.bucket != "operators")
    echo = {i.user: i.reference for i in items if i.bucket == "echo_basic"}
    assert echo["Repeat: Hello world"] == "Hello world" and echo["Say 42."] == "42"
    assert {i.reference for i in items if i.bucket == "anti_echo"} <= set(RESERVED_ANTI_ECHO_WORDS)


def test_operator_bucket_uses_reserved_payloads_and_templates_only():
    items = build_items(["E"])
    assert sorted(i.payload for i in items) == sorted(RESERVED_OPERATOR_PAYLOADS)  # each payload once
    generator_templates = {t for op in generator.OPERATORS
                           for t in generator.TRAIN_TEMPLATES[op] + generator.VAL_TEMPLATES[op]}
    for item in items:
        assert item.template in RESERVED_OPERATOR_TEMPLATES[item.operator]
        assert item.template not in generator_templates
        assert item.user == item.template.replace("{payload}", item.payload)
        assert item.reference == (f"[{item.payload}]" if item.operator == "WRAP" else item.payload)
        assert item.system == tokens.OPERATOR_SYSTEM_PROMPT_EN
        assert item.word_count == len(item.payload.split())
    by_op = {op: sorted(i.word_count for i in items if i.operator == op) for op in generator.OPERATORS}
    assert by_op["COPY"] == by_op["WRAP"] == by_op["EXTRACT"]  # same length mix per operator

    val_items = build_items(["E"], use_val_templates=True)
    for item in val_items:
        assert item.template in generator.VAL_TEMPLATES[item.operator]
        german = item.template in generator.VAL_TEMPLATES_BY_LANGUAGE[item.operator]["de"]
        assert item.system == (tokens.OPERATOR_SYSTEM_PROMPT_DE if german else tokens.OPERATOR_SYSTEM_PROMPT_EN)


def test_prompts_render_with_the_training_chat_template(tokenizer):
    item = build_items(["B"])[0]
    text = tokenizer.apply_chat_template(item.messages(), tokenize=False, add_generation_prompt=True)
    assert text == (f"{tokens.SYSTEM_OPEN}{tokens.DEFAULT_SYSTEM_PROMPT}{tokens.SYSTEM_CLOSE}"
                    f"{tokens.USER_OPEN}Say Hello.{tokens.USER_CLOSE}{tokens.ASSISTANT_OPEN}")


def test_resolve_buckets():
    assert resolve_buckets(["e", "A"]) == ["format_strict", "operators"]
    assert resolve_buckets(["anti_echo"]) == ["anti_echo"]
    with pytest.raises(MyPTInputError, match="unknown bucket"):
        resolve_buckets(["F"])


def test_perfect_answers_pass_every_gate():
    items = build_items()
    perfect = []
    for item in items:
        if item.bucket == "format_strict":
            perfect.append("OK" + tokens.ASSISTANT_CLOSE)
        elif item.bucket == "anti_echo":
            perfect.append("I don't know." + tokens.ASSISTANT_CLOSE)
        else:
            perfect.append(item.reference + "." + tokens.ASSISTANT_CLOSE)
    report = score_items(items, perfect)
    assert report["passed"] and all(b["rate"] == 1.0 for b in report["buckets"].values())
    assert report["buckets"]["operators"]["by_operator"]["WRAP"]["rate"] == 1.0
    assert "OVERALL: PASS" in format_report(report)


def test_runner_on_tiny_random_model_fails_gates(model, tokenizer):
    report = run_eval_suite(model, tokenizer, buckets=["A", "B", "E"], batch_size=16, max_new_tokens=16,
                            progress=False)
    assert not report["passed"]
    assert set(report["buckets"]) == {"format_strict", "echo_basic", "operators"}
    bucket = report["buckets"]["echo_basic"]
    assert bucket["total"] == 8 and bucket["threshold"] == 0.8 and bucket["verdict"] == "FAIL" and bucket["gated"]
    assert all("generated" in item and "prompt" in item for item in bucket["items"])
    table = format_report(report, verbose=True)
    assert "echo_basic" in table and "FAIL" in table and "prompt:" in table and "OVERALL: FAIL" in table


def test_cli_eval_exit_1_and_report_written(model_dir, tmp_path, capsys):
    out = tmp_path / "report.json"
    rc = main(["eval", "--model", str(model_dir), "-v", "--output", str(out), "--buckets", "A,B",
               "--batch_size", "8", "--max_new_tokens", "12", "--no_progress"])
    assert rc == 1
    report = json.loads(out.read_text())
    assert report["passed"] is False and set(report["buckets"]) == {"format_strict", "echo_basic"}
    assert report["model"] == str(model_dir) and report["settings"]["max_new_tokens"] == 12
    printed = capsys.readouterr()
    assert "Say Hello." in printed.out and "FAIL" in printed.err


def test_cli_eval_exit_0_when_gates_pass_and_2_on_bad_input(model_dir, tmp_path):
    rc = main(["eval", "--model", str(model_dir), "--buckets", "C", "--threshold", "C=0", "--max_new_tokens", "4",
               "--no_progress", "--output", str(tmp_path / "r.json")])
    assert rc == 0 and json.loads((tmp_path / "r.json").read_text())["passed"] is True
    assert main(["eval", "--model", str(model_dir), "--buckets", "Z", "--no_progress"]) == 2
    assert main(["eval", "--model", str(tmp_path / "missing"), "--no_progress"]) == 2
    assert main(["eval", "--model", str(model_dir), "--threshold", "C=2", "--no_progress"]) == 2


@pytest.mark.parametrize("flags, field", [(["--batch_size", "0"], "batch_size"), (["--max_new_tokens", "0"],
                                                                                 "max_new_tokens"),
                                          (["--device", "bogus"], "device"), (["--device", "cuda:7"], "device")])
def test_cli_eval_refuses_bad_numbers_and_devices(model_dir, capsys, flags, field):
    import torch

    if field == "device" and "cuda" in flags[1] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["eval", "--model", str(model_dir), "--buckets", "A", *flags]) == 2
    err = capsys.readouterr().err
    assert f"field '{field}'" in err and "Traceback" not in err
