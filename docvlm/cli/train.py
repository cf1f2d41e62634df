"""``docvlm train``: fit the learned reader's scorer on a folder of labelled documents."""

from __future__ import annotations

import argparse
import json

from docvlm.cli.exitcodes import Exit


def register(sub) -> None:
    tr = sub.add_parser(
        "train",
        help="train the learned reader's scorer on labelled documents (label JSON per document)",
    )
    tr.add_argument(
        "labelled", nargs="*", help="folders: documents with labels/<stem>.json or <stem>.json"
    )
    tr.add_argument("--schema", help="JSON Schema the labels follow (needed with folders)")
    tr.add_argument("--out", required=True, help="model folder to write (scorer.onnx + .json)")
    tr.add_argument("--generated", type=int, default=0, help="add this many generated documents")
    tr.add_argument("--rounds", type=int, default=400, help="boosting rounds (at most)")
    tr.add_argument("--seed", type=int, default=0)
    tr.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from docvlm.errors import ConfigError
    from docvlm.read.learned.train import labelled_folder, train
    from docvlm.schema import load_schema

    if args.labelled and not args.schema:
        raise ConfigError("--schema is needed to read labelled folders")
    if not args.labelled and not args.generated:
        raise ConfigError("nothing to train on: give labelled folders and/or --generated N")
    docs = []
    if args.labelled:
        from docvlm.pipeline import Pipeline

        schema, pipeline = load_schema(args.schema), Pipeline()
        for folder in args.labelled:
            docs.extend(labelled_folder(folder, schema, pipeline))
    if args.generated:
        from docvlm.read.learned.generator import TRAIN_TEMPLATES, generate_labelled

        docs.extend(
            generate_labelled(args.generated, seed=args.seed + 1, templates=TRAIN_TEMPLATES)
        )
    if not docs:
        raise ConfigError("no labelled document found")
    meta = train(docs, args.out, rounds=args.rounds, seed=args.seed)
    summary = {k: meta[k] for k in ("trained_on", "held_out", "examples", "positives", "rounds",
                                    "held_out_accuracy", "train_seconds")}  # fmt: skip
    print(json.dumps(summary, indent=1))
    print(f"model written to {args.out}; use it with reader: {{kind: learned, model: {args.out}}}")
    return Exit.OK
