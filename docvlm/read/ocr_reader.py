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
from docvlm.normalize import coerce as to_type
from docvlm.normalize import (
    find_currency,
    find_dates,
    fold,
    is_amount_text,
    parse_amount,
)
from docvlm.read.base import DocumentContent, Reader, ReadResult
from docvlm.read.rules.context import DocContext
from docvlm.read.rules.items import read_array
from docvlm.read.rules.labels import FieldLabels, labels_for, match_label, phrases_by_first_word
from docvlm.read.rules.parties import read_party
from docvlm.schema import FieldSpec, SchemaSpec

logger = logging.getLogger(__name__)

_WEIGHT_SAME, _WEIGHT_RIGHT, _WEIGHT_BELOW = 1.0, 0.92, 0.8


_LEADING_NOISE = re.compile(
    r"^\s*(?:\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp][Mm])?|\d{1,3}(?=\s+[^\W\d_]{2}))\s*"
)


def label_text(text: str) -> str:
    """A line's text for label matching: without a leading time or item count that receipt
    printers put before a label ('19:32:35 Total:', '2 TOTAL')."""
    return _LEADING_NOISE.sub("", text, count=1) or text


def coerce(spec: FieldSpec, text: str, ctx: DocContext, concept: str | None = None):
    """``text`` as a value of ``spec``'s type, or None when it does not fit."""
    text = text.strip().strip("|").strip()
    if not text:
        return None
    if spec.is_number:
        if re.search(r"(?<!\d)\d{1,2}:\d{2}(?!\d)", text):
            return None  # a time of day
        if not is_amount_text(text) or "%" in text:
            text = _trailing_amount(text) or ""
            if not text:
                return None
    if spec.is_date or spec.is_number or spec.type == "boolean" or spec.enum:
        return to_type(spec, text, ctx.dayfirst, ctx.decimal_comma, strict=True)
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


_TRAILING_AMOUNT = re.compile(
    r"(?:^|[^\d.,])((?:[A-Z]{2,3}\s?|[$€£¥]\s?)?-?\(?\d{1,3}(?:[.,' \u00a0]\d{3})*[.,]\d{2}\)?\s*(?:[A-Z]{3}|[$€£¥])?)(?!\s*%)\W*$"
)


