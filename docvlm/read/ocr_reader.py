"""The embedded reader: text layer or OCR lines, read by layout and the schema's labels.

Runs offline on a CPU. For each schema field it looks for a printed label (from the schema's
names, titles and descriptions plus known multilingual wording), then takes the value from the
same segment, the segments to its right, or the line below, keeping only text that parses as
the field's type. Parties (seller/buyer name and address), line-item tables and key/value
forms have their own layout rules.
"""

from __future__ import annotations

import logging
import re

from docvlm.datamodel import FieldValue, Line
from docvlm.extract.context import DocContext
from docvlm.extract.labels import FieldLabels, labels_for, match_label
from docvlm.extract.normalize import (
    find_currency,
    find_dates,
    fold,
    is_amount_text,
    parse_amount,
    parse_date,
)
from docvlm.extract.parties import read_party
from docvlm.extract.schema import FieldSpec, SchemaSpec
from docvlm.extract.items import read_array
from docvlm.read.base import DocumentContent, Reader, ReadResult

logger = logging.getLogger(__name__)

_WEIGHT_SAME, _WEIGHT_RIGHT, _WEIGHT_BELOW = 1.0, 0.92, 0.8


def coerce(spec: FieldSpec, text: str, ctx: DocContext, concept: str | None = None):
    """``text`` as a value of ``spec``'s type, or None when it does not fit."""
    text = text.strip().strip("|").strip()
    if not text:
        return None
    if spec.is_date:
        return parse_date(text, ctx.dayfirst)
    if spec.is_number:
        if not is_amount_text(text) or "%" in text:
            return None
        value = parse_amount(text, ctx.decimal_comma)
        if value is None:
            return None
        if spec.type == "integer":
            return int(value) if float(value).is_integer() else None
        return value
    if spec.type == "boolean":
        f = fold(text)
        if f in ("yes", "true", "ja", "oui", "x", "1"):
            return True
        if f in ("no", "false", "nein", "non", "0"):
            return False
        return None
    if spec.enum:
        f = fold(text)
        for option in spec.enum:
            if fold(str(option)) == f or f" {fold(str(option))} " in f" {f} ":
                return option
        return None
    if concept == "currency" or (spec.pattern and spec.pattern.strip() == "^[A-Z]{3}$"):
        return find_currency(text)
    if concept == "invoice_number":
        token = text.split()[0].strip(".:,;") if text.split() else ""
        if not re.search(r"\d", token) or len(token) > 32:
            return None
        text = token
    if spec.pattern:
        m = re.search(spec.pattern.lstrip("^").rstrip("$"), text)
        if not m or not re.fullmatch(spec.pattern.lstrip("^").rstrip("$"), m.group(0)):
            return None
        return m.group(0)
    if spec.type == "string":
        return text if re.search(r"\w", text) else None
    return None


