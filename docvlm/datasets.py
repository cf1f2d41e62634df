"""Converters from public labelled data sets to ground-truth JSON for ``docvlm eval``."""

from __future__ import annotations

import json
from pathlib import Path


def _text(entity: dict) -> str:
    return " ".join(str(entity.get("text", "")).split())


def funsd_to_truth(labels_dir: str | Path, out_dir: str | Path) -> int:
    """FUNSD labels (``<id>.json`` with ``form`` entities) to form-schema truth files.

    Each ``question``→``answer`` link becomes a pair ``{"key", "value"}``, as FUNSD defines
    them (a question with several answers — list, table column or an answer split over lines —
    gives several pairs); the topmost ``header`` entity is the title.
    Returns the number of files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in sorted(Path(labels_dir).glob("*.json")):
        label = json.loads(path.read_text(encoding="utf-8"))
        form = label.get("form", [])
        truth: dict = {"pairs": funsd_pairs(label)}
        headers = sorted((e for e in form if e.get("label") == "header" and _text(e)),
                         key=lambda e: (e["box"][1], e["box"][0]))  # fmt: skip
        if headers:
            truth["title"] = _text(headers[0])
        (out / f"{path.stem}.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
        count += 1
    return count


def funsd_pairs(label: dict, boxes: bool = False) -> list[dict]:
    """The ``{"key", "value"}`` pairs of one FUNSD label: its question→answer links; with
    ``boxes``, also the boxes of the question and the answer (``key_box``, ``value_box``)."""
    form = label.get("form", [])
    by_id = {e["id"]: e for e in form}
    pairs: list[dict] = []
    seen: set[tuple[int, int]] = set()
    for entity in form:
        for a, b in entity.get("linking", []):
            q, ans = by_id.get(a), by_id.get(b)
            if q is None or ans is None:
                continue
            if q.get("label") == "answer" and ans.get("label") == "question":
                q, ans = ans, q
            if q.get("label") != "question" or ans.get("label") != "answer":
                continue
            if (q["id"], ans["id"]) in seen or not _text(q) or not _text(ans):
                continue
            seen.add((q["id"], ans["id"]))
            pair = {"key": _text(q), "value": _text(ans)}
            if boxes:
                pair.update(key_box=q["box"], value_box=ans["box"])
            pairs.append(pair)
    return pairs
