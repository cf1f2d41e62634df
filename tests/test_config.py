"""Pipeline definitions: validation (unknown keys named), path resolution, config hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from docvlm.errors import ConfigError
from docvlm.ops.definition import find_pipelines, load_pipeline, pipeline_from_dict

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.schema.json"


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    folder = tmp_path / "pipelines"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = f"""
name: demo
source: docs
schema: {SCHEMA}
output: {{dir: out}}
"""


def test_shipped_pipelines_load_and_resolve_against_project_root() -> None:
    inv = load_pipeline(ROOT / "pipelines" / "invoices.yaml")
    rec = load_pipeline(ROOT / "pipelines" / "receipts.yaml")
    assert inv.source == [str(ROOT / "sample_docs" / "invoices")]
    assert inv.schema_path == str(ROOT / "schemas" / "invoice.schema.json")
    assert inv.out_dir == ROOT / "out" / "invoices"
    assert inv.schedule is not None and inv.schedule.cron == "0 6 * * *"
    assert rec.source == [str(ROOT / "sample_docs" / "receipts")]
    assert rec.schedule is not None and rec.schedule.cron == "*/15 * * * *"
    assert rec.watch.enabled and not inv.watch.enabled
    assert inv.options.reader.kind == "learned"
    assert [p.name for p in find_pipelines(ROOT / "pipelines")] == [
        "invoices.yaml",
        "receipts.yaml",
    ]


def test_relative_paths_resolve_against_yaml_folder_parent(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir("/")  # the current directory must not matter
    cfg = load_pipeline(_write(tmp_path, MINIMAL))
    assert cfg.source == [str(tmp_path / "docs")]
    assert cfg.out_dir == tmp_path / "out"
    assert cfg.ledger_path == tmp_path / "out" / "_ledger.sqlite"
    assert cfg.file == str(tmp_path / "pipelines" / "p.yaml")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("colour: blue\n", "unknown key 'colour'"),
        ("render: {dpii: 200}\n", "unknown key 'render.dpii'"),
        ("run: {bacth_size: 4}\n", "unknown key 'run.bacth_size'"),
        ("watch: {enabled: true, settle: 2}\n", "unknown key 'watch.settle'"),
        ("reader: {kind: ocr, temperature: 0}\n", "unknown key 'reader.temperature'"),
        ("schedule: {cron: '0 6 * * *', tz: UTC}\n", "unknown key 'schedule.tz'"),
    ],
)
def test_unknown_key_is_an_error_that_names_it(tmp_path: Path, extra: str, named: str) -> None:
    path = _write(tmp_path, MINIMAL + extra)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert named in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("name: demo\nsource: docs\noutput: {dir: out}\n", "missing key 'schema'"),
        (MINIMAL + "schedule: {cron: '61 * * * *'}\n", "'schedule.cron': not a valid cron"),
        (MINIMAL + "schedule: {cron: '0 6 * * *', timezone: Mars/Olympus}\n", "schedule.timezone"),
        (MINIMAL + "render: {dpi: 5000}\n", "'render.dpi'"),
        (MINIMAL.replace("name: demo", "name: Demo Pipeline"), "'name'"),
        (MINIMAL + "output: {dir: out, formats: [xlsx]}\n", "'output.formats.0'"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline(_write(tmp_path, text))
    assert named in str(info.value)


def test_secrets_are_refused_in_pipeline_files(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL + "reader: {kind: openai, api_key: sk-123}\n")
    with pytest.raises(ConfigError, match="'reader.api_key'.*OPENAI_API_KEY") as info:
        load_pipeline(path)
    assert "sk-123" not in str(info.value)


def test_bad_yaml_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pipeline(_write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_pipeline(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_pipeline(_write(tmp_path, "- a\n- b\n", "list.yaml"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no pipeline definitions"):
        find_pipelines(empty)


def test_config_hash_tracks_what_changes_results(tmp_path: Path) -> None:
    base = {"name": "demo", "source": "docs", "schema": str(SCHEMA), "output": {"dir": "out"}}
    h0 = pipeline_from_dict(base, tmp_path).config_hash()
    same = [
        {**base, "output": {"dir": "elsewhere", "formats": ["parquet"]}},
        {**base, "schedule": {"cron": "0 1 * * *"}, "watch": {"enabled": True}},
        {**base, "run": {"batch_size": 3, "workers": 2, "retries": 0}},
    ]
    for variant in same:
        assert pipeline_from_dict(variant, tmp_path).config_hash() == h0
    assert pipeline_from_dict({**base, "render": {"dpi": 200}}, tmp_path).config_hash() != h0
    assert pipeline_from_dict({**base, "detect": {"enabled": False}}, tmp_path).config_hash() != h0
    changed = tmp_path / "invoice.schema.json"
    changed.write_bytes(SCHEMA.read_bytes().replace(b"Invoice number", b"Invoice no."))
    assert pipeline_from_dict({**base, "schema": str(changed)}, tmp_path).config_hash() != h0


def test_watch_roots_and_source_matching(tmp_path: Path) -> None:
    (tmp_path / "docs" / "a").mkdir(parents=True)
    cfg = pipeline_from_dict(
        {"name": "demo", "source": ["docs", "scans/**/*.png"], "schema": str(SCHEMA),
         "output": {"dir": "out"}},
        tmp_path,
    )  # fmt: skip
    assert cfg.watch_roots() == [tmp_path / "docs", tmp_path / "scans"]
    assert cfg.matches_source(tmp_path / "docs" / "a" / "x.pdf")
    assert cfg.matches_source(tmp_path / "scans" / "2024" / "y.png")
    assert not cfg.matches_source(tmp_path / "scans" / "y.pdf")
    assert not cfg.matches_source(tmp_path / "other" / "x.pdf")
