"""Compare an output table with a folder of ground-truth JSON files: per-field accuracy after
normalisation, and ANLS (average normalised Levenshtein similarity)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from docvlm.extract.normalize import compact, levenshtein, parse_amount, parse_date
from docvlm.extract.schema import FieldSpec, SchemaSpec


def anls(pred: str, truth: str, threshold: float = 0.5) -> float:
    """1 − normalised edit distance, or 0 when that distance is ≥ ``threshold``."""
    p = " ".join(str(pred).lower().split())
    t = " ".join(str(truth).lower().split())
    if not p and not t:
        return 1.0
    nld = levenshtein(p, t) / max(len(p), len(t))
    return 1.0 - nld if nld < threshold else 0.0


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def normalise(spec: FieldSpec | None, value: Any) -> str:
    """Comparable form of a value: ISO dates, amounts to 2 decimals, text without case,
    whitespace and punctuation."""
    if _missing(value):
        return ""
    if spec is not None and spec.is_date:
        text = str(value)
        iso = parse_date(text) if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else text
        return iso or compact(text)
    if spec is not None and spec.is_number:
        number = value if isinstance(value, (int, float)) else parse_amount(str(value))
        return f"{float(number):.2f}" if number is not None else compact(str(value))
    return compact(str(value))


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def evaluate(pred: str | Path, truth_dir: str | Path, schema: SchemaSpec):
    """Per-field scores of the output at ``pred`` (an output folder or a record table file)
    against ``truth_dir/<stem>.json`` (stem = the source file name without suffix).

    Returns a DataFrame with columns field, n, accuracy, anls (one row per field, then 'ALL').
    """
    import pandas as pd

    pred = Path(pred)
    table = pred / f"{schema.name}.parquet" if pred.is_dir() else pred
    records = pd.read_parquet(table) if table.suffix == ".parquet" else pd.read_csv(table)
    by_stem = {Path(str(s)).stem: row for s, row in zip(records["source"], records.to_dict("records"), strict=True)}
    children: dict[str, pd.DataFrame] = {}
    for arr in schema.arrays:
        child = table.parent / f"{schema.name}__{arr.path}{table.suffix}"
        if child.exists():
            children[arr.path] = pd.read_parquet(child) if child.suffix == ".parquet" else pd.read_csv(child)
    specs = {f.path: f for f in schema.fields}
    item_specs = {(a.path, f.name): f for a in schema.arrays for f in a.items}
    scores: dict[str, list[tuple[float, float]]] = {}
    for gt_file in sorted(Path(truth_dir).glob("*.json")):
        truth = json.loads(gt_file.read_text(encoding="utf-8"))
        row = by_stem.get(gt_file.stem, {})
        flat = _flatten(truth)
        for path, value in flat.items():
            if isinstance(value, list):
                continue
            spec = specs.get(path)
            if spec is None:
                continue
            t, p = normalise(spec, value), normalise(spec, row.get(path))
            scores.setdefault(path, []).append((float(t == p), anls(p, t)))
        for arr_path, items in ((k, v) for k, v in flat.items() if isinstance(v, list)):
            child = children.get(arr_path)
            got = child[child["doc_id"] == row.get("doc_id")] if child is not None and row else None
            got_items = got.sort_values("item_index").to_dict("records") if got is not None else []
            for i, item in enumerate(items):
                other = got_items[i] if i < len(got_items) else {}
                for name, value in (item or {}).items():
                    spec = item_specs.get((arr_path, name))
                    t, p = normalise(spec, value), normalise(spec, other.get(name))
                    scores.setdefault(f"{arr_path}[].{name}", []).append((float(t == p), anls(p, t)))
    rows = [
        {"field": k, "n": len(v), "accuracy": sum(a for a, _ in v) / len(v), "anls": sum(b for _, b in v) / len(v)}
        for k, v in scores.items()
    ]
    if rows:
        every = [s for v in scores.values() for s in v]
        rows.append(
            {"field": "ALL", "n": len(every), "accuracy": sum(a for a, _ in every) / len(every),
             "anls": sum(b for _, b in every) / len(every)}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=["field", "n", "accuracy", "anls"])
