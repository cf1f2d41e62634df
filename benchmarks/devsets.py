"""Measure readers on the labelled dev sets beside the project (``../shared/datasets``).

Not a test and not part of the product: the sets are research-only and never copied into the
repository. Page content (text layer or OCR lines, the expensive part) is computed once per
document with the real pipeline and cached outside the repo, so readers can be compared
cheaply on exactly the same lines.

    python benchmarks/devsets.py cache                  # OCR / text layer, once (minutes)
    python benchmarks/devsets.py eval --reader learned  # per set, per field, test part
    python benchmarks/devsets.py eval --reader ocr      # the rules-only reader (ablation)
    python benchmarks/devsets.py eval --variant reworded2  # the same, other users' schemas
    python benchmarks/devsets.py train --generated 300  # the shipped scorer (+ schema variants)
    python benchmarks/devsets.py train-pairs            # the form key→value linker (FUNSD)

Each set comes with the plain schema a user would write for it (``benchmarks/schemas/``), and
two rewordings of it as other users would write them (``benchmarks/schemas/reworded*/``).
Which part of a set a document belongs to is fixed by :func:`docvlm.read.learned.split.part`
(a hash of the file name): models train on ``train``, figures are quoted on ``test``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets"
SCHEMAS = ROOT / "benchmarks" / "schemas"
DEFAULT_CACHE = Path("/tmp/docvlm-devcache")


@dataclass(frozen=True)
class DevSet:
    name: str
    folder: str  # documents, under the set
    pattern: str
    schema: str  # file under benchmarks/schemas or schemas/
    month_first: bool = False  # labels print dates month first (the set's README says so)


SETS = {
    "sroie": DevSet("sroie", "images", "*.jpg", "sroie.schema.json"),
    "wildreceipt": DevSet("wildreceipt", "images", "*.jpg", "wildreceipt.schema.json"),
    "adbuy": DevSet("adbuy", "pdfs", "*.pdf", "adbuy.schema.json", month_first=True),
    "einvoice": DevSet("einvoice", "pdfs", "*.pdf", "einvoice.schema.json"),
    "funsd": DevSet("funsd", "images", "*.png", "funsd.schema.json"),
}


#: the same sets read with schemas worded as other users would write them (other names,
#: few or no descriptions), in ``benchmarks/schemas/<variant>/``: the reader must not depend
#: on the wording of the schemas it trained with. variant -> set -> {field: the label's key}.
#: ``reworded2`` was written after ``reworded`` had been used to choose the training set-up
#: (schema variants, group matching), as a check nothing was chosen on.
REWORDED = {
    "reworded": {
        "sroie": {"merchant": "company", "merchant_address": "address",
                  "purchase_date": "date", "amount_paid": "total"},
        "wildreceipt": {"shop": "store_name", "transaction_date": "date", "grand_total": "total"},
        "adbuy": {"order_id": "contract_number", "client": "advertiser",
                  "total_cost": "gross_amount", "start_date": "flight_from",
                  "end_date": "flight_to"},
        "einvoice": {"number": "invoice_number", "issued_on": "invoice_date", "vendor": "seller",
                     "customer": "buyer", "currency_code": "currency", "amount_due": "total",
                     "vat_amount": "tax"},
    },
    "reworded2": {
        "sroie": {"vendor_name": "company", "location": "address", "date_of_sale": "date",
                  "total_amount": "total"},
        "wildreceipt": {"retailer": "store_name", "receipt_date": "date", "amount": "total"},
        "adbuy": {"order_number": "contract_number", "advertiser_name": "advertiser",
                  "order_total": "gross_amount", "flight_start": "flight_from",
                  "flight_end": "flight_to"},
        "einvoice": {"invoice_no": "invoice_number", "date": "invoice_date", "supplier": "seller",
                     "bill_to": "buyer", "currency": "currency", "grand_total": "total",
                     "tax_total": "tax"},
    },
}  # fmt: skip


def bare_schema(path: Path) -> dict:
    """The schema at ``path`` with only its property names and types (no title, description
    or examples): the least a user may write."""

    def strip(node):
        if not isinstance(node, dict):
            return node
        out = {k: strip(v) for k, v in node.items()
               if k not in ("title", "description", "examples", "properties")}  # fmt: skip
        if isinstance(node.get("properties"), dict):  # its keys are names, not keywords
            out["properties"] = {name: strip(p) for name, p in node["properties"].items()}
        return out

    return strip(json.loads(path.read_text("utf-8")))


def set_dir(name: str) -> Path:
    return DATA / f"{name}_dev"


def schema_path(dev: DevSet) -> Path:
    return SCHEMAS / dev.schema


def documents(dev: DevSet) -> list[Path]:
    return sorted((set_dir(dev.name) / dev.folder).glob(dev.pattern))


def truth(dev: DevSet, doc: Path) -> dict:
    """The label of one document, shaped like the set's schema."""
    raw = json.loads((set_dir(dev.name) / "labels" / f"{doc.stem}.json").read_text("utf-8"))
    if dev.name == "funsd":
        from docvlm.datasets import funsd_pairs

        return {"pairs": funsd_pairs(raw)}
    if dev.name == "einvoice":
        raw = {k: v for k, v in raw.items() if k != "line_item_count"}
    if dev.month_first:  # "03/08/20" is 8 March: to ISO here, not read day first later
        from docvlm.normalize import parse_date

        dates = _date_fields(dev)
        raw = {k: (parse_date(v, dayfirst=False) or v) if k in dates and isinstance(v, str)
               else v for k, v in raw.items()}  # fmt: skip
    return raw


