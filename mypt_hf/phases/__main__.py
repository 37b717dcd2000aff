"""``python -m mypt_hf.phases <phase> [--config NAME|FILE] [--key value ...]``: one phase from an installed package."""

from .recipes import main

main()
