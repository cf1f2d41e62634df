"""``docvlm review``: the static page and the served editor in a real headless Chromium
(Selenium), corrections, label export and corrections as ``eval`` truth.

Browser tests need Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them);
without them they are skipped with that reason. Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from docvlm.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "invoice.schema.json"
ARTIFACTS = ROOT / "tests" / "artifacts"
DPI = 150

# what the generated invoice prints, and where (PDF points, baseline origin)
LINES = {
    "invoice_number": ((60, 160), "Invoice No.: INV-7788"),
    "issue_date": ((60, 180), "Invoice date: 2024-05-06"),
    "total": ((330, 400), "Total: 123.45 EUR"),
}


def _invoice_pdf(path: Path) -> dict[str, list[float]]:
    """A born-digital invoice; returns each known line's box in page pixels at ``DPI``."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((60, 100), "INVOICE", fontsize=20)
    boxes = {}
    for name, (origin, text) in LINES.items():
        page.insert_text(origin, text, fontsize=12)
        rect = page.search_for(text)[0]
        boxes[name] = [v * DPI / 72 for v in (rect.x0, rect.y0, rect.x1, rect.y1)]
    doc.save(path)
    doc.close()
    return boxes


def _partial_pdf(path: Path) -> None:
    """An invoice without a total: written with status partial and a validation error."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_text((60, 100), "INVOICE", fontsize=20)
    page.insert_text((60, 160), "Invoice No.: INV-9900", fontsize=12)
    page.insert_text((60, 180), "Invoice date: 2024-07-01", fontsize=12)
    doc.save(path)
    doc.close()


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """An ``extract --out`` folder: one good invoice, one partial, one unreadable file."""
    import docvlm

    base = tmp_path_factory.mktemp("review")
    inputs = base / "in"
    inputs.mkdir()
    text_boxes = _invoice_pdf(inputs / "known.pdf")
    _partial_pdf(inputs / "partial.pdf")
    (inputs / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage that is not a pdf")
    out = base / "out"
    docvlm.extract([str(inputs)], str(SCHEMA), out_dir=str(out), jobs=0, progress=False)
    return out, text_boxes


# -- without a browser -------------------------------------------------------------------


def test_pointer_to_field():
    from docvlm.review.page import pointer_field

    assert pointer_field("/total") == "total"
    assert pointer_field("/seller/name") == "seller.name"
    assert pointer_field("/line_items/3/amount") == "line_items/3/amount"
    assert pointer_field("/") is None


def test_typed_values_checked_against_schema():
    from docvlm.review.corrections import CorrectionError, field_target, parse_value
    from docvlm.schema import load_schema

    schema = load_schema(SCHEMA)
    assert parse_value(field_target(schema, "total"), " 150.25 ") == 150.25
    assert parse_value(field_target(schema, "line_items/2/quantity"), "3") == 3.0
    assert parse_value(field_target(schema, "seller.name"), "ACME") == "ACME"
    for field, text, expected in [
        ("total", "abc", "not a number"),
        ("issue_date", "2024-13-01", "YYYY-MM-DD"),
        ("currency", "euro", "does not match"),
        ("total", "  ", "empty value"),
    ]:
        with pytest.raises(CorrectionError, match=expected):
            parse_value(field_target(schema, field), text)
    with pytest.raises(CorrectionError, match="not a field"):
        field_target(schema, "nonsense")


def test_label_nests_like_the_dev_sets():
    from docvlm.review.corrections import document_label

    values = {"invoice_number": "A-1", "seller.name": "ACME", "due_date": None,
              "line_items/0/description": "Bolt", "line_items/0/amount": 2.0}  # fmt: skip
    corrections = [
        {"field": "line_items/0/amount", "action": "correct", "new_value": "2.5"},
        {"field": "line_items/1/description", "action": "correct", "new_value": '"Nut"'},
        {"field": "seller.name", "action": "confirm", "new_value": '"ACME"'},
        {"field": "total", "action": "absent", "new_value": None},
    ]
    assert document_label(values, corrections) == {
        "invoice_number": "A-1",
        "seller": {"name": "ACME"},
        "line_items": [{"description": "Bolt", "amount": 2.5}, {"description": "Nut"}],
        "total": None,
    }


def test_static_page_files_and_data(extracted):
    out, _ = extracted
    assert main(["review", str(out), "--schema", str(SCHEMA)]) == 0
    page = out / "review" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "<script src" not in html and "http://" not in html.split("review-data")[0]
    data = json.loads(html.split('id="review-data">', 1)[1].split("</script>", 1)[0])
    assert data["dpi"] == DPI and data["mode"] == "static"
    records = pd.read_parquet(out / "invoice.parquet")
    assert {d["doc_id"] for d in data["documents"]} == set(records["doc_id"])
    assert data["documents"][0]["status"] == "failure"  # the queue starts with problems
    for d in data["documents"]:
        for p in d["pages"]:
            assert (out / "review" / p["image"]).is_file()


# -- the browser ---------------------------------------------------------------------------


def _binary(*names: str) -> str | None:
    return next((p for p in map(shutil.which, names) if p), None)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service

    chrome = _binary("chromium", "chromium-browser")
    driver_bin = _binary("chromedriver", "chromium-driver")
    if not chrome or not driver_bin:
        pytest.skip(
            "chromium/chromedriver not installed (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1600,1000"):  # fmt: skip
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="docvlm-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    drv = webdriver.Chrome(options=options, service=Service(driver_bin))
    drv.implicitly_wait(2)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _screenshot(drv, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    drv.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def _open(drv, url: str) -> None:
    """Load the page and check it ran without script or loading errors."""
    drv.get_log("browser")  # drop what earlier pages logged (e.g. a refused correction)
    drv.get(url)
    for _ in range(50):
        if drv.execute_script("return document.body.getAttribute('data-ready')") == "1":
            break
        time.sleep(0.1)
    errors = [e for e in drv.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def _open_doc(drv, name: str) -> None:
    drv.find_element("css selector", f"#queue li[title$='{name}']").click()
    head = drv.find_element("css selector", "#doc-head strong").text
    assert head == name


def _rect(drv, element) -> dict:
    return drv.execute_script(
        "var r = arguments[0].getBoundingClientRect();"
        "return {x: r.left, y: r.top, w: r.width, h: r.height};",
        element,
    )


def _box_in_image_pixels(drv, field: str) -> tuple[list[float], float]:
    """The rendered box of ``field`` in page-image pixels (and the display scale)."""
    box = drv.find_element("css selector", f"#pages .box[data-field='{field}']")
    img = drv.find_element("css selector", "#pages .page img")
    natural = drv.execute_script("return arguments[0].naturalWidth", img)
    ib, bb = _rect(drv, img), _rect(drv, box)
    scale = ib["w"] / natural
    x0, y0 = (bb["x"] - ib["x"]) / scale, (bb["y"] - ib["y"]) / scale
    return [x0, y0, x0 + bb["w"] / scale, y0 + bb["h"] / scale], scale


def test_page_in_browser(extracted, browser):
    out, text_boxes = extracted
    assert main(["review", str(out), "--schema", str(SCHEMA)]) == 0
    _open(browser, (out / "review" / "index.html").as_uri())
    records = pd.read_parquet(out / "invoice.parquet")
    prov = pd.read_parquet(out / "provenance.parquet")
    entries = browser.find_elements("css selector", "#queue li.doc-entry")
    assert sorted(e.get_attribute("data-doc-id") for e in entries) == sorted(records["doc_id"])

    # one box per provenance row, on every document
    for doc_id, source in zip(records["doc_id"], records["source"], strict=True):
        _open_doc(browser, Path(source).name)
        boxes = browser.find_elements("css selector", "#pages .box")
        assert len(boxes) == int((prov["doc_id"] == doc_id).sum()), source
    # errors per document
    _open_doc(browser, "broken.pdf")
    assert browser.find_elements("css selector", "#doc-errors li")
    _open_doc(browser, "partial.pdf")
    errors = [e.text for e in browser.find_elements("css selector", "#doc-errors li")]
    assert any("total" in e for e in errors), errors

    # the box of a known field sits on the printed text
    _open_doc(browser, "known.pdf")
    known = prov[prov["source"].str.endswith("known.pdf")].set_index("field")
    for field in ("invoice_number", "total"):
        shown, scale = _box_in_image_pixels(browser, field)
        tol = 1.5 / scale + 0.5  # a CSS pixel of rounding, in image pixels
        assert shown == pytest.approx(list(known.loc[field, "bbox"]), abs=tol), field
        # on the printed line: the value's own words ('123.45 EUR' of 'Total: 123.45 EUR')
        text = text_boxes[field]
        assert [shown[1], shown[2], shown[3]] == pytest.approx(text[1:], abs=tol + 4), field
        assert text[0] - tol - 4 <= shown[0] < shown[2], (field, shown, text)

    # clicking a field selects its box, clicking a box selects its row
    browser.find_element("css selector", "#fields tr[data-field='total']").click()
    selected = browser.find_elements("css selector", "#pages .box.selected")
    assert [b.get_attribute("data-field") for b in selected] == ["total"]
    browser.find_element("css selector", "#pages .box[data-field='invoice_number']").click()
    rows = browser.find_elements("css selector", "#fields tr.field-row.selected")
    assert [r.get_attribute("data-field") for r in rows] == ["invoice_number"]
    box = browser.find_element("css selector", "#pages .box[data-field='invoice_number']")
    assert "selected" in box.get_attribute("class")
    _screenshot(browser, "review_static")

    # filters: a status, a confidence threshold
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "f-status")).select_by_value("failure")
    shown = browser.find_elements("css selector", "#queue li.doc-entry")
    assert [e.get_attribute("title") for e in shown] == [
        s for s in records["source"] if s.endswith("broken.pdf")
    ]
    Select(browser.find_element("id", "f-status")).select_by_value("")
    below = browser.find_element("id", "f-below")
    below.send_keys("0.01")
    assert not browser.find_elements("css selector", "#queue li.doc-entry")
    below.clear()
    browser.find_element("css selector", "#queue-tabs button[data-view='fields']").click()
    confs = [
        float(e.text)
        for e in browser.find_elements("css selector", "#queue li.field-entry .conf")
        if e.text != "—"
    ]
    assert confs and confs[0] == min(confs)


def test_run_dataset_page(tmp_path, browser):
    """A partitioned ``docvlm run`` dataset: found, listed, boxed, linked from the summary."""
    from docvlm.ops.dataset import read_table
    from docvlm.ops.definition import load_pipeline
    from docvlm.ops.runner import run_local

    (tmp_path / "in").mkdir()
    _invoice_pdf(tmp_path / "in" / "known.pdf")
    _partial_pdf(tmp_path / "in" / "partial.pdf")
    (tmp_path / "pipelines").mkdir()
    yaml = tmp_path / "pipelines" / "rv.yaml"
    yaml.write_text(
        f"name: rv\nsource: in\nschema: {SCHEMA}\nrender: {{dpi: 120}}\n"
        "output: {dir: out, formats: [parquet]}\n",
        encoding="utf-8",
    )
    run_local(load_pipeline(yaml))
    out = tmp_path / "out"
    assert list(out.glob("provenance/run_date=*/part-*.parquet"))
    assert main(["review", str(out)]) == 0  # schema and dpi from run_summary.json
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["review"] == str(out / "review" / "index.html")
    assert summary["render_dpi"] == 120 and summary["schema_path"] == str(SCHEMA)
    run_local(load_pipeline(yaml))  # the next run's summary keeps the link
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["review"] == str(out / "review" / "index.html")
    _open(browser, (out / "review" / "index.html").as_uri())
    records, prov = read_table(out, "invoice"), read_table(out, "provenance")
    entries = browser.find_elements("css selector", "#queue li.doc-entry")
    assert len(entries) == len(records) == 2
    _open_doc(browser, "known.pdf")
    boxes = browser.find_elements("css selector", "#pages .box")
    assert len(boxes) == int(prov["source"].str.endswith("known.pdf").sum())
    shown, scale = _box_in_image_pixels(browser, "total")
    bbox = prov[prov["source"].str.endswith("known.pdf") & (prov["field"] == "total")]["bbox"]
    assert shown == pytest.approx(list(bbox.iloc[0]), abs=1.5 / scale + 0.5)
    _screenshot(browser, "review_run_dataset")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(extracted, tmp_path):
    """``docvlm review OUT --serve`` in a subprocess on a free port (a copy of the output)."""
    src, _ = extracted
    out = tmp_path / "out"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("review", "corrections.parquet"))
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "docvlm", "review", str(out), "--schema", str(SCHEMA),
           "--serve", "--port", str(port), "--reviewer", "tester"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"review server exited: {proc.stdout.read().decode()}")
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("review server did not start")
        yield out, url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _row(drv, field: str):
    return drv.find_element("css selector", f"#fields tr[data-field='{field}']")


def _press(drv, field: str, button: str) -> None:
    """Click a field's button, scrolled clear of the table's sticky header first."""
    el = _row(drv, field).find_element("css selector", f"button.{button}")
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    el.click()


def _wait_msg(drv, field: str) -> str:
    """The message under a field's editor once the server answered (the row is redrawn on
    success, so a row found a moment ago may be gone)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(100):
        try:
            text = _row(drv, field).find_element("css selector", ".msg").text
        except StaleElementReferenceException:
            continue
        if text and text != "saving…":
            return text
        time.sleep(0.1)
    return ""