@cache
def _date_fields(dev: DevSet) -> frozenset[str]:
    from docvlm.schema import load_schema

    return frozenset(f.path for f in load_schema(schema_path(dev)).fields if f.is_date)


def cache(names: list[str], cache_dir: Path) -> None:
    """Lines of every document of ``names``, with the product's own render/detect/OCR."""
    from docvlm.pipeline import Pipeline
    from docvlm.read.learned.train import page_content

    pipeline = Pipeline()
    for name in names:
        dev = SETS[name]
        out = cache_dir / name
        out.mkdir(parents=True, exist_ok=True)
        started, done = time.perf_counter(), 0
        for doc in documents(dev):
            target = out / f"{doc.stem}.json"
            if target.exists():
                continue
            pages = page_content(pipeline, doc)
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps([p.model_dump(mode="json") for p in pages]), "utf-8")
            tmp.rename(target)
            done += 1
        print(f"{name}: {done} new in {time.perf_counter() - started:.0f} s", flush=True)


def cached_documents(name: str, cache_dir: Path) -> Iterator[tuple[Path, list, dict]]:
    """``(document, pages, truth)`` for every cached document of set ``name``."""
    from docvlm.datamodel import Page

    dev = SETS[name]
    for doc in documents(dev):
        f = cache_dir / name / f"{doc.stem}.json"
        if not f.exists():
            continue
        pages = [Page.model_validate(p) for p in json.loads(f.read_text("utf-8"))]
        yield doc, pages, truth(dev, doc)


def labelled(name: str, cache_dir: Path, part: str = "train") -> list:
    """The cached documents of one set's ``part`` as training documents."""
    from docvlm.read.learned.split import part as part_of
    from docvlm.read.learned.train import LabelledDoc
    from docvlm.schema import load_schema

    schema = load_schema(schema_path(SETS[name]))
    return [
        LabelledDoc(f"{name}/{doc.name}", pages, schema, label, source=name)
        for doc, pages, label in cached_documents(name, cache_dir)
        if part == "all" or part_of(doc.name) == part
    ]


def train_scorer(
    names: list[str],
    generated: int,
    out: Path,
    cache_dir: Path,
    variants: int = 0,
    seed: int = 0,
) -> dict:
    """The embedded model: the train parts of ``names`` plus ``generated`` documents, each
    real document also read with ``variants`` reworded schemas."""
    from docvlm.read.learned.train import train

    docs = [d for name in names for d in labelled(name, cache_dir)]
    if generated:
        from docvlm.read.learned.generator import TRAIN_TEMPLATES, generate_labelled

        docs.extend(generate_labelled(generated, seed=1, templates=TRAIN_TEMPLATES))
    return train(docs, out, schema_variants=variants, seed=seed)


def funsd_boxed_pairs(doc: Path) -> list[dict]:
    """The question→answer pairs of one FUNSD document with the boxes of its question and
    answer (``key_box``, ``value_box``): training leaves out candidates that have a pair's
    words but lie elsewhere on the page."""
    from docvlm.datasets import funsd_pairs

    raw = json.loads((set_dir("funsd") / "labels" / f"{doc.stem}.json").read_text("utf-8"))
    return funsd_pairs(raw, boxes=True)


