"""Gate buckets B-E on prompts, payloads and templates that no generator emits: how real is the generalisation?

    python benchmarks/held_out_gates.py [--output_root outputs/tiny] [--phases alpha,beta,...] [--verbose]

The suite's buckets B-D reuse prompts close to the training data (e.g. "Say Hello." while α trains on
"Say hello."), so a pass can be recall. This script asks the same kinds of questions with other words and
phrasings: new echo prefixes and payloads (B), new made-up words and question forms (C), new phrasings of sums
and facts (D) and operator templates/payloads outside the train, validation and reserved sets (E). Scoring is the
suite's own metric (``score_items``), so a held-out rate is directly comparable with the gate's rate.

Before anything runs, every held-out payload word is checked against the generators' word pools and the
reserved eval words, and every held-out operator template against the train/validation/reserved templates;
an overlap is an error. For each phase directory under ``--output_root`` that holds a model, prints the gate
rate (from its ``gate_report.json``) next to the held-out rate per bucket. Greedy decoding, deterministic.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Dict, List

from mypt_hf.evaluation.sft_eval_suite import sft_eval_suite as metric
from mypt_hf.evaluation.suite import EvalItem, score_items
from mypt_hf.tokens import OPERATOR_SYSTEM_PROMPT_EN

# B: prefixes none of the echo generator's 46; payloads outside every pool.
HELD_OUT_ECHO = (
    ("Parrot: Pineapple", "Pineapple"), ("Say it back: crooked antler", "crooked antler"), ("Copy this word: Marmalade", "Marmalade"),
    ("Mirror: rusty hinge", "rusty hinge"), ("Read aloud: Sunflower", "Sunflower"), ("Just type Walrus.", "Walrus"),
    ("Repeat the word Porcupine.", "Porcupine"), ("Kindly echo: brass thimble", "brass thimble"),
    ("Write back: 73", "73"), ("Say after me: Quokka", "Quokka"), ("Wiederhole das Wort: Sonnenblume", "Sonnenblume"),
    ("Copy: Tangerine dusk", "Tangerine dusk"),
    ("Duplicate: Hazelnut", "Hazelnut"), ("Send back: juniper thistle", "juniper thistle"),
    ("Repeat back: Lobster", "Lobster"), ("Tell me back: nutmeg waffle", "nutmeg waffle"),
    ("Parrot this: Pelican", "Pelican"), ("Return exactly: rhubarb", "rhubarb"), ("Mimic: Wombat", "Wombat"),
    ("Please echo: 58", "58"), ("Write the word Zeppelin.", "Zeppelin"), ("Echo back: Badger", "Badger"),
    ("Sag nach: Pistazie", "Pistazie"), ("Copy exactly: ember goblet", "ember goblet"),
)
# C: made-up words outside the echo generator's gibberish and the reserved list; new question forms.
HELD_OUT_ANTI_ECHO = (
    ('Explain "Drumblix".', "Drumblix"), ('Tell me about "Skorvane".', "Skorvane"), ('Is "Velmorph" a word?', "Velmorph"),
    ('What is the meaning of "Plonkrat"?', "Plonkrat"), ('Have you heard of "Gribbet"?', "Gribbet"),
    ('What language is "Zuvanto"?', "Zuvanto"), ('Can you define "Heptolin"?', "Heptolin"),
    ('Was heißt "Knurzel"?', "Knurzel"),
)
# D: new phrasings of sums, differences and facts.
HELD_OUT_REGRESSION = (
    ("How much is 6 + 3?", "9"), ("Compute 8 + 5.", "13"), ("What do you get from 9 - 4?", "5"),
    ("Calculate 12 - 7.", "5"), ("Which city is the capital of Italy?", "Rome"), ("Germany's capital?", "Berlin"),
    ("Is snow cold?", "Yes"), ("Can stones swim?", "No"),
    ("Add 4 and 3.", "7"), ("Subtract 3 from 10.", "7"), ("Sum of 5 and 6?", "11"), ("What is 2 plus 2?", "4"),
    ("Name the capital of Spain.", "Madrid"), ("The capital city of France is?", "Paris"),
    ("Do fish live in water?", "Yes"), ("Can a cat fly?", "No"),
)
# E: operator templates outside TRAIN/VAL/RESERVED; payloads outside every pool.
HELD_OUT_OPERATORS = (
    ("COPY", "Hand it back as is: `{payload}`", "birch harp"), ("COPY", "Say the same thing: '{payload}'", "walrus"),
    ("COPY", "Verbatim please |{payload}|", "cobalt glimmer"), ("COPY", "Reply with exactly `{payload}`", "porcupine"),
    ("COPY", "Give it back word for word: '{payload}'", "brisk ferret bog"), ("COPY", "Echo it: |{payload}|", "tangerine"),
    ("WRAP", "Bracket it up: `{payload}`", "gloomy harp"), ("WRAP", "Wrap '{payload}' in square brackets", "quokka"),
    ("WRAP", "Surround |{payload}| with [ ]", "cobalt"), ("WRAP", "Add [ and ] around `{payload}`", "brass walrus"),
    ("WRAP", "Square brackets around '{payload}', please", "marmalade jar"), ("WRAP", "Bracket: |{payload}|", "pineapple"),
    ("EXTRACT", 'Only the quoted part, please: "{payload}"', "cobalt fjord"), ("EXTRACT", 'Inside the quotes of "{payload}" is?', "harp"),
    ("EXTRACT", 'Lose the quotes: "{payload}"', "brisk walrus"), ("EXTRACT", 'Quote contents of "{payload}"', "sunflower"),
    ("EXTRACT", 'What is quoted here: "{payload}"', "brass glimmer"), ("EXTRACT", 'No quotes: "{payload}"', "porcupine"),
)


def check_held_out() -> None:
    """Fail loudly when a held-out payload word or operator template is something the project generates."""
    from mypt_hf.data import echo, format_lock, operators, wordlists
    from mypt_hf.data.reserved import RESERVED_CONTENT_WORDS, RESERVED_OPERATOR_TEMPLATES

    pools = set(RESERVED_CONTENT_WORDS)
    for module in (wordlists, echo, format_lock):
        for value in vars(module).values():
            if isinstance(value, (tuple, list)) and value and all(isinstance(v, str) for v in value):
                for text in value:
                    pools.update(w.lower() for w in re.findall(r"[A-Za-zÄÖÜäöüß]+", text))
    payload_words = [w for _, p in HELD_OUT_ECHO for w in re.findall(r"[A-Za-z]+", p)]
    payload_words += [w for _, w in HELD_OUT_ANTI_ECHO] + [w for *_, p in HELD_OUT_OPERATORS for w in p.split()]
    leaked = sorted({w for w in payload_words if w.lower() in pools})
    known = {t for op in operators.TRAIN_TEMPLATES
             for t in operators.TRAIN_TEMPLATES[op] + operators.VAL_TEMPLATES[op] + operators.CONTRAST_TEMPLATES[op]}
    known |= {t for templates in RESERVED_OPERATOR_TEMPLATES.values() for t in templates}
    reused = sorted({t for _, t, _ in HELD_OUT_OPERATORS if t in known})
    prefixes = {p.lower() for p in echo.ECHO_PREFIXES_EN + echo.ECHO_PREFIXES_DE}
    reused += sorted({u for u, _ in HELD_OUT_ECHO if u.split(":")[0].lower() + ":" in prefixes})
    if leaked or reused:
        raise SystemExit(f"held-out items that the generators also emit: words {leaked}, templates/prefixes {reused}")


def held_out_items() -> List[EvalItem]:
    """The held-out prompts as suite items (system prompts as in the suite)."""
    from mypt_hf.data.operators import expected_output, render

    items = [EvalItem(metric.ECHO_BASIC, f"echo_{i}", u, t) for i, (u, t) in enumerate(HELD_OUT_ECHO)]
    items += [EvalItem(metric.ANTI_ECHO, f"anti_echo_{i}", u, w) for i, (u, w) in enumerate(HELD_OUT_ANTI_ECHO)]
    items += [EvalItem(metric.REGRESSION_BASIC, f"regression_{i}", u, t) for i, (u, t) in enumerate(HELD_OUT_REGRESSION)]
    items += [EvalItem(metric.OPERATORS, f"{op.lower()}_{i}", render(template, payload), expected_output(op, payload),
                       system=OPERATOR_SYSTEM_PROMPT_EN, operator=op, payload=payload, word_count=len(payload.split()),
                       template=template)
              for i, (op, template, payload) in enumerate(HELD_OUT_OPERATORS)]
    return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_root", default="outputs/tiny")
    parser.add_argument("--phases", default=None, help="comma-separated phase names (default: every chat phase found; not the tiny base)")
    parser.add_argument("--max_new_tokens", type=int, default=24)
    parser.add_argument("--verbose", action="store_true", help="print every held-out reply")
    args = parser.parse_args()

    check_held_out()
    from mypt_hf.commands.eval import load_model_and_tokenizer
    from mypt_hf.generation import generate_replies
    from mypt_hf.phases.registry import CHAIN, PHASES, resolve_phases

    # by default the chat phases only: the tiny base is a plain copier with no chat format to score
    phases = resolve_phases(args.phases) if args.phases else [p for p in CHAIN if PHASES[p].gate_kind == "suite"]
    root = Path(args.output_root)
    items = held_out_items()
    rows: List[Dict] = []
    for phase in phases:
        directory = root / phase
        if not (directory / "config.json").is_file():
            continue
        model, tokenizer = load_model_and_tokenizer(str(directory))
        replies = generate_replies(model, tokenizer, [item.messages() for item in items],
                                   max_new_tokens=args.max_new_tokens, batch_size=64, progress=False)
        report = score_items(items, replies)
        gate = json.loads((directory / "gate_report.json").read_text()) if (directory / "gate_report.json").is_file() else {}
        row = {"phase": phase}
        for name, bucket in report["buckets"].items():
            suite = gate.get("buckets", {}).get(name, {})
            row[name] = (suite.get("rate"), bucket["rate"], bucket["passed"], bucket["total"])
            if args.verbose:
                for entry in bucket["items"]:
                    print(f"  {phase} {name} {'PASS' if entry['passed'] else 'FAIL'}: {entry['prompt']!r} -> "
                          f"{entry['generated']!r}")
        rows.append(row)
    if not rows:
        print(f"no phase model under {root}", file=sys.stderr)
        return 2
    names = [metric.ECHO_BASIC, metric.ANTI_ECHO, metric.REGRESSION_BASIC, metric.OPERATORS]
    print("| phase | " + " | ".join(f"{n}: gate / held-out" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for row in rows:
        cells = []
        for name in names:
            suite, held, passed, total = row[name]
            cells.append(f"{'-' if suite is None else f'{suite:.0%}'} / {held:.0%} ({passed}/{total})")
        print(f"| {row['phase']} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
