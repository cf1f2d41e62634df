"""Pipeline-level behaviour: detection is a hint, stages report their timing, the API works."""

from pathlib import Path

from conftest import SAMPLES

import docvlm
from docvlm.datamodel import PipelineOptions
from docvlm.pipeline import Pipeline
from docvlm.schema import load_schema
from docvlm.sources import inspect_file


def test_text_outside_every_region_is_still_read(invoice_schema) -> None:
    src = inspect_file(SAMPLES / "invoices" / "inv_en_us_01.pdf")
    schema = load_schema(invoice_schema)
    # a threshold no region reaches: the detector (made to look at this born-digital page)
    # finds nothing, the text is read anyway
    blind = PipelineOptions.model_validate(
        {"detect": {"score_threshold": 0.9999, "text_layer_regions": False}}
    )
    res = Pipeline(blind, schema).process(src)
    assert res.record["invoice_number"] == "INV-2014-0042" and res.record["total"] == 1663.49
    assert {v.region_class for v in res.values} == {"residual"}

    seeing = Pipeline(PipelineOptions(), schema).process(src)
    assert seeing.record == res.record
    assert {v.region_class for v in seeing.values} - {"residual"}  # regions were found and used


def test_stage_timings_and_page_count(invoice_schema) -> None:
    src = inspect_file(SAMPLES / "invoices" / "inv_en_multi_01_scan.pdf")
    res = Pipeline(schema=load_schema(invoice_schema)).process(src)
    assert res.pages == 2 and res.stats["ocr_pages"] == 2
    for key in ("render_s", "detect_s", "ocr_s", "read_s", "total_s"):
        assert res.stats[key] > 0


def test_top_level_api_returns_dataframes(receipt_schema) -> None:
    result = docvlm.extract(SAMPLES / "receipts" / "rcpt_02.pdf", receipt_schema)
    df = result.records
    assert list(df["source"]) == [str(SAMPLES / "receipts" / "rcpt_02.pdf")]
    assert df.loc[0, "status"] == "success" and df.loc[0, "currency"] == "USD"
    assert Path(df.loc[0, "source"]).exists()