def train_pairs(out: Path, cache_dir: Path, part: str = "train") -> dict:
    """The key→value link model on FUNSD's ``part`` (cached lines + labels with their boxes)."""
    from docvlm.read.learned.pairs import train_pairs as fit
    from docvlm.read.learned.split import part as part_of
    from docvlm.read.rules.context import DocContext

    docs = [
        (doc.name, DocContext.build(pages), funsd_boxed_pairs(doc))
        for doc, pages, _label in cached_documents("funsd", cache_dir)
        if part == "all" or part_of(doc.name) == part
    ]
    return fit(docs, out)


def run_reader(reader, schema, doc: Path, pages: list) -> tuple[dict, dict]:
    """The record ``reader`` makes of one cached document (assembled like ``extract``)."""
    from docvlm.assemble import assemble
    from docvlm.evaluate import _flatten
    from docvlm.read.base import DocumentContent

    content = DocumentContent(doc_id=doc.stem, source=str(doc), pages=pages, image=_no_image)
    result = reader.read(content, schema)
    record, chosen = assemble(result.values, schema)
    return _flatten(record), {v.path: v.confidence for v in chosen}


def _no_image(n: int):
    raise RuntimeError("dev-set evaluation reads cached lines only")


def evaluate_set(
    name: str,
    reader_kind: str,
    cache_dir: Path,
    part: str = "test",
    model: str | None = None,
    variant: str = "",
):
    """Per-field accuracy of one reader on one set's ``part``; returns (rows, calibration).
    ``variant``: ``reworded`` reads with the set's schema of :data:`REWORDED` (labels
    renamed to it), ``bare`` with the set's schema without titles and descriptions."""
    from docvlm.datamodel import ReaderOptions
    from docvlm.evaluate import anls, normalise, score_pairs
    from docvlm.read import get_reader
    from docvlm.read.learned.split import part as part_of
    from docvlm.schema import load_schema, schema_from_dict

    dev = SETS[name]
    rename = REWORDED[variant][name] if variant in REWORDED else None
    schema = load_schema(SCHEMAS / variant / dev.schema if rename else schema_path(dev))
    if variant == "bare":
        schema = schema_from_dict(bare_schema(schema_path(dev)), schema.name, "bare")
    specs = {f.path: f for f in schema.fields}
    options = {"kind": reader_kind, **({"model": model} if model else {})}
    reader = get_reader(ReaderOptions(**options))
    reader.ensure_ready()
    scores: dict[str, list[float]] = {}
    conf_pairs: list[tuple[float, bool]] = []
    pair_counts = {"matched": 0, "predicted": 0, "truth": 0}
    # the read alone is timed: loading the cached pages is not part of the read stage
    n_docs, n_pages, elapsed = 0, 0, 0.0
    if name == "funsd":
        arr = schema.arrays[0]
        k_spec = next(f for f in arr.items if f.name == "key")
        v_spec = next(f for f in arr.items if f.name == "value")

        def norm(items):
            return [
                (normalise(k_spec, i.get("key")), normalise(v_spec, i.get("value")))
                for i in items or []
            ]

    for doc, pages, label in cached_documents(name, cache_dir):
        if part != "all" and part_of(doc.name) != part:
            continue
        n_docs += 1
        n_pages += len(pages)
        if rename:
            label = {new: label[old] for new, old in rename.items() if old in label}
        started = time.perf_counter()
        record, confidences = run_reader(reader, schema, doc, pages)
        elapsed += time.perf_counter() - started
        if name == "funsd":
            matched, _ = score_pairs(norm(record.get(arr.path)), norm(label["pairs"]))
            pair_counts["matched"] += matched
            pair_counts["predicted"] += len(record.get(arr.path) or [])
            pair_counts["truth"] += len(label["pairs"])
            continue
        for path, value in label.items():
            spec = specs.get(path)
            if spec is None or value in (None, ""):
                continue
            t, p = normalise(spec, value), normalise(spec, record.get(path))
            ok = t == p
            scores.setdefault(path, []).append(float(ok))
            scores.setdefault(f"{path}~anls", []).append(anls(p, t))
            if path in confidences:
                conf_pairs.append((confidences[path], ok))
    rows = {k: (len(v), sum(v) / len(v)) for k, v in scores.items() if not k.endswith("~anls")}
    if name == "funsd":
        p, t = pair_counts["predicted"], pair_counts["truth"]
        m = pair_counts["matched"]
        prec, rec = (m / p if p else 0.0), (m / t if t else 0.0)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        rows = {"pairs.f1": (t, f1), "pairs.precision": (p, prec), "pairs.recall": (t, rec)}
    return rows, conf_pairs, (n_docs, n_pages), elapsed


