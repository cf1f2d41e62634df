"""Key/value forms: pairs read from a generated form PDF, and set-based pair scoring."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from docvlm.evaluate import evaluate
from docvlm.normalize import compact
from docvlm.schema import load_schema

FORM_SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "form.schema.json"


def _make_form(path: Path) -> Path:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    texts = [
        (60, 80, "MEMBERSHIP APPLICATION", 16),
        (60, 140, "Name:", 11),  # value to the right
        (220, 140, "Harriet Okafor", 11),
        (60, 170, "Date of birth:", 11),
        (220, 170, "12.03.1985", 11),
        (60, 200, "Phone: 0113 496 0000", 11),  # value in the same segment
        (60, 240, "Address:", 11),  # value directly below
        (60, 258, "12 Elm Street, Leeds", 11),
        (60, 300, "Member since:", 11),
        (220, 300, "2019", 11),
    ]
    for x, y, text, size in texts:
        page.insert_text((x, y), text, fontsize=size)
    doc.save(path)
    doc.close()
    return path


def test_form_pairs_extracted(tmp_path):
    from docvlm.pipeline import extract

    pdf = _make_form(tmp_path / "application.pdf")
    result = extract([pdf], FORM_SCHEMA, {}, out_dir=tmp_path / "out")
    (doc_result,) = result.results
    pairs = {
        compact(p.get("key")): compact(p.get("value") or "")
        for p in doc_result.record.get("pairs") or []
    }
    assert pairs.get("name") == "harrietokafor"
    assert pairs.get("dateofbirth") == "12031985"
    assert pairs.get("phone") == "01134960000"
    assert pairs.get("address") == "12elmstreetleeds"
    assert pairs.get("membersince") == "2019"
    assert (tmp_path / "out" / "form__pairs.parquet").exists()


def _write_prediction(out: Path, docs: dict[str, list[dict]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    records = pd.DataFrame(
        {"doc_id": list(docs), "source": [f"/x/{d}.png" for d in docs], "title": [None] * len(docs)}
    )
    records.to_csv(out / "form.csv", index=False)
    rows = [
        {"doc_id": d, "item_index": i, "key": p["key"], "value": p.get("value")}
        for d, ps in docs.items()
        for i, p in enumerate(ps)
    ]
    pd.DataFrame(rows, columns=["doc_id", "item_index", "key", "value"]).to_csv(
        out / "form__pairs.csv", index=False
    )


TRUTH = [
    {"key": "Date:", "value": "9/3/92"},
    {"key": "Name", "value": "M. Ham"},
    {"key": "Phone", "value": "555 1234"},
    {"key": "Fax", "value": "555 9999"},
]


def _score(tmp_path: Path, predicted: list[dict]) -> pd.DataFrame:
    truth = tmp_path / "gt"
    truth.mkdir(exist_ok=True)
    (truth / "a.json").write_text(json.dumps({"pairs": TRUTH}), encoding="utf-8")
    _write_prediction(tmp_path / "pred", {"a": predicted})
    return evaluate(tmp_path / "pred" / "form.csv", truth, load_schema(FORM_SCHEMA))


def _row(frame: pd.DataFrame, field: str) -> dict:
    return frame.set_index("field").loc[field].to_dict()


def test_pair_scoring_perfect_is_order_free(tmp_path):
    # order reversed, case, spacing and punctuation differ: still a perfect match
    pred = [
        {"key": p["key"].upper().rstrip(":"), "value": p["value"] + " "} for p in reversed(TRUTH)
    ]
    frame = _score(tmp_path, pred)
    assert _row(frame, "pairs.key_value")["accuracy"] == pytest.approx(1.0)
    assert _row(frame, "pairs.key_value")["anls"] == pytest.approx(1.0)
    assert _row(frame, "pairs.precision")["accuracy"] == pytest.approx(1.0)
    assert _row(frame, "pairs.recall")["accuracy"] == pytest.approx(1.0)
    assert _row(frame, "ALL")["n"] == len(TRUTH)  # pairs counted once
    assert frame.attrs["pairs"]["pairs"]["matched"] == len(TRUTH)


def test_pair_scoring_missing_and_extra(tmp_path):
    missing = _score(tmp_path, TRUTH[:3])
    assert _row(missing, "pairs.recall")["accuracy"] == pytest.approx(0.75)
    assert _row(missing, "pairs.precision")["accuracy"] == pytest.approx(1.0)
    assert _row(missing, "pairs.key_value")["accuracy"] == pytest.approx(2 * 0.75 / 1.75)

    extra = _score(tmp_path, [*TRUTH, {"key": "Signature", "value": "x"}])
    assert _row(extra, "pairs.precision")["accuracy"] == pytest.approx(0.8)
    assert _row(extra, "pairs.recall")["accuracy"] == pytest.approx(1.0)

    # a wrong value is no match, but keeps partial ANLS credit
    wrong = _score(tmp_path, [*TRUTH[:3], {"key": "Fax", "value": "555 9998"}])
    kv = _row(wrong, "pairs.key_value")
    assert kv["accuracy"] == pytest.approx(0.75)
    assert 0.9 < kv["anls"] < 1.0
    assert math.isnan(_row(wrong, "pairs.precision")["anls"])