def _trailing_amount(text: str) -> str | None:
    """The money amount that ends a text ('(Inclusive GST)RM 141.50' → 'RM 141.50')."""
    m = _TRAILING_AMOUNT.search(text)
    return m.group(1) if m else None


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
        return self.read_context(DocContext.build(doc.pages), schema, wanted)

    def read_context(
        self,
        ctx: DocContext,
        schema: SchemaSpec,
        wanted: list[str] | None = None,
        arrays: bool = True,
    ) -> ReadResult:
        """``read`` over an already built context (the learned reader shares its own);
        ``arrays`` False: scalar fields only."""
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
                result.values.extend(self._party_labelled(spec, ctx, all_phrases))
                continue
            found = self._labelled(spec, fl, ctx, owners) + self._fallback(spec, fl, ctx)
            if fl.concept == "total":
                found = self._check_totals(spec, found, ctx)
            result.values.extend(found)
        stop = tuple(
            p
            for fl in labels.values()
            if fl.concept in ("subtotal", "tax", "total")
            for p in fl.phrases
        )
        for arr in schema.arrays if arrays else ():
            if wanted is not None and not any(w.startswith(arr.path) for w in wanted):
                continue
            result.values.extend(read_array(arr, ctx, stop, self.name))
        return result

    @staticmethod
    def _owners(ctx: DocContext, labels: dict[str, FieldLabels]) -> dict[int, set[str]]:
        """For each line, the fields whose label matches it most specifically."""
        owners: dict[int, set[str]] = {}
        # a label matches only by a phrase that starts with the text's first word
        by_first = {path: phrases_by_first_word(fl.phrases) for path, fl in labels.items()}
        for line in ctx.lines:
            best_len, best = 0, set()
            text = label_text(line.text)
            folded = fold(text)
            first = folded.split(" ", 1)[0]
            for path, fl in labels.items():
                if first not in by_first[path]:
                    continue
                m = match_label(text, fl.phrases)
                if not m:
                    continue
                if any(folded == b or folded.startswith(b + " ") for b in fl.blocked):
                    blocked = max(
                        (b for b in fl.blocked if folded == b or folded.startswith(b + " ")),
                        key=len,
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
            phrase, rest = match_label(label_text(line.text), fl.phrases) or ("", "")
            quality = 0.95 if (fl.concept or phrase in (fold(spec.title or ""),)) else 0.85
            options: list[tuple[str, Line, float]] = []
            if rest:
                options.append((rest, line, _WEIGHT_SAME))
            for k, right in enumerate(ctx.right_of(line)[:3]):
                if id(right) in owners and not options:
                    break  # the next label on the row: this one has no value beside it
                options.append((right.text, right, _WEIGHT_RIGHT - 0.04 * k))
            if not rest:
                # under a label that shares its row with other columns: a table column's cell
                below_weight = _WEIGHT_BELOW * (0.85 if len(ctx.row(line).lines) > 1 else 1.0)
                for below in ctx.below(line, max_rows=1):
                    if id(below) not in owners:
                        options.append((below.text, below, below_weight))
            for text, src, weight in options:
                value = coerce(spec, text, ctx, fl.concept)
                if value is None:
                    continue
                conf = quality * weight * _rank_bonus(fl, phrase, line, ctx)
                out.append(self._labelled_value(spec, value, line, src, text, conf))
                break  # nearest fitting value for this label
        return out

    def _labelled_value(
        self, spec: FieldSpec, value, label: Line, src: Line, text: str, conf: float
    ) -> FieldValue:
        """A value read at ``src`` for the label on ``label``; provenance names both."""
        return FieldValue(
            path=spec.path,
            value=value,
            raw=f"{label.text} → {text}" if src is not label else label.text,
            page=src.page,
            bbox=src.bbox,
            region_class=src.region_class,
            reader=self.name,
            confidence=round(conf * src.conf, 4),
        )

    def _party_labelled(
        self, spec: FieldSpec, ctx: DocContext, all_phrases: tuple[str, ...]
    ) -> list[FieldValue]:
        """A party field printed under the schema's own label ('Insured: Jane Doe').

        Only the field's own wording counts (its title, its path in words, vendor labels), and
        only as a label proper: alone on its line or followed by a colon."""
        own = [fold(x) for x in spec.labels]
        if spec.title:
            own.append(fold(spec.title))
        own.append(fold(spec.path.replace(".", " ").replace("_", " ")))
        phrases = tuple(p for p in dict.fromkeys(own) if p)
        out: list[FieldValue] = []
        for line in ctx.lines:
            m = match_label(line.text, phrases)
            if not m:
                continue
            phrase, rest = m
            head = line.text.split(":", 1)
            if rest and (len(head) < 2 or fold(head[0]) != phrase):
                continue
            options = [(rest, line)] if rest else []
            options += [(r.text, r) for r in ctx.right_of(line)[:1]]
            if not rest:
                options += [(b.text, b) for b in ctx.below(line, max_rows=1)[:1]]
            for text, src in options:
                text = text.strip(" :|")
                if sum(ch.isalpha() for ch in text) < 2 or match_label(text, all_phrases):
                    continue
                out.append(self._labelled_value(spec, text, line, src, text, 0.9))
                break
        return out[:1]

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
                line = next(
                    (ln for ln in ctx.lines if find_currency(ln.text) == ctx.currency), None
                )
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

    def _check_totals(
        self, spec: FieldSpec, found: list[FieldValue], ctx: DocContext
    ) -> list[FieldValue]:
        """Re-rank total candidates: the amount tendered minus the change given confirms a
        total; rows of a tax breakdown, column headers and amounts before tax rank low."""
        paid = _payments(ctx, _PAID)
        change = _payments(ctx, _CHANGE)[:1]
        expected: list[tuple[float, Line]] = []
        if change and paid:
            expected = [
                (round(p - change[0][0], 2), line) for p, line in paid if 0 <= change[0][0] < p
            ]
        rounding = [r for r, _ in _payments(ctx, _ROUNDING) if r != 0]
        summary_top = _summary_top(ctx)
        decimals = ctx.decimal_comma is not None
        values = [fv.value for fv in found if isinstance(fv.value, (int, float))]
        known = [p for p, _ in paid] + [e for e, _ in expected]
        out: list[FieldValue] = []
        for fv in found:
            if not isinstance(fv.value, (int, float)):
                out.append(fv)
                continue
            if fv.value < 0 or any(k > 0 and abs(fv.value - 100 * k) < 0.005 for k in known):
                continue  # negative, or a paid amount read without its decimal point
            factor = 1.0
            label_text = fv.raw.split(" → ")[0]
            if _BEFORE_TAX.search(label_text):
                continue  # 'Total Sales (Excluding GST)': the net amount
            if _STRONG_WORDS.search(label_text):
                factor *= 1.05
            elif _WEAK_TOTAL.match(label_text):
                factor *= 0.85  # 'Amount' alone is mostly a column header
            elif "%" in label_text:
                factor *= 0.85  # 'Total 6% supplies': one line of a tax breakdown
            if any(abs(u + r - fv.value) < 0.005 for u in values for r in rounding):
                factor *= 1.15  # the total after the rounding adjustment printed above it
            top = summary_top.get(fv.page or 0)
            if top is not None and fv.bbox is not None and fv.bbox[3] > top:
                factor *= 0.75  # a row of the tax breakdown printed after the total
            if any(abs(fv.value - e) < 0.005 for e, _ in expected):
                factor *= 1.3
            elif not change and any(abs(fv.value - p) < 0.005 for p, _ in paid):
                factor *= 1.1
            if fv.value == 0 and any(v > 0 for v in values):
                factor *= 0.5  # 'Balance due 0.00' after a payment: not the invoice's total
            if sum(abs(v - fv.value) < 0.005 for v in values) > 1:
                factor *= 1.05  # printed twice (total incl. tax, total after rounding)
            if decimals and not re.search(r"\d[.,]\d{2}(?!\d)", fv.raw.split(" → ")[-1]):
                factor *= 0.8  # '600' among amounts printed with cents: a dropped decimal point
            out.append(fv.model_copy(update={"confidence": round(fv.confidence * factor, 4)}))
        if expected:
            value, line = max(expected, key=lambda t: t[0])
            conf = 0.45
            best = max(
                (fv for fv in out if isinstance(fv.value, (int, float))),
                key=lambda f: f.confidence,
                default=None,
            )
            if (
                best is not None
                and abs(best.value - value) > 0.005
                and abs(best.value - value) <= 0.05 + 1e-9
            ):
                # tendered − change differs from the printed total by a rounding step
                conf = best.confidence / max(line.conf, 1e-6) + 0.01
            out.append(self._value(spec, value, line, conf))
        elif paid and not any(isinstance(fv.value, (int, float)) for fv in out):
            out.append(self._value(spec, paid[0][0], paid[0][1], 0.35))
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


_PAID = re.compile(
    r"(?i)(?<![a-z])(cash|tunai|tendered|tender|amount paid|paid amount|paid|payment|credit card|"
    r"credit|debit|card|visa|master\s?card|amex|bezahlt|gegeben|especes|espèces|carte bancaire|"
    r"efectivo)(?![a-z])"
)
_CHANGE = re.compile(
    r"(?i)(?<![a-z])(change|change due|change amt|r[uü]ckgeld|wechselgeld|rendu|monnaie rendue|"
    r"[aà] rendre|cambio|baki)(?![a-z])"
)
_BEFORE_TAX = re.compile(
    r"(?i)(?<![a-z])(excl|exclusive|excluding|excluded|exc|before tax|pre-?tax|ohne|hors tax\w*|ht|"
    r"netto|w/o)(?![a-z])"
)
_STRONG_WORDS = re.compile(
    r"(?i)(?<![a-z])(grand|incl|inkl|inclusive|including|ttc|rounded|rounding|after adj\w*|nett|"
    r"payable|due|zu zahlen|a payer|gesamtbetrag|rechnungsbetrag|endbetrag|brutto)(?![a-z])"
)
_ROUNDING = re.compile(
    r"(?i)(?<![a-z])(round\w*|rundung\w*|arrondi\w*|redondeo|pembundaran)(?![a-z])"
)
_WEAK_TOTAL = re.compile(r"(?i)^\W*(amount|amt|net total|summe|betrag|montant)\W*(\(\w+\))?\W*$")
_SUMMARY = re.compile(
    r"(?i)^\W*((gst|tax|vat|sst|mwst|ust|tva)\s*(summary|analysis|breakdown|code)|summary|"
    r"tax\s*rate|mwst\s*satz|taux)\b"
)


def _payments(ctx: DocContext, pattern: re.Pattern[str]) -> list[tuple[float, Line]]:
    """Amounts on lines that name a payment ('CASH 50.00', 'Tendered 9.00') or the change."""
    out: list[tuple[float, Line]] = []
    for line in ctx.lines:
        m = pattern.search(line.text)
        if not m or (
            pattern is _PAID and (_CHANGE.search(line.text) or _ROUNDING.search(line.text))
        ):
            continue
        if len(line.text) > 40:
            continue
        rest = line.text[m.end() :]
        for text, src in [(rest, line)] + [(r.text, r) for r in ctx.right_of(line)[:2]]:
            amount = _trailing_amount(text.strip(" :.|"))
            value = parse_amount(amount, ctx.decimal_comma) if amount is not None else None
            if value is not None:
                out.append((value if pattern is _ROUNDING else abs(value), src))
                break
    return out


def _summary_top(ctx: DocContext) -> dict[int, float]:
    """Per page, where a tax breakdown table ('GST Summary', 'Tax Code') starts."""
    tops: dict[int, float] = {}
    for line in ctx.lines:
        if _SUMMARY.search(line.text) and line.page not in tops:
            tops[line.page] = line.bbox[1]
    return tops


def _rank_bonus(fl: FieldLabels, phrase: str, line: Line, ctx: DocContext) -> float:
    """Among several labelled totals the final, strongest one wins."""
    if fl.concept != "total":
        return 1.0
    bonus = 1.0 if any(phrase.startswith(s) for s in _STRONG_TOTAL) else 0.93
    # later on the page (and on later pages) is more likely the amount actually due
    page_h = max((p.height for p in ctx.pages if p.number == line.page), default=1)
    return bonus * (0.95 + 0.05 * (line.bbox[1] / page_h) + 0.001 * line.page)
