"""Throughput of the ``transformers`` VLM reader: regions per second, on CUDA or CPU.

Builds a tiny random-weight VLM on the spot (the same builders as the tests, nothing is
downloaded) or loads ``--model PATH``, then

1. ``engine``: one page's region crops through ``TransformersEngine.complete`` at batch 1 and
   at ``--batch``, JSON-Schema-constrained; every answer is checked with jsonschema;
2. ``reader``: ``TransformersReader.read`` of a page with ``--regions`` detected regions.

Device and dtype are chosen as the reader does (CUDA + bfloat16 when present, else CPU +
float32) unless ``--device``/``--dtype`` say otherwise. Prints one line per measurement and
a JSON summary; exits 1 when an answer is not schema-valid.

    python tests/gpu_vlm_bench.py                       # tiny Idefics3, auto device
    python tests/gpu_vlm_bench.py --device cpu --threads 1
    python tests/gpu_vlm_bench.py --arch llava --hidden 512 --layers 8 --regions 64
    python tests/gpu_vlm_bench.py --model /models/SmolVLM-256M-Instruct
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

SCHEMA = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string", "title": "Vendor", "description": "Seller name."},
        "total": {"type": "number", "title": "Total", "description": "Amount due."},
        "date": {"type": "string", "format": "date", "title": "Date"},
    },
}


def _page_image(width: int = 1240, height: int = 1754):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    for i in range(40):
        draw.text(
            (60, 40 + i * 42), f"Line {i}: Widget {i}  qty 2  12.50  2024-01-{i % 28 + 1:02d}"
        )
    return img


def _regions(n: int, width: int, height: int):
    from docvlm.datamodel import Region

    rows = max(1, n)
    step = height / rows
    return [
        Region(label="text", bbox=(40.0, i * step + 2, width - 40.0, (i + 1) * step - 2), score=0.9)
        for i in range(n)
    ]


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="checkpoint dir or cached hub id (default: build a tiny one)")
    p.add_argument("--arch", choices=["idefics3", "llava"], default="idefics3")
    p.add_argument("--hidden", type=int, default=64, help="tiny model hidden size")
    p.add_argument("--layers", type=int, default=2, help="tiny model text layers")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto")
    p.add_argument("--regions", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = p.parse_args(argv)

    import torch
    from jsonschema import Draft202012Validator, FormatChecker

    from docvlm.datamodel import Page, ReaderOptions
    from docvlm.engines.vlm.transformers_engine import TransformersEngine
    from docvlm.read import get_reader
    from docvlm.read.base import DocumentContent
    from docvlm.read.vlm.answer import answer_schema, bounded_schema
    from docvlm.schema import schema_from_dict

    if args.threads:
        torch.set_num_threads(args.threads)
    model = args.model
    if model is None:
        import vlm_fixtures

        build = {"idefics3": vlm_fixtures.build_idefics3, "llava": vlm_fixtures.build_llava}
        t0 = time.perf_counter()
        model = str(
            build[args.arch](
                Path(tempfile.mkdtemp()) / args.arch, hidden=args.hidden, layers=args.layers
            )
        )
        print(f"built tiny {args.arch} (hidden {args.hidden}, {args.layers} layers) "
              f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip
    t0 = time.perf_counter()
    engine = TransformersEngine.for_device(model, args.device, args.dtype)
    engine.load()
    print(f"loaded {model} on {engine.device} ({engine.dtype}) in {time.perf_counter() - t0:.1f}s")
    if engine.device == "cuda":
        print(f"gpu: {torch.cuda.get_device_name(0)}")

    spec = schema_from_dict(SCHEMA, "bench")
    schema = answer_schema(spec, spec.fields, [])
    grammar = bounded_schema(schema, 300, 100)
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    img = _page_image()
    regions = _regions(args.regions, img.width, img.height)
    crops = [img.crop(tuple(int(v) for v in r.bbox)) for r in regions]
    convs = [
        [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": crop},
                    {"type": "text", "text": "Extract vendor, total and date as JSON."},
                ],
            }
        ]
        for crop in crops
    ]
    # warm-up (kernels, caches, grammar compilation)
    engine.complete(convs[:2], [grammar] * 2, args.max_new_tokens)

    summary: dict[str, object] = {
        "device": engine.device,
        "dtype": engine.dtype,
        "model": args.model or f"tiny-{args.arch}-h{args.hidden}-l{args.layers}",
        "regions": args.regions,
        "max_new_tokens": args.max_new_tokens,
    }
    invalid = 0
    for batch in sorted({1, args.batch}):
        TransformersEngine.batch_size = batch
        calls0 = engine.stats.calls
        _sync(engine.device)
        t0 = time.perf_counter()
        completions = engine.complete(convs, [grammar] * len(convs), args.max_new_tokens)
        _sync(engine.device)
        dt = time.perf_counter() - t0
        bad = 0
        tokens = 0
        for c in completions:
            tokens += len(c.token_bytes or [])
            try:
                if c.error or list(validator.iter_errors(json.loads(c.text))):
                    bad += 1
            except ValueError:
                bad += 1
        invalid += bad
        rate = len(convs) / dt
        print(
            f"engine batch {batch:3d}: {len(convs)} regions in {dt:.2f}s = {rate:.1f} regions/s, "
            f"{tokens / dt:.0f} tokens/s, {engine.stats.calls - calls0} generate calls, "
            f"{bad} invalid"
        )
        summary[f"engine_regions_per_s_batch{batch}"] = round(rate, 2)

    TransformersEngine.batch_size = args.batch
    page = Page(number=1, width=img.width, height=img.height, dpi=150, regions=regions)
    doc = DocumentContent(doc_id="bench", source="bench.png", pages=[page], image=lambda n: img)
    reader = get_reader(
        ReaderOptions(
            kind="transformers",
            model=model,
            device=args.device,
            dtype=args.dtype,
            max_new_tokens=args.max_new_tokens,
        )
    )
    _sync(engine.device)
    t0 = time.perf_counter()
    result = reader.read(doc, spec)
    _sync(engine.device)
    dt = time.perf_counter() - t0
    rate = args.regions / dt
    print(
        f"reader: {args.regions} regions in {dt:.2f}s = {rate:.1f} regions/s, "
        f"{result.calls} generate calls, {len(result.values)} values, {len(result.errors)} errors"
    )
    summary["reader_regions_per_s"] = round(rate, 2)
    summary["reader_calls"] = result.calls
    summary["invalid_answers"] = invalid
    print(json.dumps(summary))
    return 1 if invalid else 0


if __name__ == "__main__":
    raise SystemExit(main())
