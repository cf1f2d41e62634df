"""Schema variants for training: one labelled document read under other wordings of its schema.

A user brings *their* schema: ``vendor`` where the training set said ``seller``, ``start_date``
where it said ``flight_from``, no descriptions at all. A scorer trained on real documents that
were each read with one schema learns how those exact words meet the page (how high the label
similarity of the right value runs, what the rule reader makes of the name) and reads other
wordings worse. Training on variants of each real document's schema teaches it what holds
whatever the wording.

Each scalar property of a variant independently

- keeps its name, or takes its name with a head word swapped for a common synonym
  (``invoice_number`` → ``invoice_no``, ``gross_amount`` → ``gross_total``), or takes a phrase
  of the business term group its own words reach without doubt (``seller`` → ``supplier``;
  a date whose words open or close a span → a start or end phrase);
- is written in snake_case, camelCase or words;
- keeps its title and its description only sometimes.

Nothing here is keyed on a field name: the replacements come from the field's own words, the
general term groups of :mod:`.vocab` and the word's type. The truth is renamed with the schema.
"""

from __future__ import annotations

import copy
import random
import re
from typing import Any

from docvlm.read.fieldmatch import split_name, tokens
from docvlm.read.learned.vocab import TERMS, field_groups, field_role

#: common synonyms of a field name's head word (identifiers, dates, amounts, names)
HEAD_SYNONYMS: dict[str, tuple[str, ...]] = {
    "number": ("no", "id", "nr", "num", "number"),
    "no": ("number", "id", "no"),
    "nr": ("number", "no"),
    "num": ("number", "no"),
    "id": ("number", "no", "id"),
    "date": ("date", "dt", "day"),
    "amount": ("amount", "total", "sum", "value", "amt"),
    "total": ("total", "amount", "sum"),
    "name": ("name", ""),
}
#: a group's phrases are a field's words only when its words reach it this surely, and the
#: next group is this far behind
_SURE, _MARGIN = 0.9, 0.15
_GROUP_PHRASES = 12  # the first phrases of a group: its plainer wordings
_P_KEEP_NAME, _P_TITLE, _P_DESCRIPTION = 0.35, 0.35, 0.4
_RESERVED = frozenset(("doc_id", "source", "status", "errors", "provenance"))
_NAME_CHARS = re.compile(r"[^\w ]+")


def variant(schema: dict, truth: dict, rng: random.Random) -> tuple[dict, dict]:
    """A reworded copy of ``schema`` and ``truth`` shaped like it."""
    out = copy.deepcopy(schema)
    new_truth = copy.deepcopy(truth)
    _reword(out, new_truth, rng)
    return out, new_truth


def _reword(node: dict, truth: Any, rng: random.Random) -> None:
    props = node.get("properties")
    if not isinstance(props, dict):
        return
    renamed: dict[str, str] = {}
    taken = set(props)
    for name, prop in list(props.items()):
        if not isinstance(prop, dict):
            continue
        if prop.get("type") == "object":
            sub = truth.get(name) if isinstance(truth, dict) else None
            _reword(prop, sub if isinstance(sub, dict) else {}, rng)
            continue
        if prop.get("type") == "array":
            continue  # tables are read by the layout rules: their columns stay as written
        new = _new_name(name, prop, rng)
        if new != name and new not in taken and new.lower() not in _RESERVED:
            renamed[name] = new
            taken.add(new)
        if rng.random() > _P_TITLE:
            prop.pop("title", None)
        if rng.random() > _P_DESCRIPTION:
            prop.pop("description", None)
        prop.pop("examples", None)
    node["properties"] = {renamed.get(k, k): v for k, v in props.items()}
    if isinstance(node.get("required"), list):
        node["required"] = [renamed.get(k, k) for k in node["required"]]
    if isinstance(truth, dict):
        for old, new in renamed.items():
            if old in truth:
                truth[new] = truth.pop(old)


def _new_name(name: str, prop: dict, rng: random.Random) -> str:
    words = split_name(name).lower().split()
    if not words or rng.random() < _P_KEEP_NAME:
        return name
    choices = []
    phrases = _group_phrases(name, prop)
    if phrases:
        choices.append(rng.choice(phrases).split())
    head = HEAD_SYNONYMS.get(words[-1])
    if head:
        swapped = [w for w in (*words[:-1], rng.choice(head)) if w]
        if swapped:
            choices.append(swapped)
    if not choices:
        return name
    return _style(rng.choice(choices), rng)


def _group_phrases(name: str, prop: dict) -> list[str]:
    """Plain phrases of the term group the field's words reach without doubt."""
    from docvlm.schema import schema_from_dict

    spec = schema_from_dict({"type": "object", "properties": {name: prop}}, "v").fields[0]
    own = tuple(p for p in (split_name(name), prop.get("title")) if p)
    groups = field_groups(spec, own)
    gid = None
    if groups and groups[0][1] >= _SURE:
        if len(groups) < 2 or groups[1][1] <= groups[0][1] - _MARGIN:
            gid = groups[0][0]
    if spec.is_date:
        role = field_role(spec, ())  # the field's own start/end words, not its group's role
        if role in ("start", "end"):
            gid = "start_date" if role == "start" else "end_date"
    if gid is None:
        return []
    out = []
    for p in TERMS[gid][:_GROUP_PHRASES]:
        clean = _NAME_CHARS.sub(" ", p).strip()
        if clean and tokens(clean) and len(clean) >= 3:
            out.append(clean.lower())
    return out


def _style(words: list[str], rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return "_".join(words)
    if r < 0.85:
        return words[0] + "".join(w.capitalize() for w in words[1:])
    return " ".join(w.capitalize() for w in words)