def test_serve_corrects_and_exports(served, browser, tmp_path):
    out, url = served
    _open(browser, url)
    _open_doc(browser, "known.pdf")

    # a wrong-typed value is refused with a message, nothing saved
    value = _row(browser, "total").find_element("css selector", "input.edit-value")
    value.clear()
    value.send_keys("abc")
    _press(browser, "total", "do-correct")
    assert "not a number" in _wait_msg(browser, "total")
    assert not (out / "corrections.parquet").exists()

    # a correct value is saved as it is made
    value = _row(browser, "total").find_element("css selector", "input.edit-value")
    value.clear()
    value.send_keys("150.25")
    _press(browser, "total", "do-correct")
    assert _wait_msg(browser, "total") == "saved"
    assert _row(browser, "total").get_attribute("data-state") == "correct"
    _press(browser, "invoice_number", "do-confirm")
    assert _wait_msg(browser, "invoice_number") == "saved"
    _press(browser, "due_date", "do-absent")
    assert _wait_msg(browser, "due_date") == "saved"
    _screenshot(browser, "review_serve")

    log = pd.read_parquet(out / "corrections.parquet")
    assert list(log.columns) == ["doc_id", "source", "field", "action", "old_value",
                                 "new_value", "reviewer", "corrected_at"]  # fmt: skip
    rows = log.set_index("field")
    assert rows.loc["total", "action"] == "correct"
    assert json.loads(rows.loc["total", "old_value"]) == 123.45
    assert json.loads(rows.loc["total", "new_value"]) == 150.25
    assert rows.loc["invoice_number", "action"] == "confirm"
    assert json.loads(rows.loc["invoice_number", "new_value"]) == "INV-7788"
    assert rows.loc["due_date", "action"] == "absent" and pd.isna(rows.loc["due_date", "new_value"])
    assert set(log["reviewer"]) == {"tester"}

    # reloading the page shows the corrections
    _open(browser, url)
    _open_doc(browser, "known.pdf")
    assert _row(browser, "total").find_element("css selector", ".v").text == "150.25"

    # label export: the dev-set format
    labels = tmp_path / "labels"
    assert main(["review", str(out), "--export-labels", str(labels)]) == 0
    assert [p.name for p in labels.iterdir()] == ["known.json"]
    label = json.loads((labels / "known.json").read_text())
    assert label["total"] == 150.25 and label["invoice_number"] == "INV-7788"
    assert label["due_date"] is None and label["issue_date"] == "2024-05-06"

    # corrections as eval truth: the uncorrected output misses the corrected total
    from docvlm.evaluate import evaluate
    from docvlm.schema import load_schema

    scores = evaluate(out, out / "corrections.parquet", load_schema(SCHEMA)).set_index("field")
    assert scores.loc["total", "accuracy"] == 0.0
    assert scores.loc["invoice_number", "accuracy"] == 1.0
    assert scores.loc["issue_date", "n"] == 1
    folder = evaluate(out, labels, load_schema(SCHEMA)).set_index("field")
    assert folder["accuracy"].to_dict() == scores["accuracy"].to_dict()
    truth = str(out / "corrections.parquet")
    assert main(["eval", str(out), "--truth", truth, "--schema", str(SCHEMA)]) == 0


def test_serve_refuses_foreign_writes(served):
    out, url = served
    body = json.dumps({"doc_id": "x", "field": "total", "action": "confirm"}).encode()
    request = urllib.request.Request(
        url + "api/corrections", data=body, method="POST",
        headers={"Content-Type": "application/json", "Origin": "http://evil.example"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 403
    assert not (out / "corrections.parquet").exists()