class OcrReader(Reader):
    """Layout- and label-driven extraction from text-layer or OCR lines."""

    name = "ocr"

    def read(
        self,
        doc: DocumentContent,
        schema: SchemaSpec,
        wanted: list[str] | None = None,
        prior: list[FieldValue] | None = None,
    ) -> ReadResult:
        ctx = DocContext.build(doc.pages)
        result = ReadResult()
        labels = {spec.path: labels_for(spec) for spec in schema.fields}
        owners = self._owners(ctx, labels)
        all_phrases = tuple(p for fl in labels.values() for p in fl.phrases)
        for spec in schema.fields:
            if wanted is not None and spec.path not in wanted:
                continue
            fl = labels[spec.path]
            if fl.role and fl.part:
                result.values.extend(read_party(spec, fl, ctx, all_phrases, self.name))
                continue
            result.values.extend(self._labelled(spec, fl, ctx, owners))
            result.values.extend(self._fallback(spec, fl, ctx))
        stop = tuple(
            p
            for fl in labels.values()
            if fl.concept in ("subtotal", "tax", "total")
            for p in fl.phrases
        )
        for arr in schema.arrays:
            if wanted is not None and not any(w.startswith(arr.path) for w in wanted):
                continue
            result.values.extend(read_array(arr, ctx, stop, self.name))
        return result

    @staticmethod
    def _owners(ctx: DocContext, labels: dict[str, FieldLabels]) -> dict[int, set[str]]:
        """For each line, the fields whose label matches it most specifically."""
        owners: dict[int, set[str]] = {}
        for line in ctx.lines:
            best_len, best = 0, set()
            folded = fold(line.text)
            for path, fl in labels.items():
                m = match_label(line.text, fl.phrases)
                if not m:
                    continue
                if any(folded == b or folded.startswith(b + " ") for b in fl.blocked):
                    blocked = max(
                        (b for b in fl.blocked if folded == b or folded.startswith(b + " ")), key=len
                    )
                    if len(blocked) >= len(m[0]):
                        continue
                n = len(m[0])
                if n > best_len:
                    best_len, best = n, {path}
                elif n == best_len:
                    best.add(path)
            if best:
                owners[id(line)] = best
        return owners

    def _labelled(
        self, spec: FieldSpec, fl: FieldLabels, ctx: DocContext, owners: dict[int, set[str]]
    ) -> list[FieldValue]:
        out: list[FieldValue] = []
        for line in ctx.lines:
            if spec.path not in owners.get(id(line), ()):
                continue
            phrase, rest = match_label(line.text, fl.phrases) or ("", "")
            quality = 0.95 if (fl.concept or phrase in (fold(spec.title or ""),)) else 0.85
            options: list[tuple[str, Line, float]] = []
            if rest:
                options.append((rest, line, _WEIGHT_SAME))
            for k, right in enumerate(ctx.right_of(line)[:3]):
                if id(right) in owners and not options:
                    break  # the next label on the row: this one has no value beside it
                options.append((right.text, right, _WEIGHT_RIGHT - 0.04 * k))
            if not rest:
                for below in ctx.below(line, max_rows=1):
                    if id(below) not in owners:
                        options.append((below.text, below, _WEIGHT_BELOW))
            for text, src, weight in options:
                value = coerce(spec, text, ctx, fl.concept)
                if value is None:
                    continue
                out.append(
                    FieldValue(
                        path=spec.path,
                        value=value,
                        raw=f"{line.text} → {text}" if src is not line else line.text,
                        page=src.page,
                        bbox=src.bbox,
                        region_class=src.region_class,
                        reader=self.name,
                        confidence=round(quality * weight * src.conf * _rank_bonus(fl, phrase, line, ctx), 4),
                    )
                )
                break  # nearest fitting value for this label
        return out

    def _fallback(self, spec: FieldSpec, fl: FieldLabels, ctx: DocContext) -> list[FieldValue]:
        """Values found without a label: a document's first date, its currency, its title."""
        out: list[FieldValue] = []
        if fl.concept == "issue_date" or (spec.is_date and fl.concept is None):
            for line in ctx.lines:
                dates = find_dates(line.text, ctx.dayfirst)
                if dates:
                    out.append(self._value(spec, dates[0][0], line, 0.45))
                    break
        elif fl.concept == "currency" or (spec.pattern or "").strip() == "^[A-Z]{3}$":
            if ctx.currency:
                line = next((ln for ln in ctx.lines if find_currency(ln.text) == ctx.currency), None)
                if line is not None:
                    out.append(self._value(spec, ctx.currency, line, 0.7))
        elif spec.type == "string" and fold(spec.name) in ("title", "heading", "form title"):
            titles = [ln for ln in ctx.lines if ln.region_class == "title"]
            pool = titles or sorted(ctx.lines, key=lambda ln: ln.bbox[1] - ln.bbox[3])[:1]
            if pool:
                out.append(self._value(spec, pool[0].text, pool[0], 0.6 if titles else 0.4))
        elif fl.concept == "total":
            # the largest amount printed on a row that mentions a total-like word
            best = None
            for line in ctx.lines:
                if re.search(r"(?i)total|summe|amount|betrag|montant", line.text):
                    for cand in [line, *ctx.right_of(line)]:
                        v = coerce(spec, cand.text.split(":")[-1], ctx)
                        if v is not None and (best is None or v > best[0]):
                            best = (v, cand)
            if best:
                out.append(self._value(spec, best[0], best[1], 0.4))
        return out

    def _value(self, spec: FieldSpec, value, line: Line, conf: float) -> FieldValue:
        return FieldValue(
            path=spec.path,
            value=value,
            raw=line.text,
            page=line.page,
            bbox=line.bbox,
            region_class=line.region_class,
            reader=self.name,
            confidence=round(conf * line.conf, 4),
        )


_STRONG_TOTAL = tuple(
    fold(p)
    for p in (
        "grand total", "amount due", "total due", "balance due", "total payable", "amount payable",
        "total ttc", "montant ttc", "net a payer", "gesamtbetrag", "rechnungsbetrag", "endbetrag",
        "rounded total", "total rounded", "nett total", "total amount due", "zu zahlen",
        "total incl", "total inclusive",
    )
)  # fmt: skip


def _rank_bonus(fl: FieldLabels, phrase: str, line: Line, ctx: DocContext) -> float:
    """Among several labelled totals the final, strongest one wins."""
    if fl.concept != "total":
        return 1.0
    bonus = 1.0 if any(phrase.startswith(s) for s in _STRONG_TOTAL) else 0.93
    # later on the page (and on later pages) is more likely the amount actually due
    page_h = max((p.height for p in ctx.pages if p.number == line.page), default=1)
    return bonus * (0.95 + 0.05 * (line.bbox[1] / page_h) + 0.001 * line.page)
