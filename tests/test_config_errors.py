"""Configuration errors fail fast: one clear message, exit 2, nothing written, no ledger."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES

from docvlm.datamodel import PipelineOptions, ReaderOptions
from docvlm.errors import ConfigError
from docvlm.pipeline import Pipeline

DOC = str(SAMPLES / "receipts" / "rcpt_01.pdf")
SCHEMA = str(ROOT / "schemas" / "receipt.schema.json")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "docvlm", *args],
        capture_output=True, text=True, timeout=300, cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "PREFECT_HOME": str(cwd / "prefect")},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"kind": "ocr", "base_url": "http://x/v1"}, "takes no base_url"),
        ({"kind": "nope"}, "'ocr', 'learned', 'transformers', 'openai' or 'cascade'"),
        ({"kind": "transformers", "timeout_s": 3}, "timeout_s"),
        ({"kind": "openai", "device": "cuda"}, "device"),
    ],
)
def test_reader_options_are_checked_by_kind(options: dict, named: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=named):
        ReaderOptions.model_validate(options)


def test_pipeline_raises_before_any_document(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a server"):
        Pipeline(PipelineOptions(reader={"kind": "openai"}), SCHEMA)
    with pytest.raises(ConfigError, match="needs a model"):
        Pipeline(PipelineOptions(reader={"kind": "transformers"}), SCHEMA)
    with pytest.raises(ConfigError, match="layout model"):
        Pipeline(PipelineOptions(detect={"model_path": str(tmp_path / "missing.onnx")}), SCHEMA)
    with pytest.raises(ConfigError, match="schema file not found"):
        Pipeline(PipelineOptions(), tmp_path / "nope.schema.json")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--reader", "nope"], "invalid choice"),
        (["--reader", "openai"], "needs a server"),
        (["--reader", "transformers", "--model", "/no/such/model"], "docvlm: error:"),
        (["--detector-model", "/no/such.onnx"], "layout model"),
        (["--config", "/no/such.yaml"], "cannot read options"),
    ],
)
def test_extract_config_errors_exit_2_and_write_nothing(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    out = tmp_path / "out"
    proc = _cli("extract", DOC, "--schema", SCHEMA, "--out", str(out), *flags, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_run_config_error_never_reaches_the_ledger(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "r.pdf").write_bytes(Path(DOC).read_bytes())
    yaml = tmp_path / "p.yaml"
    yaml.write_text(
        f"name: bad\nsource: {tmp_path / 'in'}\nschema: {SCHEMA}\n"
        f"reader: {{kind: openai, model: m}}\noutput: {{dir: {tmp_path / 'out'}}}\n",
        encoding="utf-8",
    )
    proc = _cli("run", str(yaml), "--orchestrator", "local", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "needs a server" in proc.stderr
    assert not (tmp_path / "out" / "_ledger.sqlite").exists()
    yaml.write_text(
        yaml.read_text().replace(
            "reader: {kind: openai, model: m}", "reader: {kind: ocr, base_url: http://x}"
        )
    )
    proc = _cli("run", str(yaml), "--orchestrator", "local", cwd=tmp_path)
    assert proc.returncode == 2 and "base_url" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
