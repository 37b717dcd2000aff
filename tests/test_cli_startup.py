"""An instant CLI: building any parser imports no torch; `import mypt_hf` still registers the Auto classes, in
whichever order transformers and mypt_hf are imported. Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ENV = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")


def python(code: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env=ENV, cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_building_every_parser_imports_no_torch():
    # as cli.main builds them: with the Auto-class registration held back until parsing is done (a parser built
    # by transformers' HfArgumentParser loads transformers, whose loading would otherwise register MyPT, i.e.
    # import torch; main then registers before running the command)
    result = python(
        "import json, sys\n"
        "import mypt_hf, mypt_hf.cli as cli\n"
        "commands = list(cli._command_modules())\n"
        "with mypt_hf.defer_auto_registration():\n"
        "    for command in commands:\n"
        "        cli.build_command_parser(command)\n"
        "    cli.build_parser()\n"
        "    print(json.dumps({'commands': commands, 'torch': 'torch' in sys.modules,\n"
        "                      'modeling': 'transformers.modeling_utils' in sys.modules}))\n")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"train", "prepare-chat-sft", "run-phases", "generate", "eval"} <= set(report["commands"])
    assert report == {**report, "torch": False, "modeling": False}


@pytest.mark.parametrize("argv", [["--help"], ["prepare-chat-sft", "--help"], ["run-phases", "--help"],
                                  ["train", "--help"]])
def test_help_exits_0_without_torch(argv):
    result = python("import runpy, sys\n"
                    f"sys.argv = ['mypt-hf', *{argv!r}]\n"
                    "try:\n"
                    "    runpy.run_module('mypt_hf.cli', run_name='__main__')\n"
                    "except SystemExit as exit:\n"
                    "    print('EXIT', exit.code, 'torch' in sys.modules)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] in ("EXIT 0 False", "EXIT None False"), result.stdout[-500:]
    assert "usage: mypt-hf" in result.stdout


SAVE = """
import mypt_hf
from mypt_hf.configuration_mypt import MyPTConfig
from mypt_hf.modeling_mypt import MyPTForCausalLM
MyPTForCausalLM(MyPTConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           max_position_embeddings=32)).save_pretrained({path!r})
"""

LOAD = {
    "mypt_hf first": "import mypt_hf\nfrom transformers import AutoConfig, AutoModelForCausalLM\n",
    "transformers first": "from transformers import AutoConfig, AutoModelForCausalLM\nimport mypt_hf\n",
    "trl after mypt_hf": "import mypt_hf\nimport trl\nfrom transformers import AutoConfig, AutoModelForCausalLM\n",
    "modeling module first": "from mypt_hf.modeling_mypt import MyPTForCausalLM\n"
                             "from transformers import AutoConfig, AutoModelForCausalLM\n",
}


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_mypt")
    result = python(SAVE.format(path=str(path)))
    assert result.returncode == 0, result.stderr
    return path


@pytest.mark.parametrize("order", list(LOAD))
def test_import_mypt_hf_registers_the_auto_classes(saved_dir, order):
    code = LOAD[order] + (
        f"model = AutoModelForCausalLM.from_pretrained({str(saved_dir)!r})\n"
        f"config = AutoConfig.from_pretrained({str(saved_dir)!r})\n"
        "print(type(model).__module__, type(model).__name__, type(config).__name__)\n")
    result = python(code)
    assert result.returncode == 0, result.stderr[-2000:]
    # the package's own classes, not a trust_remote_code copy (transformers_modules.*)
    assert result.stdout.split() == ["mypt_hf.modeling_mypt", "MyPTForCausalLM", "MyPTConfig"]


def test_without_mypt_hf_the_classes_are_not_registered(saved_dir):
    """The check above can fail: plain transformers does not know the architecture without remote code."""
    result = python("from transformers import AutoConfig\n"
                    f"AutoConfig.from_pretrained({str(saved_dir)!r}, trust_remote_code=False)\n")
    assert result.returncode != 0


def test_light_modules_import_no_torch():
    result = python("import sys\nimport mypt_hf, mypt_hf.tokens, mypt_hf.errors, mypt_hf.phases.registry\n"
                    "print('torch' in sys.modules, 'transformers' in sys.modules)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
