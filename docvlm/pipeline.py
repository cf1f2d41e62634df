"""The pipeline: sources → render → detect → read → assemble → validate → tables.

:class:`Pipeline` builds every stage and engine once, in its constructor (so a configuration
error is raised before the first document), then :meth:`Pipeline.process` runs one document.
:func:`extract` is the Python API; the ops runner and the Prefect flows hold a Pipeline too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from docvlm.assemble import assemble
from docvlm.datamodel import (
    DocStatus,
    DocumentResult,
    ErrorItem,
    Page,
    PageContent,
    PipelineOptions,
    SourceDoc,
)
from docvlm.einvoice.syntax import XML_MIME
from docvlm.errors import ConfigError, DocvlmError
from docvlm.lines import assign_regions, build_lines
from docvlm.procs import release_memory
from docvlm.read import DocumentContent, Reader, get_reader
from docvlm.read.einvoice_reader import EInvoiceReader
from docvlm.render import get_renderer
from docvlm.schema import SchemaSpec, load_schema
from docvlm.validate import validate_record

if TYPE_CHECKING:
    import pandas as pd

    from docvlm.engines.layout import LayoutDetector
    from docvlm.engines.ocr import OcrEngine

logger = logging.getLogger(__name__)


class _StageClock:
    """Wall and CPU seconds of each stage, added into a result's stats as ``<stage>_s`` and
    ``<stage>_cpu_s`` (CPU of the whole process: ONNX Runtime's threads count)."""

    def __init__(self, stats: dict[str, float]) -> None:
        self.stats = stats
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self, stage: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.stats[f"{stage}_s"] = self.stats.get(f"{stage}_s", 0.0) + wall - self.wall
        self.stats[f"{stage}_cpu_s"] = self.stats.get(f"{stage}_cpu_s", 0.0) + cpu - self.cpu
        self.wall, self.cpu = wall, cpu


def _error(exc: BaseException, default_stage: str) -> ErrorItem:
    stage = getattr(exc, "stage", default_stage) if isinstance(exc, DocvlmError) else default_stage
    return ErrorItem(stage=stage, error_type=type(exc).__name__, message=str(exc) or repr(exc))


class Pipeline:
    """Every stage and engine of a run, built once; :meth:`process` reads one document.

    Args:
        options: The run's options (a dict is validated into :class:`PipelineOptions`).
        schema: The JSON Schema file (or a loaded :class:`SchemaSpec`) to extract.
        reader: A ready reader to use instead of the one ``options.reader`` names.

    Raises:
        ConfigError: An option names an unknown kind, a model that cannot be loaded, a
            reader without what it needs (model, server), or the schema is unusable. Raised
            here, before any document is touched.
    """

    def __init__(
        self,
        options: PipelineOptions | dict | None = None,
        schema: str | Path | SchemaSpec | None = None,
        reader: Reader | None = None,
    ) -> None:
        if isinstance(options, dict):
            options = PipelineOptions.model_validate(options)
        self.options = options or PipelineOptions()
        self.schema = (
            schema if isinstance(schema, SchemaSpec) or schema is None else load_schema(schema)
        )
        self.layout: LayoutDetector | None = None
        self.ocr: OcrEngine | None = None
        if self.options.detect.enabled:
            from docvlm.engines.layout import get_layout_engine

            self.layout = get_layout_engine(self.options.detect)
            try:
                self.layout.ensure_ready()
            except DocvlmError as exc:
                raise ConfigError(f"layout model cannot be used: {exc}") from exc
        if self.options.ocr.enabled:
            from docvlm.engines.ocr import get_ocr_engine

            self.ocr = get_ocr_engine(self.options.ocr)
        # e-invoice XML (embedded or standalone) first, the configured reader for the page
        self.page_reader = reader or get_reader(self.options.reader)
        self.reader = EInvoiceReader.around(self.page_reader, self.options.einvoice)
        try:
            self.reader.ensure_ready()
        except ConfigError:
            raise
        except DocvlmError as exc:  # a model that cannot be loaded is a configuration error
            raise ConfigError(f"reader {self.options.reader.kind!r} cannot be used: {exc}") from exc

    def close(self) -> None:
        """Release the reader's connections (HTTP clients); models are freed with the object."""
        close = getattr(self.page_reader, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- stages before reading: render, layout, text

    def page_content(
        self,
        src: SourceDoc,
        errors: list[ErrorItem],
        stats: dict[str, float],
        pages: range | None = None,
    ) -> list[Page]:
        """Get each page's text (text layer or OCR) as lines and its layout regions; of a
        document split across workers, only the pages of ``pages`` (1-based).

        A page is rendered only when something needs its pixels: OCR (no text layer), or the
        layout detector (no text layer, or images covering ``detect.max_image_share`` of it).
        Other pages take their regions from the text layer. Images are dropped as soon as a
        page is done."""
        import numpy as np

        options = self.options
        renderer = get_renderer(src, options.render)
        out: list[Page] = []
        clock = _StageClock(stats)
        for rendered in renderer.iter_pages(src, pages):
            page = rendered.page
            chars = sum(len(w.text) for w in page.words)
            page.has_text_layer = chars >= options.ocr.min_text_chars
            layout = rendered.layout
            text_regions = (
                self.layout is not None
                and options.detect.text_layer_regions
                and page.has_text_layer
                and layout is not None
                and layout.image_share < options.detect.max_image_share
            )
            ocr = not page.has_text_layer and self.ocr is not None
            pixels = None
            if ocr or (self.layout is not None and not text_regions):
                try:
                    pixels = np.asarray(rendered.image)
                except DocvlmError as exc:  # the document keeps its other pages
                    errors.append(_error(exc, "render"))
                    clock.lap("render")
                    continue
            clock.lap("render")
            if text_regions:
                assert layout is not None
                page.regions = list(layout.regions)
                stats["text_layout_pages"] = stats.get("text_layout_pages", 0.0) + 1
            elif self.layout is not None and pixels is not None:
                try:
                    page.regions = self.layout.predict(pixels)
                except DocvlmError as exc:  # detection is a hint: read the page without it
                    errors.append(_error(exc, "detect"))
                stats["detect_pages"] = stats.get("detect_pages", 0.0) + 1
            clock.lap("detect")
            words = page.words
            if ocr and pixels is not None:
                try:
                    words = self.ocr.recognize(pixels)
                except DocvlmError as exc:
                    errors.append(_error(exc, "ocr"))
                stats["ocr_pages"] += 1
            clock.lap("ocr")
            page.lines = build_lines(words, page.number)
            assign_regions(page.lines, page.regions)
            page.words = []  # the lines hold the words; keep memory flat on long documents
            out.append(page)
            del pixels, rendered
        errors.extend(
            ErrorItem(stage="render", error_type="DamagedInput", message=w)
            for w in renderer.warnings
        )
        return out

    # -- one document

    def content(self, src: SourceDoc, pages: range | None = None) -> PageContent:
        """The pages of ``src`` (or of its page range ``pages``) read up to the reader:
        text, lines, regions. Never raises for a bad document: problems become ErrorItems."""
        started = time.perf_counter()
        stats = {"render_s": 0.0, "detect_s": 0.0, "ocr_s": 0.0, "ocr_pages": 0.0}
        errors: list[ErrorItem] = []
        out: list[Page] = []
        try:
            # a standalone e-invoice XML has no pages; the einvoice reader reads the file
            if src.mime != XML_MIME:
                out = self.page_content(src, errors, stats, pages)
        except DocvlmError as exc:
            errors.append(_error(exc, "render"))
        except MemoryError as exc:
            errors.append(
                ErrorItem(
                    stage="render",
                    error_type="MemoryError",
                    message=f"{src.path}: out of memory ({exc})",
                )
            )
        except (
            Exception
        ) as exc:  # an unexpected failure in a third-party decoder must not stop the run
            logger.exception("%s: unexpected error while rendering", src.path)
            errors.append(
                ErrorItem(
                    stage="render", error_type=type(exc).__name__, message=f"{src.path}: {exc}"
                )
            )
        return PageContent(
            pages=out, errors=errors, stats=stats, seconds=time.perf_counter() - started
        )

    def process(self, src: SourceDoc, schema: SchemaSpec | None = None) -> DocumentResult:
        """Run every stage on one document. Never raises for a bad document: problems
        become ErrorItems and the status says how far it got."""
        try:
            if src.error:
                return self.finish(src, PageContent(), schema)
            return self.finish(src, self.content(src), schema)
        finally:
            release_memory()

    def finish(
        self, src: SourceDoc, content: PageContent, schema: SchemaSpec | None = None
    ) -> DocumentResult:
        """Read, assemble and validate a document from its :meth:`content` (of the whole
        document, or the parts of a split one merged in page order)."""
        schema = schema or self.schema
        if schema is None:
            raise ConfigError("Pipeline.process needs a schema (give one to Pipeline(...))")
        options = self.options
        result = DocumentResult(
            doc_id=src.doc_id, source=src.path, schema_name=schema.name, status=DocStatus.FAILURE
        )
        if src.error:
            result.errors.append(
                ErrorItem(
                    stage="source", error_type="InputError", message=f"{src.path}: {src.error}"
                )
            )
            return result
        started = time.perf_counter() - content.seconds
        stats = {**content.stats, "read_s": 0.0}
        errors = list(content.errors)
        pages = content.pages
        result.pages = len(pages)
        if not pages and src.mime != XML_MIME:
            result.errors = errors
            return result

        clock = _StageClock(stats)
        try:
            renderer = get_renderer(src, options.render) if pages else None
            doc_content = DocumentContent(
                doc_id=src.doc_id,
                source=src.path,
                pages=pages,
                image=lambda n, _r=renderer: _r.render_page(src, n),
            )
            read = self.reader.read(doc_content, schema)
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
            errors.append(
                ErrorItem(stage="read", error_type=type(exc).__name__, message=f"{src.path}: {exc}")
            )
            record, chosen = {}, []
        clock.lap("read")
        errors.extend(validate_record(record, schema))
        result.record = record
        result.values = chosen
        result.errors = errors
        result.status = DocStatus.PARTIAL if errors else DocStatus.SUCCESS
        stats["total_s"] = time.perf_counter() - started
        result.stats = stats
        return result


class _LazyTables(dict):
    """Output tables read from ``extract``'s Parquet files on first access."""

    def __init__(self, out_dir: Path, names: list[str]) -> None:
        super().__init__()
        self._out = out_dir
        self._names = names

    def __missing__(self, name: str) -> pd.DataFrame:
        import pandas as pd

        if name not in self._names:
            raise KeyError(name)
        path = self._out / f"{name}.parquet"
        df = pd.read_parquet(path) if path.exists() else pd.read_csv(path.with_suffix(".csv"))
        self[name] = df
        return df

    def keys(self):  # type: ignore[override]
        return list(self._names)

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


@dataclass
class ExtractResult:
    """What a run produced: per-document results, the output tables and the written files."""

    schema: SchemaSpec
    results: list[DocumentResult]
    tables: dict[str, pd.DataFrame]
    written: list[Path] = field(default_factory=list)
    resumed: int = 0  #: documents a previous, interrupted run with the same out_dir finished

    @property
    def failed(self) -> list[DocumentResult]:
        return [r for r in self.results if r.status == DocStatus.FAILURE]

    @property
    def records(self) -> pd.DataFrame:
        return self.tables[self.schema.name]


def _slim(result: DocumentResult) -> DocumentResult:
    """A result without its record and values (what a long run keeps in memory)."""
    return result.model_copy(update={"record": {}, "values": []})


def _memory_budget(options: PipelineOptions, jobs: int) -> int | None:
    """Per-worker address-space limit: the option, else 3/4 of RAM shared by the workers;
    none for local VLMs (CUDA reserves far more address space than it uses)."""
    if options.reader.kind in ("transformers", "cascade") and options.reader.model:
        return None
    if options.limits.max_memory_mb:
        return options.limits.max_memory_mb
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return max(_min_address_space(options), int(total * 0.75 / jobs / 2**20))


def _min_address_space(options: PipelineOptions) -> int:
    """The least address space (MB) a worker is given: OpenVINO maps ~1 GB more than ONNX
    Runtime (measured after a dense scan: 1.98 GB peak virtual size vs 1.08 GB; held to
    2048 MB, its OCR of a dense scan failed, at 2560 it did not)."""
    from docvlm.engines.openvino_rt import resolve_runtime

    try:
        runtime = resolve_runtime(options.ocr.runtime)
    except ConfigError:  # reported when the workers build their Pipelines
        runtime = "onnxruntime"
    return 3072 if runtime == "openvino" else 2048


def extract(
    inputs: Sequence[str | Path] | str | Path,
    schema: str | Path | SchemaSpec,
    options: PipelineOptions | dict | None = None,
    out_dir: str | Path | None = None,
    progress: bool | Callable[[DocumentResult], None] = False,
    reader: Reader | None = None,
    jobs: int = 0,
    keep_results: bool = True,
) -> ExtractResult:
    """Extract ``schema`` from every input and return (and optionally write) the tables.

    With ``out_dir``, every finished document is journaled at once: a killed run keeps
    what it finished, and running again with the same ``out_dir`` (same schema and options)
    processes only the rest. The tables are then consolidated and written atomically.

    Args:
        inputs: files, folders (recursive) or glob patterns.
        schema: a JSON Schema file or a loaded SchemaSpec.
        options: PipelineOptions (or a dict of them).
        out_dir: when given, the tables are written there as Parquet and CSV.
        progress: True for a progress bar, or a callback called after each document.
        reader: a ready Reader instance to use instead of ``options.reader`` (in-process).
        jobs: worker processes (each with its own Pipeline; a document that crashes or
            exhausts its worker, or overruns ``options.limits``, becomes a failure row);
            0 runs in this process.
        keep_results: keep every full result (record, values) in ``.results`` and the
            tables in memory; False keeps slim results and reads the tables back from
            ``out_dir`` on access (for long runs).

    Returns:
        ExtractResult with ``.tables`` (pandas DataFrames by table name) and ``.results``.

    Raises:
        ConfigError: the options, schema or a model cannot be used (before any document).
    """
    from docvlm.sources import discover
    from docvlm.staging import Journal, chunks, ordered_results, run_key
    from docvlm.tables import ChunkedTables, build_tables

    if isinstance(options, dict):
        options = PipelineOptions.model_validate(options)
    options = options or PipelineOptions()
    spec = schema if isinstance(schema, SchemaSpec) else load_schema(schema)
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if reader is not None and jobs:
        raise ConfigError("a ready reader instance runs in this process: use jobs=0")
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a folder")
    pipeline = pool = None
    if jobs:
        from docvlm.workers import WorkerPool

        pool = WorkerPool(
            options, spec, jobs, options.limits.max_seconds_per_doc, _memory_budget(options, jobs)
        )
        pool.start()  # raises ConfigError when a worker cannot build its Pipeline
    else:
        pipeline = Pipeline(options, spec, reader=reader)
    journal = Journal(out_dir, run_key(spec, options)) if out_dir is not None else None
    try:
        docs = discover(list(inputs))
        done = journal.done() if journal is not None else set()
        todo = [d for d in docs if (d.doc_id, d.path) not in done]
        if done:
            logger.info(
                "resuming: %d documents already done, %d to go", len(docs) - len(todo), len(todo)
            )
        stream = pool.map(todo) if pool is not None else (pipeline.process(d) for d in todo)
        kept: list[DocumentResult] = []
        bar = None
        if progress is True:
            from rich.progress import Progress

            bar = Progress(transient=True)
            bar.start()
            task = bar.add_task("extracting", total=len(todo))
        try:
            for res in stream:
                if journal is not None:
                    journal.add(res)
                kept.append(res if keep_results or journal is None else _slim(res))
                if bar is not None:
                    bar.update(task, advance=1, description=Path(res.source).name[:40])
                elif callable(progress):
                    progress(res)
        finally:
            if bar is not None:
                bar.stop()
    finally:
        if pool is not None:
            pool.close()
        elif pipeline is not None and reader is None:
            pipeline.close()
        if journal is not None:
            journal.close()
    if journal is None:
        return ExtractResult(schema=spec, results=kept, tables=build_tables(kept, spec))

    writer = ChunkedTables(out_dir, options.output.formats)
    results: list[DocumentResult] = []
    try:
        wrote = False
        for chunk in chunks(ordered_results(journal, docs)):
            writer.write(build_tables(chunk, spec))
            results.extend(chunk if keep_results else (_slim(r) for r in chunk))
            wrote = True
        if not wrote:
            writer.write(build_tables([], spec))
        written = writer.commit()
    except BaseException:
        writer.abort()
        raise
    journal.remove()
    names = list(build_tables([], spec))
    tables = build_tables(results, spec) if keep_results else _LazyTables(Path(out_dir), names)
    return ExtractResult(
        schema=spec, results=results, tables=tables, written=written, resumed=len(docs) - len(todo)
    )
