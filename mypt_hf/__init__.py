"""mypt_hf: the MyPT Phase 3a supervised fine-tuning pipeline on the Hugging Face stack.

Importing the package registers MyPT with transformers' Auto classes.
"""

__version__ = "0.1.0"

from .tokens import DEFAULT_SYSTEM_PROMPT, TAGS  # noqa: E402,F401

try:  # the model files may be absent while the package is being built up
    from .configuration_mypt import MyPTConfig  # noqa: F401
    from .modeling_mypt import MyPTForCausalLM, MyPTModel  # noqa: F401
except ImportError:  # pragma: no cover
    pass
else:
    from transformers import AutoConfig, AutoModelForCausalLM

    AutoConfig.register(MyPTConfig.model_type, MyPTConfig, exist_ok=True)
    AutoModelForCausalLM.register(MyPTConfig, MyPTForCausalLM, exist_ok=True)
