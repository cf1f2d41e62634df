"""Schema variants for training (docvlm.read.learned.reword) and reading under other wordings."""

from __future__ import annotations

import json
import random

from test_learned import _accuracy

from docvlm.datamodel import ReaderOptions
from docvlm.read import get_reader
from docvlm.read.learned.generator import HELD_OUT_TEMPLATES, generate_labelled
from docvlm.read.learned.reword import variant
from docvlm.read.learned.train import LabelledDoc, with_variants
from docvlm.read.learned.vocab import field_phrases
from docvlm.schema import RECORD_COLUMNS, schema_from_dict

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string", "description": "Invoice number"},
        "invoice_date": {"type": "string", "format": "date", "title": "Date"},
        "seller": {"type": "string", "description": "Name of the seller"},
        "total": {"type": "number", "description": "Total amount including tax"},
        "period_start": {"type": "string", "format": "date", "description": "First day"},
        "buyer": {"type": "object", "properties": {"name": {"type": "string"}}},
        "lines": {"type": "array", "items": {"type": "object",
                                              "properties": {"amount": {"type": "number"}}}},
    },
    "required": ["invoice_number", "total"],
}  # fmt: skip
TRUTH = {
    "invoice_number": "INV-1", "invoice_date": "2024-03-01", "seller": "ACME GmbH",
    "total": "119.00", "period_start": "2024-02-01", "buyer": {"name": "Muster AG"},
    "lines": [{"amount": 119.0}],
}  # fmt: skip


def _leaves(schema: dict, prefix: str = "") -> dict[str, dict]:
    out = {}
    for name, prop in schema["properties"].items():
        if prop.get("type") == "object":
            out.update(_leaves(prop, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = prop
    return out


def test_a_variant_renames_schema_and_truth_together_and_keeps_types():
    renamed = descriptions = 0
    for k in range(40):
        schema, truth = variant(SCHEMA, TRUTH, random.Random(k))
        spec = schema_from_dict(schema, "v")  # a valid schema with checked names
        old, new = _leaves(SCHEMA), _leaves(schema)
        assert len(new) == len(old)
        # the same values under the new names, and each new name keeps its old type
        flat = {p: v for p, v in _flat(truth).items()}
        assert sorted(map(str, flat.values())) == sorted(map(str, _flat(TRUTH).values()))
        by_value = {str(v): p for p, v in _flat(TRUTH).items()}
        for path, value in flat.items():
            before = old[by_value[str(value)]]
            after = new[path]
            for key in ("type", "format", "pattern"):
                assert before.get(key) == after.get(key), (path, key)
        assert not {f.name for f in spec.fields} & set(RECORD_COLUMNS)
        assert schema["properties"]["lines"] == SCHEMA["properties"]["lines"]  # tables kept
        assert set(schema["required"]) <= set(schema["properties"])
        renamed += set(new) != set(old)
        descriptions += sum("description" in p for p in new.values())
    assert renamed >= 20  # most variants reword something
    assert 0 < descriptions < 40 * 3  # descriptions are sometimes kept, sometimes dropped
    assert SCHEMA["properties"]["seller"]["description"] == "Name of the seller"  # not mutated


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def test_a_date_that_opens_a_span_is_reworded_as_a_start_and_an_issue_date_never_is():
    names = set()
    for k in range(60):
        schema, truth = variant(SCHEMA, TRUTH, random.Random(k))
        for name, value in truth.items():
            if value == "2024-02-01":
                names.add(name)
            if value == "2024-03-01":
                assert not {"start", "begin", "from"} & set(name.lower().split("_")), name
    assert len(names) > 2
    assert any("start" in n.lower() or "begin" in n.lower() for n in names if n != "period_start")


def test_with_variants_adds_copies_of_real_documents_only_under_the_same_name():
    spec = schema_from_dict(SCHEMA, "s")
    real = LabelledDoc("a.pdf", [], spec, TRUTH, source="dev")
    generated = generate_labelled(1, seed=3)[0]
    out = with_variants([real, generated], 2)
    assert [d.name for d in out] == ["a.pdf", "a.pdf", "a.pdf", generated.name]
    assert all(d.pages is real.pages for d in out[:3])
    assert out[1].schema.schema != real.schema.schema or out[2].schema.schema != SCHEMA
    assert json.dumps(SCHEMA) == json.dumps(real.schema.schema)


def test_a_fields_words_reach_a_group_through_its_printed_wordings():
    """'vat amount' and 'total cost' are printed wordings of the tax and gross groups, not
    their head phrases: the field still takes the group's role in the arithmetic."""

    def role(name: str, kind: str = "number") -> str | None:
        spec = schema_from_dict({"type": "object", "properties": {name: {"type": kind}}}, "x")
        return field_phrases(spec.fields[0]).role

    assert role("vat_amount") == "tax"
    assert role("total_cost") == "total"
    assert role("invoice_number", "string") is None


def _reworded_docs(n: int, seed: int) -> list[LabelledDoc]:
    out = []
    for d in generate_labelled(n, seed=seed, templates=HELD_OUT_TEMPLATES):
        schema, truth = variant(d.schema.schema, d.truth, random.Random(d.name))
        out.append(LabelledDoc(d.name, d.pages, schema_from_dict(schema, "v"), truth))
    return out


def test_shipped_model_reads_unseen_layouts_under_reworded_schemas():
    """Layouts held out of training, each read with a reworded copy of its schema (other
    names, descriptions dropped): the learned reader keeps most of its accuracy."""
    docs = _reworded_docs(24, seed=778)
    acc, n = _accuracy(get_reader(ReaderOptions(kind="learned")), docs)
    base, _ = _accuracy(get_reader(ReaderOptions(kind="ocr")), docs)
    assert n > 80
    assert acc >= 0.55, acc
    assert acc > base + 0.15, (acc, base)


def test_a_field_reaches_only_groups_of_its_type_and_past_an_attribute_word():
    def groups(name: str, prop: dict) -> list[str]:
        spec = schema_from_dict({"type": "object", "properties": {name: prop}}, "x")
        return [g for g, _ in field_phrases(spec.fields[0]).groups]

    # 'receipt' is also in 'receipt number': a date field does not reach the number group
    assert groups("receipt_date", {"type": "string", "format": "date"})[0] == "issue_date"
    assert "invoice_number" not in groups("receipt_date", {"type": "string", "format": "date"})
    assert not {"seller", "buyer"} & set(groups("total_amount", {"type": "number"}))
    # 'vendor name' is the vendor's name: the field reaches the seller group fully
    spec = schema_from_dict({"type": "object", "properties": {"vendor_name": {"type": "string"}}},
                            "x")  # fmt: skip
    assert field_phrases(spec.fields[0]).groups[0] == ("seller", 1.0)
