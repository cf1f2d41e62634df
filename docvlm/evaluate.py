"""Compare an output table with a folder of ground-truth JSON files: per-field accuracy after
normalisation, and ANLS (average normalised Levenshtein similarity)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from docvlm.normalize import compact, levenshtein, parse_amount, parse_date
from docvlm.schema import FieldSpec, SchemaSpec


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
    if isinstance(v, (str, int)):  # the common cases, without pandas' per-call cost
        return False
    if isinstance(v, float):
        return v != v  # NaN
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


def _pair_anls(p: tuple[str, str], t: tuple[str, str]) -> float:
    """Mean ANLS of key and value of two normalised pairs (0 when the key is too far off)."""
    k = anls(p[0], t[0]) if p[0] == t[0] or _close_len(p[0], t[0]) else 0.0
    if not k:
        return 0.0
    v = anls(p[1], t[1]) if p[1] == t[1] or _close_len(p[1], t[1]) else 0.0
    return (k + v) / 2


def _close_len(a: str, b: str) -> bool:
    # ANLS is 0 once the edit distance reaches half the longer text: skip hopeless pairs
    return abs(len(a) - len(b)) < 0.5 * max(len(a), len(b), 1)


def score_pairs(
    pred: list[tuple[str, str]], truth: list[tuple[str, str]]
) -> tuple[int, list[float]]:
    """Set-based comparison of normalised (key, value) pairs of one document.

    Returns the number of matched pairs (each predicted pair matches at most one truth pair,
    by exact equality) and, per truth pair, the best ANLS over the predicted pairs.
    """
    from collections import Counter

    left = Counter(pred)
    matched = 0
    for t in truth:
        if left[t] > 0:
            left[t] -= 1
            matched += 1
    best = [1.0 if t in pred else max((_pair_anls(p, t) for p in pred), default=0.0) for t in truth]
    return matched, best


def _norm_pairs(
    items: list, key: FieldSpec | None, value: FieldSpec | None
) -> list[tuple[str, str]]:
    out = []
    for item in items or []:
        if not isinstance(item, dict):
            continue
        pair = (normalise(key, item.get("key")), normalise(value, item.get("value")))
        if pair != ("", ""):
            out.append(pair)
    return out


def truth_labels(truth: str | Path, schema: SchemaSpec) -> list[tuple[str, dict[str, Any]]]:
    """``(stem, label)`` pairs of the ground truth: ``truth/<stem>.json`` files, or a review's
    ``corrections.parquet`` (the corrected documents' records with the corrections applied,
    see :func:`docvlm.review.corrections.labels`)."""
    path = Path(truth)
    if path.suffix == ".parquet":
        from docvlm.errors import ConfigError
        from docvlm.review.corrections import CORRECTIONS_FILE, labels

        if path.name != CORRECTIONS_FILE:
            raise ConfigError(f"{path}: a truth table must be a review's {CORRECTIONS_FILE}")
        return sorted(labels(path.parent, schema.name).items())
    return [
        (f.stem, json.loads(f.read_text(encoding="utf-8"))) for f in sorted(path.glob("*.json"))
    ]


def evaluate(pred: str | Path, truth_dir: str | Path, schema: SchemaSpec):
    """Per-field scores of the output at ``pred`` (an output folder or a record table file)
    against ``truth_dir/<stem>.json`` (stem = the source file name without suffix), or against
    a review's ``OUT/corrections.parquet`` (truth = the corrected records).

    Returns a DataFrame with columns field, n, accuracy, anls (one row per field, then 'ALL').

    Key/value arrays (``ArraySpec.is_key_value``) are scored as sets of pairs, not by index: a
    predicted pair matches a truth pair when the normalised key and value are both equal.
    Their row ``<array>.key_value`` has n = truth pairs, accuracy = F1 (micro, over all
    documents) and anls = mean over truth pairs of the best-matching predicted pair's ANLS
    (mean of key and value ANLS); rows ``<array>.precision`` (n = predicted pairs) and
    ``<array>.recall`` (n = truth pairs) follow. 'ALL' averages the field rows weighted by n,
    so each truth value — and each truth pair, once — counts once. The counts are also in
    ``DataFrame.attrs["pairs"]``.
    """
    import pandas as pd

    pred = Path(pred)
    table = pred / f"{schema.name}.parquet" if pred.is_dir() else pred
    records = pd.read_parquet(table) if table.suffix == ".parquet" else pd.read_csv(table)
    by_stem = {
        Path(str(s)).stem: row
        for s, row in zip(records["source"], records.to_dict("records"), strict=True)
    }
    children: dict[str, pd.DataFrame] = {}
    for arr in schema.arrays:
        child = table.parent / f"{schema.name}__{arr.path}{table.suffix}"
        if child.exists():
            children[arr.path] = (
                pd.read_parquet(child) if child.suffix == ".parquet" else pd.read_csv(child)
            )
    specs = {f.path: f for f in schema.fields}
    item_specs = {(a.path, f.name): f for a in schema.arrays for f in a.items}
    kv_arrays = {a.path: a for a in schema.arrays if a.is_key_value}
    kv: dict[str, dict[str, Any]] = {
        p: {"matched": 0, "predicted": 0, "truth": 0, "anls": []} for p in kv_arrays
    }
    scores: dict[str, list[tuple[float, float]]] = {}
    for stem, truth in truth_labels(truth_dir, schema):
        row = by_stem.get(stem, {})
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
            if arr_path in kv_arrays:
                k_spec = item_specs.get((arr_path, "key"))
                v_spec = item_specs.get((arr_path, "value"))
                t_pairs = _norm_pairs(items, k_spec, v_spec)
                p_pairs = _norm_pairs(got_items, k_spec, v_spec)
                matched, best = score_pairs(p_pairs, t_pairs)
                acc = kv[arr_path]
                acc["matched"] += matched
                acc["predicted"] += len(p_pairs)
                acc["truth"] += len(t_pairs)
                acc["anls"].extend(best)
                continue
            for i, item in enumerate(items):
                other = got_items[i] if i < len(got_items) else {}
                for name, value in (item or {}).items():
                    spec = item_specs.get((arr_path, name))
                    t, p = normalise(spec, value), normalise(spec, other.get(name))
                    scores.setdefault(f"{arr_path}[].{name}", []).append(
                        (float(t == p), anls(p, t))
                    )
    rows = [
        {
            "field": k,
            "n": len(v),
            "accuracy": sum(a for a, _ in v) / len(v),
            "anls": sum(b for _, b in v) / len(v),
        }
        for k, v in scores.items()
    ]
    weighted = list(rows)
    summary: dict[str, dict[str, float]] = {}
    for path, acc in kv.items():
        if not acc["truth"] and not acc["predicted"]:
            continue
        precision = acc["matched"] / acc["predicted"] if acc["predicted"] else 0.0
        recall = acc["matched"] / acc["truth"] if acc["truth"] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        mean_anls = sum(acc["anls"]) / len(acc["anls"]) if acc["anls"] else 0.0
        main = {"field": f"{path}.key_value", "n": acc["truth"], "accuracy": f1, "anls": mean_anls}
        rows.append(main)
        weighted.append(main)
        rows.append({"field": f"{path}.precision", "n": acc["predicted"], "accuracy": precision,
                     "anls": float("nan")})  # fmt: skip
        rows.append(
            {"field": f"{path}.recall", "n": acc["truth"], "accuracy": recall, "anls": mean_anls}
        )
        summary[path] = {"precision": precision, "recall": recall, "f1": f1, "anls": mean_anls,
                         "matched": acc["matched"], "predicted": acc["predicted"], "truth": acc["truth"]}  # fmt: skip
    total = sum(r["n"] for r in weighted)
    if total:
        rows.append(
            {"field": "ALL", "n": total, "accuracy": sum(r["accuracy"] * r["n"] for r in weighted) / total,
             "anls": sum(r["anls"] * r["n"] for r in weighted) / total}
        )  # fmt: skip
    frame = pd.DataFrame(rows, columns=["field", "n", "accuracy", "anls"])
    if summary:
        frame.attrs["pairs"] = summary
    return frame
