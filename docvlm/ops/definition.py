"""Pipeline definitions: one YAML file per unattended pipeline (``pipelines/*.yaml``).

A definition names its source (folder, file or glob), the JSON Schema, the stage options
(render / detect / ocr / reader, the same models as :class:`docvlm.datamodel.PipelineOptions`),
the output folder and formats, and when it runs (a cron schedule and/or watch mode).

Relative paths in a definition resolve against the **parent of the folder holding the YAML
file** — for ``pipelines/invoices.yaml`` that is the project root — never against the current
directory, so a pipeline behaves the same whether it is started by hand, by ``docvlm serve`` or
by a Prefect worker. Absolute paths and ``~`` work as usual.

Example::

    name: invoices
    source: sample_docs/invoices
    schema: schemas/invoice.schema.json
    detect: {enabled: true}
    reader: {kind: ocr}
    output: {dir: out/invoices, formats: [parquet, csv]}
    schedule: {cron: "0 6 * * *", timezone: Europe/Berlin}
    watch: {enabled: false}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from docvlm.datamodel import (
    DetectOptions,
    EInvoiceOptions,
    OcrOptions,
    OutputOptions,
    PipelineOptions,
    ReaderOptions,
    RenderOptions,
)
from docvlm.errors import ConfigError

logger = logging.getLogger(__name__)

#: Bump when the meaning of the ledger's configuration hash changes.
CONFIG_HASH_VERSION = 1

#: Reader kinds that call a VLM (their calls go through the global concurrency limit).
VLM_READERS = frozenset({"transformers", "openai", "cascade"})

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class OutputConfig(_Model):
    """Where and how results are written."""

    dir: str = Field(description="output folder (one partitioned dataset per table inside)")
    formats: list[Literal["parquet", "csv"]] = Field(
        default_factory=lambda: ["parquet", "csv"],
        description="parquet parts are always written; 'csv' adds a consolidated OUT/<table>.csv",
    )


class ScheduleConfig(_Model):
    """When ``docvlm serve`` runs the pipeline."""

    cron: str = Field(description="5-field cron expression, e.g. '0 6 * * *'")
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        if not _cron_is_valid(value):
            raise ValueError(f"not a valid cron expression: {value!r} (expected e.g. '0 6 * * *')")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value


class WatchConfig(_Model):
    """Folder watching (``docvlm watch``, and ``docvlm serve`` when enabled)."""

    enabled: bool = False
    settle_s: float = Field(
        default=2.0, gt=0, description="a file counts as written when size+mtime hold this long"
    )
    batch_s: float = Field(
        default=3.0, ge=0, description="quiet time that closes a burst into one batch"
    )
    max_batch: int = Field(default=500, ge=1, description="flush a batch at this many files")
    max_wait_s: float = Field(
        default=60.0, gt=0, description="flush a growing batch at the latest after this long"
    )
    poll_s: float = Field(default=0.5, gt=0, description="how often pending files are checked")
    rescan_s: float = Field(
        default=300.0, ge=0, description="stat-only rescan of the folders (0 = never)"
    )
    ignore: list[str] = Field(
        default_factory=lambda: [".*", "~*", "*.tmp", "*.part", "*.crdownload", "*.swp"],
        description="file-name patterns never picked up (temporary files of writers)",
    )


class RunConfig(_Model):
    """How a run processes documents."""

    batch_size: int = Field(
        default=16, ge=1, description="documents per committed Parquet part (and ledger commit)"
    )
    retries: int = Field(default=2, ge=0, description="in-run retries of a failing document")
    retry_delay_s: float = Field(default=5.0, ge=0)
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="runs that may start a document without finishing it (crash, kill) "
        "before it is parked as poison",
    )
    workers: int = Field(
        default=1,
        ge=1,
        description=">1: N workers: a local Dask cluster (prefect), worker processes (local)",
    )
    dask_address: str | None = Field(
        default=None, description="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786"
    )
    vlm_limit: int = Field(
        default=4, ge=1, description="global limit on concurrent VLM documents (all runs)"
    )
    vlm_limit_name: str = "docvlm-vlm"
    lock_timeout_s: float = Field(
        default=3600.0, ge=0, description="wait this long for another run on the same output"
    )


class PipelineConfig(_Model):
    """One pipeline definition, with every path resolved to an absolute path."""

    name: str = Field(description="lowercase letters, digits and dashes (deployment name)")
    description: str = ""
    source: list[str] = Field(description="folders (recursive), files or globs")
    schema_path: str = Field(alias="schema", description="JSON Schema file")
    render: RenderOptions = Field(default_factory=RenderOptions)
    detect: DetectOptions = Field(default_factory=DetectOptions)
    ocr: OcrOptions = Field(default_factory=OcrOptions)
    reader: ReaderOptions = Field(default_factory=ReaderOptions)
    einvoice: EInvoiceOptions = Field(default_factory=EInvoiceOptions)
    output: OutputConfig
    schedule: ScheduleConfig | None = None
    watch: WatchConfig = Field(default_factory=WatchConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    base_dir: str = Field(default="", description="folder relative paths resolved against")
    file: str | None = Field(default=None, description="the YAML file it was loaded from")

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("source")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one folder, file or glob")
        return value

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                f"{value!r}: use lowercase letters, digits and dashes (e.g. 'invoices-eu')"
            )
        return value

    # -- derived -------------------------------------------------------------------------

    @property
    def options(self) -> PipelineOptions:
        """The stage options of this pipeline as the library takes them."""
        return PipelineOptions(
            render=self.render,
            detect=self.detect,
            ocr=self.ocr,
            reader=self.reader,
            einvoice=self.einvoice,
            output=OutputOptions(formats=list(self.output.formats)),
        )

    @property
    def out_dir(self) -> Path:
        return Path(self.output.dir)

    @property
    def ledger_path(self) -> Path:
        """The ledger lives with the outputs it vouches for: ``OUT/_ledger.sqlite``."""
        return self.out_dir / "_ledger.sqlite"

    @property
    def uses_vlm(self) -> bool:
        return self.reader.kind in VLM_READERS

    def watch_roots(self) -> list[Path]:
        """Folders to watch: each source folder, the fixed head of each glob, a file's folder."""
        import glob

        roots: list[Path] = []
        for item in self.source:
            p = Path(item)
            if p.is_dir():
                root = p
            elif glob.has_magic(item):
                fixed: list[str] = []
                for part in p.parts:
                    if glob.has_magic(part):
                        break
                    fixed.append(part)
                root = Path(*fixed)
            else:
                root = p.parent
            if root not in roots:
                roots.append(root)
        return roots

    def matches_source(self, path: str | Path) -> bool:
        """Whether a file belongs to this pipeline's sources (used by the watcher)."""
        import fnmatch
        import glob

        target = Path(path).resolve()
        for item in self.source:
            p = Path(item).resolve()
            if glob.has_magic(item):
                if fnmatch.fnmatch(str(target), str(p)) or target in {
                    Path(m).resolve() for m in glob.glob(item, recursive=True)
                }:
                    return True
            elif target == p or p in target.parents:
                return True
        return False

    def config_hash(self) -> str:
        """Hash of everything that changes what a document yields: schema bytes and stage
        options. Output place and formats, schedules and secrets (API keys) are left out, so
        moving or rescheduling a pipeline does not reprocess anything."""
        try:
            schema_bytes = Path(self.schema_path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{self.name}: cannot read schema {self.schema_path}: {exc}") from exc
        options = self.options.model_dump(mode="json", exclude={"output": True, "limits": True})
        options.get("reader", {}).pop("api_key", None)
        payload = {
            "v": CONFIG_HASH_VERSION,
            "schema": hashlib.sha256(schema_bytes).hexdigest(),
            "options": options,
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _cron_is_valid(expr: str) -> bool:
    fields = expr.split()
    if len(fields) not in (5, 6):
        return False
    try:  # Prefect validates with its vendored croniter; use the same rules when present
        from prefect._vendor.croniter import croniter
    except ImportError:  # pragma: no cover - prefect is an optional extra
        return all(re.fullmatch(r"[\w*/,\-?LW#]+", f) for f in fields)
    return bool(croniter.is_valid(expr))


def _resolve(value: str, base: Path) -> str:
    p = Path(os.path.expanduser(value))
    return str(p if p.is_absolute() else (base / p))


def _format_error(where: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc}'")
        elif err["type"] == "missing":
            lines.append(f"missing key '{loc}'")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"'{loc}': {msg}")
    return f"{where}: invalid pipeline definition: " + "; ".join(lines)


def pipeline_from_dict(
    data: dict[str, Any], base_dir: str | Path, file: str | Path | None = None
) -> PipelineConfig:
    """Validate a pipeline definition and resolve its paths against ``base_dir``.

    Raises:
        ConfigError: naming each unknown, missing or invalid key.
    """
    where = str(file) if file else "pipeline"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a pipeline definition must be a mapping of keys")
    base = Path(base_dir).resolve()
    for key in ("base_dir", "file"):
        if key in data:
            raise ConfigError(f"{where}: invalid pipeline definition: unknown key '{key}'")
    reader = data.get("reader")
    if isinstance(reader, dict) and reader.get("api_key"):
        # pipeline files live in git and flow parameters are stored by Prefect: no secrets
        raise ConfigError(
            f"{where}: 'reader.api_key' must not be written in a pipeline definition; "
            "set OPENAI_API_KEY in the environment of the runs instead"
        )
    try:
        cfg = PipelineConfig.model_validate({**data, "base_dir": str(base)})
    except ValidationError as exc:
        raise ConfigError(_format_error(where, exc)) from None
    output = cfg.output.model_copy(update={"dir": _resolve(cfg.output.dir, base)})
    return cfg.model_copy(
        update={
            "source": [_resolve(s, base) for s in cfg.source],
            "schema_path": _resolve(cfg.schema_path, base),
            "output": output,
            "file": str(Path(file).resolve()) if file else None,
        }
    )


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Load ``pipelines/NAME.yaml``; relative paths resolve against the YAML folder's parent.

    Raises:
        ConfigError: unreadable file, bad YAML, or an unknown/missing/invalid key (named).
    """
    import yaml

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"pipeline file not found: {p}") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read pipeline file ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from None
    return pipeline_from_dict(data or {}, p.resolve().parent.parent, p)


def find_pipelines(target: str | Path) -> list[Path]:
    """``pipelines/`` → its ``*.yaml``/``*.yml`` files (sorted); a file → itself."""
    p = Path(target)
    if p.is_dir():
        files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
        if not files:
            raise ConfigError(f"no pipeline definitions (*.yaml) in {p}")
        return files
    if not p.exists():
        raise ConfigError(f"pipeline file or folder not found: {p}")
    return [p]
