"""The ordered stages and the Python API: sources → render → detect → read → assemble →
validate → tables."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.datamodel import DocStatus, DocumentResult, ErrorItem, Page, PipelineOptions, SourceDoc
from docvlm.einvoice.syntax import XML_MIME
from docvlm.errors import DocvlmError
from docvlm.extraction.assemble import assemble
from docvlm.extraction.layout import assign_regions, build_lines
from docvlm.extraction.schema import SchemaSpec, load_schema
from docvlm.read import DocumentContent, Reader, get_reader
from docvlm.read.einvoice_reader import EInvoiceReader
from docvlm.render import get_renderer
from docvlm.validate import validate_record

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


def _error(exc: BaseException, default_stage: str) -> ErrorItem:
    stage = getattr(exc, "stage", default_stage) if isinstance(exc, DocvlmError) else default_stage
    return ErrorItem(stage=stage, error_type=type(exc).__name__, message=str(exc) or repr(exc))


@dataclass
class Engines:
    """Engines shared by all documents of a run (loaded lazily, once)."""

    options: PipelineOptions
    reader: Reader | None = None
    _detector: Any = None
    _ocr: Any = None

    def detector(self):
        if self._detector is None and self.options.detect.enabled:
            from docvlm.detect import get_detector

            self._detector = get_detector(self.options.detect)
        return self._detector

    def ocr(self):
        if self._ocr is None and self.options.ocr.enabled:
            from docvlm.ocr import get_ocr_engine

            self._ocr = get_ocr_engine(self.options.ocr)
        return self._ocr

    def get_reader(self) -> Reader:
        if self.reader is None:
            self.reader = get_reader(self.options.reader)
        # e-invoice XML (embedded or standalone) first, the configured reader for the page
        self.reader = EInvoiceReader.around(self.reader, self.options.einvoice)
        self.reader.ensure_ready()
        return self.reader


def _read_pages(src: SourceDoc, engines: Engines, errors: list[ErrorItem], stats: dict[str, float]) -> list[Page]:
    """Render, detect and OCR each page, keeping only text and regions (images are dropped)."""
    import numpy as np

    options = engines.options
    renderer = get_renderer(src, options.render)
    pages: list[Page] = []
    clock = time.perf_counter()
    for rendered in renderer.iter_pages(src):
        page = rendered.page
        now = time.perf_counter()
        stats["render_s"] += now - clock
        clock = now
        pixels = np.asarray(rendered.image)
        detector = engines.detector()
        if detector is not None:
            try:
                page.regions = detector.predict(pixels)
            except DocvlmError as exc:  # detection is a hint: read the page without it
                errors.append(_error(exc, "detect"))
        now = time.perf_counter()
        stats["detect_s"] += now - clock
        clock = now
        chars = sum(len(w.text) for w in page.words)
        page.has_text_layer = chars >= options.ocr.min_text_chars
        words = page.words
        if not page.has_text_layer and engines.ocr() is not None:
            try:
                words = engines.ocr().recognize(pixels)
            except DocvlmError as exc:
                errors.append(_error(exc, "ocr"))
            stats["ocr_pages"] += 1
        now = time.perf_counter()
        stats["ocr_s"] += now - clock
        clock = now
        page.lines = build_lines(words, page.number)
        assign_regions(page.lines, page.regions)
        page.words = []  # the lines hold the words; keep memory flat on long documents
        pages.append(page)
        del pixels, rendered
    errors.extend(
        ErrorItem(stage="render", error_type="DamagedInput", message=w) for w in renderer.warnings
    )
    return pages


def process_document(
    src: SourceDoc,
    schema: SchemaSpec,
    options: PipelineOptions | None = None,
    reader: Reader | None = None,
    engines: Engines | None = None,
) -> DocumentResult:
    """Run every stage on one document. Never raises for a bad document: problems become
    ErrorItems and the status says how far it got."""
    options = options or PipelineOptions()
    engines = engines or Engines(options, reader=reader)
    started = time.perf_counter()
    stats = {"render_s": 0.0, "detect_s": 0.0, "ocr_s": 0.0, "read_s": 0.0, "ocr_pages": 0.0}
    result = DocumentResult(
        doc_id=src.doc_id, source=src.path, schema_name=schema.name, status=DocStatus.FAILURE
    )
    if src.error:
        result.errors.append(
            ErrorItem(stage="source", error_type="InputError", message=f"{src.path}: {src.error}")
        )
        return result
    errors: list[ErrorItem] = []
    pages: list[Page] = []
    try:
        # a standalone e-invoice XML has no pages; the einvoice reader reads the file
        pages = [] if src.mime == XML_MIME else _read_pages(src, engines, errors, stats)
    except DocvlmError as exc:
        errors.append(_error(exc, "render"))
    except MemoryError as exc:
        errors.append(ErrorItem(stage="render", error_type="MemoryError", message=f"{src.path}: out of memory ({exc})"))
    except Exception as exc:  # an unexpected failure in a third-party decoder must not stop the run
        logger.exception("%s: unexpected error while rendering", src.path)
        errors.append(ErrorItem(stage="render", error_type=type(exc).__name__, message=f"{src.path}: {exc}"))
    result.pages = len(pages)
    if not pages and src.mime != XML_MIME:
        result.errors = errors
        return result

    clock = time.perf_counter()
    try:
        renderer = get_renderer(src, options.render) if pages else None
        content = DocumentContent(
            doc_id=src.doc_id,
            source=src.path,
            pages=pages,
            image=lambda n, _r=renderer: _r.render_page(src, n),
        )
        active = engines.get_reader()
        read = active.read(content, schema)
        errors.extend(read.errors)
        stats["vlm_calls"] = float(read.calls)
        record, chosen = assemble(read.values, schema)
        for value in chosen:
            key = f"filled_by_{value.reader}"
            stats[key] = stats.get(key, 0.0) + 1
    except DocvlmError as exc:
        errors.append(_error(exc, "read"))
        record, chosen = {}, []
    except Exception as exc:
        logger.exception("%s: reader crashed", src.path)
        errors.append(ErrorItem(stage="read", error_type=type(exc).__name__, message=f"{src.path}: {exc}"))
        record, chosen = {}, []
    stats["read_s"] = time.perf_counter() - clock
    errors.extend(validate_record(record, schema))
    result.record = record
    result.values = chosen
    result.errors = errors
    result.status = DocStatus.PARTIAL if errors else DocStatus.SUCCESS
    stats["total_s"] = time.perf_counter() - started
    result.stats = stats
    return result


@dataclass
class ExtractResult:
    """What a run produced: per-document results, the output tables and the written files."""

    schema: SchemaSpec
    results: list[DocumentResult]
    tables: dict[str, pd.DataFrame]
    written: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[DocumentResult]:
        return [r for r in self.results if r.status == DocStatus.FAILURE]

    @property
    def records(self) -> pd.DataFrame:
        return self.tables[self.schema.name]


def extract(
    inputs: Sequence[str | Path] | str | Path,
    schema: str | Path | SchemaSpec,
    options: PipelineOptions | dict | None = None,
    out_dir: str | Path | None = None,
    progress: bool | Callable[[DocumentResult], None] = False,
    reader: Reader | None = None,
) -> ExtractResult:
    """Extract ``schema`` from every input and return (and optionally write) the tables.

    Args:
        inputs: files, folders (recursive) or glob patterns.
        schema: a JSON Schema file or a loaded SchemaSpec.
        options: PipelineOptions (or a dict of them).
        out_dir: when given, the tables are written there as Parquet and CSV.
        progress: True for a progress bar, or a callback called after each document.
        reader: a ready Reader instance to use instead of ``options.reader``.

    Returns:
        ExtractResult with ``.tables`` (pandas DataFrames by table name) and ``.results``.
    """
    from docvlm.sources import discover
    from docvlm.tables import build_tables, write_tables

    if isinstance(options, dict):
        options = PipelineOptions.model_validate(options)
    options = options or PipelineOptions()
    spec = schema if isinstance(schema, SchemaSpec) else load_schema(schema)
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    docs = discover(list(inputs))
    engines = Engines(options, reader=reader)
    results: list[DocumentResult] = []
    bar = None
    if progress is True:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task("extracting", total=len(docs))
    try:
        for src in docs:
            res = process_document(src, spec, options, engines=engines)
            results.append(res)
            if bar is not None:
                bar.update(task, advance=1, description=Path(src.path).name[:40])
            elif callable(progress):
                progress(res)
    finally:
        if bar is not None:
            bar.stop()
    tables = build_tables(results, spec)
    written = write_tables(tables, out_dir, options.output.formats) if out_dir else []
    return ExtractResult(schema=spec, results=results, tables=tables, written=written)
