"""The CLI starts without torch, and `import mypt_hf` still registers MyPT with the Auto classes.

Each check runs in a fresh interpreter: what a module imports shows only in a clean sys.modules.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ("torch", "transformers.modeling_utils")


def run_python(code: str, *args: str, cwd: Path = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, *args] + (["-c", textwrap.dedent(code)] if code else [])
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def check(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_building_every_parser_imports_no_torch():
    out = check(run_python(f"""
        import pkgutil, sys
        import mypt_hf.cli as cli
        import mypt_hf.commands
        cli.build_parser()
        commands = [m.name.replace("_", "-") for m in pkgutil.iter_modules(mypt_hf.commands.__path__)]
        for command in commands:
            cli.build_command_parser(command)
        print(sorted(commands))
        print([name for name in {HEAVY!r} if name in sys.modules])
    """))
    commands, heavy = out.strip().splitlines()[-2:]
    assert "prepare-chat-sft" in commands and "train" in commands and "run-phases" in commands
    assert heavy == "[]", f"building the CLI parsers imported {heavy}"


def test_import_mypt_hf_and_light_modules_import_no_torch():
    out = check(run_python("""
        import sys
        import mypt_hf, mypt_hf.tokens, mypt_hf.errors, mypt_hf.io_utils, mypt_hf.phases.registry
        assert mypt_hf.DEFAULT_SYSTEM_PROMPT and len(mypt_hf.TAGS) == 19
        assert {"MyPTConfig", "MyPTForCausalLM", "MyPTModel"} <= set(dir(mypt_hf))
        print([name for name in ("torch", "transformers") if name in sys.modules])
    """))
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv", [["--help"], ["prepare-chat-sft", "--help"], ["run-phases", "--help"],
                                  ["train", "--help"]], ids=" ".join)
def test_help_exits_zero_without_torch(argv):
    out = check(run_python("", "-m", "mypt_hf.cli", *argv))
    if argv == ["--help"]:
        assert "prepare-chat-sft" in out and "Tokenize episodes" in out  # subcommands listed with their HELP
    else:
        assert out.startswith(f"usage: mypt-hf {argv[0]}")
    # the same through main, as the console script runs it, to see what it imported
    out = check(run_python(f"""
        import runpy, sys
        sys.argv = ["mypt-hf", *{argv!r}]
        try:
            runpy.run_module("mypt_hf.cli", run_name="__main__")
        except SystemExit as stop:
            print("EXIT", stop.code, [name for name in {HEAVY!r} if name in sys.modules])
    """))
    assert out.strip().splitlines()[-1] in ("EXIT 0 []", "EXIT None []")


def test_main_dispatch_and_exit_codes(tmp_path, capsys):
    from mypt_hf.cli import main

    assert main([]) == 2  # no subcommand: the help, exit 2
    assert "<subcommand>" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:
        main(["no-such-command"])
    assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    missing = tmp_path / "missing.jsonl"
    assert main(["mix", "--inputs", str(missing), "--output", str(tmp_path / "out.jsonl")]) == 2
    assert "mypt-hf mix: error:" in capsys.readouterr().err


def test_deferred_registration_waits_and_catches_up():
    """The CLI's parsers may load transformers (HfArgumentParser) without torch; the registration follows."""
    out = check(run_python("""
        import sys
        import mypt_hf
        with mypt_hf.defer_auto_registration(catch_up=False):
            from transformers import HfArgumentParser  # noqa: F401
        print("torch" in sys.modules, "mypt_hf.modeling_mypt" in sys.modules)
        mypt_hf.MyPTForCausalLM  # first use: registers
        from transformers import AutoConfig
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING
        config = AutoConfig.for_model("mypt")
        print(type(config).__module__, MODEL_FOR_CAUSAL_LM_MAPPING[type(config)].__module__)
    """))
    assert out.strip().splitlines()[-2:] == ["False False", "mypt_hf.configuration_mypt mypt_hf.modeling_mypt"]
    out = check(run_python("""
        import sys
        import mypt_hf
        with mypt_hf.defer_auto_registration():
            import transformers  # noqa: F401
            print("torch" in sys.modules)
        print("mypt_hf.modeling_mypt" in sys.modules)
    """))
    assert out.strip().splitlines()[-2:] == ["False", "True"]


# ------------------------------------------------------------------------- Auto classes, no remote code


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("auto") / "model"
    check(run_python(f"""
        import torch
        from mypt_hf.configuration_mypt import MyPTConfig
        from mypt_hf.modeling_mypt import MyPTForCausalLM
        torch.manual_seed(0)
        MyPTForCausalLM(MyPTConfig(vocab_size=96, n_embd=32, n_head=4, n_layer=2, block_size=64)).save_pretrained(
            {str(path)!r})
    """))
    return path


LOAD = textwrap.dedent("""
    from transformers import AutoConfig, AutoModelForCausalLM
    config = AutoConfig.from_pretrained({path!r})
    model = AutoModelForCausalLM.from_pretrained({path!r})
    print(type(config).__module__ + "." + type(config).__name__)
    print(type(model).__module__ + "." + type(model).__name__)
""")

IMPORT_ORDERS = {
    "mypt_hf-then-transformers": "import mypt_hf\nimport transformers\n",
    "transformers-then-mypt_hf": "import transformers\nimport mypt_hf\n",
    "modeling-module-first": "from mypt_hf.modeling_mypt import MyPTForCausalLM\n",
    "configuration-module-first": "from mypt_hf.configuration_mypt import MyPTConfig\n",
    "trl-after-mypt_hf": "import mypt_hf\nfrom trl import SFTConfig\n",
}


@pytest.mark.parametrize("order", list(IMPORT_ORDERS))
def test_auto_classes_load_a_saved_model_without_trust_remote_code(saved_model_dir, order):
    # No trust_remote_code: transformers would refuse the dir's copied code, so only the registration can load it.
    out = check(run_python(IMPORT_ORDERS[order] + LOAD.format(path=str(saved_model_dir)), cwd=saved_model_dir.parent))
    assert out.strip().splitlines()[-2:] == ["mypt_hf.configuration_mypt.MyPTConfig",
                                             "mypt_hf.modeling_mypt.MyPTForCausalLM"]


def test_without_mypt_hf_the_architecture_is_unknown(saved_model_dir):
    """The check above can fail: plain transformers does not know "mypt" without remote code."""
    result = run_python(f"""
        from transformers import AutoConfig
        AutoConfig.from_pretrained({str(saved_model_dir)!r}, trust_remote_code=False)
    """)
    assert result.returncode != 0
