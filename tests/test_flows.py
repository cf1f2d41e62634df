"""Prefect flows on a real (temporary) Prefect server: one task per document, artifacts,
retries, and the deployments ``docvlm serve`` registers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from docvlm.datamodel import DocStatus, DocumentResult, ErrorItem
from docvlm.errors import ConfigError
from docvlm.ops import process
from docvlm.ops.dataset import read_table

ROOT = Path(__file__).resolve().parents[1]
INVOICES = ROOT / "sample_docs" / "invoices"
RECEIPTS = ROOT / "sample_docs" / "receipts"

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _sample(folder: Path, *names: str) -> list[Path]:
    paths = [folder / n for n in names]
    if not all(p.exists() for p in paths):
        pytest.skip(f"sample documents missing in {folder}")
    return paths


def _task_runs(flow_run_name: str, expected: int) -> list:
    """Task runs of a flow run (recorded from events, so poll briefly until all are in)."""
    import time

    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + 20
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[flow_run_name]))
        )
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id={"any_": [run.id]})  # type: ignore[arg-type]
            )
            done = [r for r in runs if r.state_type and r.state_type.value == "COMPLETED"]
            if len(done) >= expected or time.monotonic() > deadline:
                return runs
            time.sleep(0.5)


def test_extract_flow_runs_one_task_per_document(tmp_path: Path) -> None:
    from docvlm.flows.pipeline import extract_flow

    docs = _sample(INVOICES, "inv_de_01.pdf", "inv_en_gb_01.pdf")
    out = tmp_path / "out"
    summary = extract_flow(
        inputs=[str(p) for p in docs],
        schema_file=str(ROOT / "schemas" / "invoice.schema.json"),
        out_dir=str(out),
        options={"detect": {"enabled": False}},
    )
    assert summary["processed"] == 2 and summary["ok"] == 2
    table = read_table(out, "invoice")
    assert sorted(table["source"]) == sorted(str(p) for p in docs)
    assert table["total"].notna().all()
    assert len(read_table(out, "invoice__line_items")) > 0
    assert len(read_table(out, "provenance")) > 0
    # plan, start, 2 documents, commit, finish, publish
    runs = _task_runs(f"extract-{summary['run_id']}", expected=7)
    per_doc = [r for r in runs if r.name.startswith("process ")]
    assert sorted(r.name for r in per_doc) == sorted(f"process {p}" for p in docs)
    assert all(r.state_type.value == "COMPLETED" for r in runs)


def test_pipeline_flow_is_exactly_once_and_publishes_an_artifact(tmp_path: Path) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from docvlm.flows.pipeline import pipeline_flow

    docs = _sample(RECEIPTS, "rcpt_01.pdf", "rcpt_02.pdf")
    src = tmp_path / "inbox"
    src.mkdir()
    for d in docs:
        shutil.copy(d, src / d.name)
    (tmp_path / "pipelines").mkdir()
    yaml_path = tmp_path / "pipelines" / "r.yaml"
    yaml_path.write_text(
        f"name: receipts-test\nsource: inbox\nschema: {ROOT / 'schemas' / 'receipt.schema.json'}\n"
        "detect: {enabled: false}\noutput: {dir: out}\n"
    )
    first = pipeline_flow(pipeline=str(yaml_path))
    assert first["processed"] == 2 and first["ok"] == 2 and first["failed"] == 0
    second = pipeline_flow(pipeline=str(yaml_path))
    assert second["processed"] == 0 and second["skipped"] == 2
    assert len(read_table(tmp_path / "out", "receipt")) == 2
    assert (tmp_path / "out" / "receipt.csv").exists()
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["docvlm-receipts-test"]))
        )
    assert len(arts) == 2 and all(a.type == "table" for a in arts)
    text = " ".join(str(a.data) for a in arts)
    assert "documents ok" in text and "fill rate: total" in text and "VLM calls" in text


def test_task_retries_then_parks_a_failing_document(tmp_path: Path, monkeypatch) -> None:
    from docvlm.flows.pipeline import extract_flow

    docs = _sample(INVOICES, "inv_de_01.pdf", "inv_fr_01.pdf")
    calls: list[str] = []
    real = process.process_one

    def flaky(src, config, **kw):
        calls.append(src.path)
        if src.path == str(docs[1]):
            return DocumentResult(
                doc_id=src.doc_id, source=src.path, schema_name="invoice",
                status=DocStatus.FAILURE,
                errors=[ErrorItem(stage="read", error_type="ReaderError", message="timeout")],
            )  # fmt: skip
        return real(src, config, **kw)

    monkeypatch.setattr(process, "process_one", flaky)
    summary = extract_flow(
        inputs=[str(p) for p in docs],
        schema_file=str(ROOT / "schemas" / "invoice.schema.json"),
        out_dir=str(tmp_path / "out"),
        options={"detect": {"enabled": False}, "run": {"retries": 1, "retry_delay_s": 0}},
    )
    assert calls.count(str(docs[1])) == 2  # the decorator's retries, set from the pipeline
    assert summary["failed"] == 1 and summary["parked_sources"] == [str(docs[1])]
    errors = read_table(tmp_path / "out", "errors")
    assert {"ReaderError", "Parked"} <= set(errors["error_type"])


def test_deployments_carry_the_pipeline_cron_schedules() -> None:
    from prefect import get_client

    from docvlm.flows.serve import build_deployments

    deployments = build_deployments([ROOT / "pipelines"])
    by_name = {d.name: d for d in deployments}
    assert set(by_name) == {"invoices", "receipts"}
    expected = {"invoices": "0 6 * * *", "receipts": "*/15 * * * *"}
    for name, cron in expected.items():
        dep = by_name[name]
        assert dep.parameters == {"pipeline": str(ROOT / "pipelines" / f"{name}.yaml")}
        assert [s.schedule.cron for s in dep.schedules] == [cron]
    # registered on the server (what `prefect.serve` does first), then read back
    with get_client(sync_client=True) as client:
        for name, cron in expected.items():
            dep_id = by_name[name].apply()
            stored = client.read_deployment(dep_id)
            assert stored.name == name and stored.entrypoint.endswith("pipeline.py:pipeline_flow")
            assert [s.schedule.cron for s in stored.schedules] == [cron]
            assert all(s.schedule.timezone == "UTC" for s in stored.schedules)


def test_serve_rejects_an_invalid_pipeline_naming_the_key(tmp_path: Path) -> None:
    from docvlm.flows.serve import build_deployments

    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "ok.yaml").write_text((ROOT / "pipelines" / "invoices.yaml").read_text())
    (folder / "bad.yaml").write_text(
        "name: bad\nsource: x\nschema: y.json\noutput: {dir: out}\nschedule: {cron: '0 6 * * *', every: 5}\n"
    )
    with pytest.raises(ConfigError, match=r"bad\.yaml.*unknown key 'schedule\.every'"):
        build_deployments([folder])


@pytest.mark.slow
def test_serve_starts_a_local_server_whose_scheduler_plans_the_cron_runs(tmp_path: Path) -> None:
    """`docvlm serve` without PREFECT_API_URL: a local Prefect server with its scheduler; the
    deployments get scheduled runs at their cron times."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    import httpx

    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "nightly.yaml").write_text(
        f"name: nightly\nsource: {tmp_path / 'inbox'}\nschema: {ROOT / 'schemas/invoice.schema.json'}\n"
        f"output: {{dir: {tmp_path / 'out'}}}\nschedule: {{cron: '30 2 * * *', timezone: UTC}}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(ROOT))
    log = tmp_path / "serve.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "docvlm", "serve", str(folder)],
            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        api = None
        deadline = time.monotonic() + 150
        runs: list = []
        while time.monotonic() < deadline and proc.poll() is None:
            if api is None:
                m = re.search(r"event=serve_start api=(\S+)", log.read_text(errors="replace"))
                api = m.group(1) if m else None
            else:
                body = {"deployments": {"name": {"any_": ["nightly"]}}, "limit": 10}
                runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()
                if runs:
                    break
            time.sleep(1)
        assert runs, log.read_text(errors="replace")[-3000:]
        assert all(r["state_type"] == "SCHEDULED" for r in runs)
        assert all(r["expected_start_time"][11:16] == "02:30" for r in runs)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_vlm_work_holds_a_slot_of_a_global_concurrency_limit(tmp_path: Path) -> None:
    from prefect import flow, get_client

    from docvlm.flows.pipeline import ensure_vlm_limit, prefect_vlm_slot
    from docvlm.ops.definition import pipeline_from_dict

    cfg = pipeline_from_dict(
        {"name": "vlm", "source": "in", "schema": str(ROOT / "schemas" / "invoice.schema.json"),
         "reader": {"kind": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
         "output": {"dir": "out"}, "run": {"vlm_limit": 2, "vlm_limit_name": "docvlm-vlm-test"}},
        tmp_path,
    )  # fmt: skip
    ensure_vlm_limit(cfg)

    def active() -> int:
        with get_client(sync_client=True) as client:
            limit = client.read_global_concurrency_limit_by_name("docvlm-vlm-test")
        assert limit.limit == 2
        return limit.active_slots

    @flow
    def probe() -> tuple[int, int]:
        with prefect_vlm_slot(cfg):
            inside = active()
        return inside, active()

    assert probe() == (1, 0)
