"""`mypt-hf mix`: the original mix_sft_jsonl.py, with weights as shares of the output."""

from __future__ import annotations

HELP = "Mix episode JSONL files; --weights are output shares (normalised), each row records its source."


def add_arguments(parser) -> None:
    parser.add_argument("--inputs", nargs="+", required=True, help="JSONL files (path or path:weight)")
    parser.add_argument("--weights", nargs="+", type=float, default=None,
                        help="one weight per input: output shares (default: inline :weight, else proportional to size)")
    parser.add_argument("--output", required=True, help="output JSONL; metadata goes to <output stem>.mix_meta.json")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output and its metadata")
    parser.add_argument("--shuffle", action="store_true", help="shuffle the mixed rows (as in the original)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--target_size", type=int, default=None,
                        help="output rows (default: the largest that uses no row twice; larger oversamples)")


def _split_inline(item: str):
    """``"file.jsonl:0.85"`` -> ``("file.jsonl", 0.85)``; a plain path -> ``(path, None)``."""
    from pathlib import Path

    from mypt_hf.errors import MyPTInputError

    path, sep, ratio = item.rpartition(":")
    if sep and path:
        try:
            return path, float(ratio)
        except ValueError:
            if Path(path).is_file():  # the file is there: what follows the ':' was meant as its weight
                raise MyPTInputError(f"weight {ratio!r} of input {path} is not a number (use path:0.85)",
                                     field="--inputs") from None
    return item, None


def run(args) -> int:
    from pathlib import Path

    from dataclasses import asdict

    import mypt_hf
    from mypt_hf.data.mixing import mix_with_metadata, summarize_episodes
    from mypt_hf.data.provenance import tokenizer_filters
    from mypt_hf.data.schema import load_episodes_jsonl, save_episodes_jsonl
    from mypt_hf.errors import MyPTInputError
    from mypt_hf.io_utils import atomic_files, check_outputs_writable, write_json

    parsed = [_split_inline(item) if not Path(item).is_file() else (item, None) for item in args.inputs]
    paths = [Path(p) for p, _ in parsed]
    inline = [r for _, r in parsed]
    if args.weights is not None and len(args.weights) != len(paths):
        raise MyPTInputError(f"{len(args.weights)} weights for {len(paths)} inputs: give one weight per input",
                             field="--weights")
    for path in paths:
        if not path.is_file():
            raise MyPTInputError("input file not found", path=str(path))
    if Path(args.output).resolve() in {path.resolve() for path in paths}:
        raise MyPTInputError("--output is one of the inputs; writing it would replace that input",
                             path=args.output, field="--output")
    output = Path(args.output)
    meta_path = output.with_name(output.stem + ".mix_meta.json")
    check_outputs_writable([output, meta_path], overwrite=args.overwrite, field="--output")
    # the inputs' token-count filters travel with the mix, so prepare can still check the tokenizer
    filters = [{"input": str(path), **asdict(f)} for path in paths for f in (tokenizer_filters(path) or [])]
    sets = [load_episodes_jsonl(path) for path in paths]
    if args.weights is not None:
        weights = list(args.weights)
    elif all(r is not None for r in inline):
        weights = inline
    elif any(r is not None for r in inline):
        raise MyPTInputError("give an inline :weight for every input or for none", field="--inputs")
    else:
        weights = [float(len(ds)) for ds in sets]
    names = [p.stem for p in paths]
    mixed, metadata = mix_with_metadata(sets, weights, target_size=args.target_size, shuffle=args.shuffle,
                                        seed=args.seed, names=names)
    metadata.update({"version": mypt_hf.__version__, "inputs": [str(p) for p in paths],
                     "args": {"inputs": args.inputs, "weights": args.weights, "output": args.output,
                              "shuffle": args.shuffle, "seed": args.seed, "target_size": args.target_size},
                     "counts": summarize_episodes(mixed), "tokenizer_filters": filters})
    with atomic_files([output, meta_path]) as temp:  # the mix and its metadata appear together
        save_episodes_jsonl(mixed, temp[output])
        write_json(temp[meta_path], metadata)
    shares = ", ".join(f"{s['source']} {s['quota']}" + (" (oversampled)" if s["oversampled"] else "")
                       for s in metadata["sources"])
    print(f"wrote {len(mixed)} episodes to {output}: {shares}")
    return 0