def calibration_table(pairs: list[tuple[float, bool]], bins=(0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 1.01)):
    out = []
    for lo, hi in zip(bins, bins[1:], strict=False):
        sel = [ok for c, ok in pairs if lo <= c < hi]
        if sel:
            conf = [c for c, _ in pairs if lo <= c < hi]
            out.append((lo, min(hi, 1.0), len(sel), sum(conf) / len(conf), sum(sel) / len(sel)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("sets", nargs="*", default=list(SETS))
    c.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    t = sub.add_parser("train", help="train the scorer on the train parts (+ generated docs)")
    t.add_argument("sets", nargs="*", default=["sroie", "wildreceipt", "adbuy", "einvoice"])
    t.add_argument("--generated", type=int, default=0, help="generated documents to add")
    t.add_argument(
        "--variants",
        type=int,
        default=2,
        help="also read each real document with this many reworded schemas (default 2)",
    )
    t.add_argument("--seed", type=int, default=0, help="the model's random seed")
    t.add_argument("--out", type=Path, default=ROOT / "docvlm" / "models" / "scorer")
    t.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    tp = sub.add_parser("train-pairs", help="train the form key→value linker on FUNSD's train part")
    tp.add_argument("--out", type=Path, default=ROOT / "docvlm" / "models" / "pairs")
    tp.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    e = sub.add_parser("eval")
    e.add_argument("sets", nargs="*", default=list(SETS))
    e.add_argument("--reader", default="learned")
    e.add_argument("--model", help="learned reader: a model folder (default: the shipped one)")
    e.add_argument("--part", default="test", choices=("train", "test", "all"))
    e.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    e.add_argument("--json", type=Path, help="also write the figures as JSON")
    e.add_argument(
        "--variant",
        choices=("", *REWORDED, "bare"),
        default="",
        help="read with other schemas: reworded, reworded2 (benchmarks/schemas/"
        "<variant>: other field names, few descriptions) or bare (the set's names "
        "without titles and descriptions)",
    )
    args = ap.parse_args(argv)
    if args.cmd == "cache":
        cache(args.sets, args.cache)
        return 0
    if args.cmd == "train":
        meta = train_scorer(
            args.sets, args.generated, args.out, args.cache, args.variants, args.seed
        )
        print(json.dumps({k: v for k, v in meta.items() if k != "calibration"}, indent=1))
        return 0
    if args.cmd == "train-pairs":
        meta = train_pairs(args.out, args.cache)
        print(json.dumps({k: v for k, v in meta.items() if not k.endswith("features")}, indent=1))
        return 0
    report: dict = {}
    all_conf: list[tuple[float, bool]] = []
    for name in args.sets:
        if args.variant and name not in REWORDED["reworded"]:
            continue
        rows, conf, (n, pages), elapsed = evaluate_set(
            name, args.reader, args.cache, args.part, args.model, args.variant
        )
        all_conf.extend(conf)
        report[name] = {"docs": n, "pages": pages, "read_s": elapsed, "fields": rows}
        cells = "  ".join(f"{k} {acc:.3f} (n={cnt})" for k, (cnt, acc) in rows.items())
        rate = pages / elapsed if elapsed else 0.0
        print(
            f"{name:12} [{args.reader}, {args.part}, {n} docs, {pages} pages, {elapsed:.1f} s, "
            f"{rate:.0f} pages/s]  {cells}"
        )
    table = calibration_table(all_conf)
    if table:
        print("calibration (all sets): confidence bin, n, mean confidence, accuracy")
        for lo, hi, n, conf, acc in table:
            print(f"  [{lo:.1f}, {hi:.1f})  n={n:4d}  conf={conf:.3f}  acc={acc:.3f}")
    report["calibration"] = table
    if args.json:
        args.json.write_text(json.dumps(report, indent=1), "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
