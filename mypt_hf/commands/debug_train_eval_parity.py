"""`mypt-hf debug-train-eval-parity`: eval-mode determinism and the train/eval loss gap on prepared val data."""

from __future__ import annotations

import argparse

HELP = ("Check eval-mode loss/logits repeat within 1e-5 and report the train-vs-eval loss gap on a prepared "
        "dataset's validation batches; exit 1 on failure.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="model dir, or a model name: <checkpoints>/<name> "
                             "($MYPT_CHECKPOINTS_DIR, default ./checkpoints)")
    parser.add_argument("--dataset_dir", required=True, help="prepared dataset directory (mypt-hf prepare-chat-sft)")
    parser.add_argument("--split", default="validation", help="split to use (default: validation; 'val' accepted)")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--n_batches", type=int, default=5)
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--output", default=None, help="write the result as JSON here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print per-batch losses")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mypt_hf.commands.eval import resolve_device
    from mypt_hf.data.metadata import METADATA_FILE, PreparedMetadata
    from mypt_hf.errors import GateFailure, MyPTInputError
    from mypt_hf.evaluation.parity import format_parity, train_eval_parity
    from mypt_hf.io_utils import write_json
    from mypt_hf.model_files import check_saved_model_dir, load_causal_lm
    from mypt_hf.training.dataset_files import load_dataset_dict_checked

    for name in ("batch_size", "n_batches"):
        if getattr(args, name) < 1:
            raise MyPTInputError(f"--{name} must be >= 1, got {getattr(args, name)}", field=name)
    device = resolve_device(args.device)
    check_saved_model_dir(args.model, need_tokenizer=False)
    if not Path(args.dataset_dir).is_dir():
        raise MyPTInputError("dataset directory not found", path=args.dataset_dir, field="dataset_dir")
    if not (Path(args.dataset_dir) / METADATA_FILE).is_file():
        raise MyPTInputError(f"not a prepared dataset (no {METADATA_FILE})", path=args.dataset_dir, field="dataset_dir")
    # The check needs only the rows; the metadata is read (and checked) only for a model without a pad id.
    dataset = load_dataset_dict_checked(args.dataset_dir)
    split = "validation" if args.split == "val" else args.split
    if split not in dataset:
        raise MyPTInputError(f"split {split!r} not in the dataset (has {', '.join(dataset)})",
                             path=args.dataset_dir, field="split")
    model = load_causal_lm(args.model)
    model.to(device)
    pad_id = model.config.pad_token_id
    if pad_id is None:
        pad_id = PreparedMetadata.load(args.dataset_dir).pad_token_id
        pad_id = 0 if pad_id is None else pad_id
    result = train_eval_parity(model, dataset[split], pad_token_id=int(pad_id), batch_size=args.batch_size,
                               n_batches=args.n_batches)
    print(format_parity(result, verbose=args.verbose))
    if args.output:
        write_json(args.output, result)
    if not result["passed"]:
        failed = [c["name"] for c in result["checks"] if not c["passed"]]
        raise GateFailure(f"train/eval parity failed: {', '.join(failed)}")
    return 0
