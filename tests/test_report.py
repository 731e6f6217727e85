"""The HTML report: one self-contained file (nothing fetched), carrying every analysis the charts draw.

That it opens offline and draws its charts in a real browser is checked in test_browser.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llm_roofline import analyze
from llm_roofline.faces.cli.main import main
from llm_roofline.faces.report.html import recommendations, report_html
from llm_roofline.inputs.model_files import catalogue_config, model_from_hf_config


def embedded_data(page: str) -> dict:
    match = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, flags=re.S)
    assert match
    return json.loads(match.group(1))


def analyses(devices: tuple[str, ...] = ("jetson-orin-nx", "apple-m2-gpu"), model: object = "llama-2-7b") -> list:
    return [analyze(model, d, phase=p, seq_len=512) for d in devices for p in ("prefill", "decode")]


def test_report_is_self_contained() -> None:
    page = report_html(analyses())
    # Every script and style is inline: no src= or href= that the browser would fetch.
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=", page)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page
    assert not re.search(r"""url\(\s*["']?(?!#)""", page)  # url(#pattern): a reference inside the page, not a fetch
    assert page.count("<script") == 4  # the data, charts.js, graph.js, report.js
    assert "RooflineCharts.rooflineChart" in page


def test_report_carries_every_analysis_and_the_recommendations() -> None:
    results = analyses()
    page = report_html(results)
    data = embedded_data(page)
    assert [(r["hardware"]["name"], r["workload"]["phase"]) for r in data["results"]] == [
        ("jetson-orin-nx", "prefill"), ("jetson-orin-nx", "decode"), ("apple-m2-gpu", "prefill"),
        ("apple-m2-gpu", "decode")]
    for result, entry in zip(results, data["results"], strict=True):
        assert entry["totals"]["time_s"] == result.totals.time_s  # the same numbers, not recomputed
        assert len(entry["ops"]) == len(result.ops)
        assert sum(op["time_share"] for op in entry["ops"]) == pytest.approx(1)
        assert entry["ceilings"][0]["peak_flops_per_s"] == max(result.hardware.peak_flops_per_s.values())
    assert "Llama-2-7B on NVIDIA Jetson Orin NX 16GB, Apple M2 GPU" in page
    advice = recommendations(results)
    assert any("Decode on NVIDIA Jetson Orin NX 16GB is memory-bound" in line for line in advice)
    assert any("Prefill on NVIDIA Jetson Orin NX 16GB is compute-bound" in line for line in advice)
    assert any(line.startswith("Fastest decode:") for line in advice)
    for line in advice:
        assert f"<li>{line}</li>" in page


def test_report_carries_the_advice_and_the_layer_graph(capsys: pytest.CaptureFixture[str]) -> None:
    results = analyses()
    data = embedded_data(report_html(results))
    assert len(data["advice"]) == len(data["graphs"]) == len(results)
    # The advice of each analysis is the command's: `advise --format json` for the same device and workload.
    code = main(["advise", "-m", "llama-2-7b", "-H", "apple-m2-gpu", "-p", "prefill", "-l", "512", "--format", "json"])
    assert code == 0
    assert data["advice"][2] == json.loads(capsys.readouterr().out)
    for result, graph in zip(results, data["graphs"], strict=True):
        assert set(graph["ops"]) == {op.name for op in result.ops}


def test_a_model_that_does_not_fit_is_told() -> None:
    advice = recommendations([analyze("llama-2-70b", "jetson-orin-nx", phase="decode")])
    assert any("does not fit" in line for line in advice)


def test_text_from_a_config_cannot_break_out_of_the_page() -> None:
    config = catalogue_config("tinyllama-1.1b") | {"_display_name": "</script><script>alert(1)</script>"}
    model = model_from_hf_config(config, name="evil")
    page = report_html(analyses(("jetson-orin-nx",), model))
    assert page.count("<script") == 4 and "alert(1)</script>" not in page
    assert embedded_data(page)["results"][0]["label"]["model"] == "</script><script>alert(1)</script>"


def test_report_command_writes_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "-m", "qwen2.5-0.5b", "-H", "jetson-orin-nx,raspberry-pi-5", "--batch", "2",
                 "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    data = embedded_data(out.read_text())
    assert len(data["results"]) == 4 and data["results"][0]["workload"]["batch"] == 2
    assert main(["report", "--phase", "decode", "-o", str(out)]) == 0
    capsys.readouterr()
    assert [r["workload"]["phase"] for r in embedded_data(out.read_text())["results"]] == ["decode"]
    assert main(["report", "-o", str(tmp_path)]) == 2  # a folder
    assert "cannot write" in capsys.readouterr().err
