"""CLI subcommands, one module each (see mypt_hf/cli.py for the contract)."""
