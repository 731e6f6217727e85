"""The web page and the offline report in a real browser: Playwright driving Debian's Chromium.

One server and one browser for the whole module; a fresh browser context per test. Each test saves a
screenshot under test-artifacts/browser/ (git-ignored). Skipped when Chromium or Playwright is absent
(outside CI: .ci/run installs Chromium).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_support import ARTIFACTS, Page, chromium, serving, sync_api
from conftest import require_module
from llm_roofline import analyze
from llm_roofline.faces.report.html import report_html
from llm_roofline.inputs.model_files import catalogue_config


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    yield from serving()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    opened = Page(browser)
    yield opened
    opened.close(request.node.name)


def test_page_loads_and_draws_without_console_errors(page: Page, server_url: str) -> None:
    page.page.goto(server_url)
    page.wait_for_update(0)
    expected = analyze("llama-2-7b", "jetson-orin-nx")
    names = page.page.locator("svg.roofline .op-point").evaluate_all(
        "points => points.flatMap(p => p.dataset.names.split(' '))")
    assert sorted(names) == sorted(op.name for op in expected.ops if op.arithmetic_intensity > 0)
    assert page.page.locator("svg.roofline .ceiling").count() == 2  # Orin NX: fp16 and fp32 roofs
    assert page.page.locator("svg.roofline .ridge").count() == 2
    assert page.cells(".ops-table", 0) == [op.name for op in expected.ops]
    assert page.cells(".totals-table", 3) == [f"{expected.totals.tokens_per_s:.4g}"]
    assert page.cells(".totals-table", 4) == [f"{expected.totals.expected_tokens_per_s:.4g}"]
    # Hovering a point shows its figures; operators on the same spot share a marker and its tooltip.
    page.page.locator('svg.roofline .op-point[data-names~="layer.mlp.down_proj"]').hover()
    tooltip = page.page.locator("#roofline-chart .chart-tooltip")
    assert tooltip.is_visible() and "layer.mlp.down_proj" in tooltip.inner_text()
    assert "layer.attn.q_proj 1 FLOP/B" in tooltip.inner_text()
    assert page.errors == []


def test_model_device_and_batch_changes_update_chart_and_table(page: Page, server_url: str) -> None:
    page.page.goto(server_url)
    page.wait_for_update(0)

    seen = page.updates()
    page.page.select_option("#model", "llama-3.2-1b")
    page.wait_for_update(seen)
    assert set(page.cells(".ops-table", 3)) == {"1", "16"}  # counts: 16 layers (and the single ops)
    assert "Llama-3.2-1B" in page.page.locator("#headline").inner_text()

    seen = page.updates()
    page.page.select_option("#hardware", ["jetson-orin-nx", "nvidia-rtx-4090"])
    page.wait_for_update(seen)
    devices = page.page.locator("svg.roofline .op-point").evaluate_all(
        "points => [...new Set(points.map(p => p.dataset.device))]")
    assert sorted(devices) == ["jetson-orin-nx", "nvidia-rtx-4090"]
    assert page.page.locator("svg.roofline .ceiling").count() == 2 + 5
    assert len(page.cells(".totals-table", 0)) == 2

    seen = page.updates()
    page.page.fill("#batch", "8")
    page.wait_for_update(seen)
    expected = [analyze("llama-3.2-1b", d, batch=8) for d in ("jetson-orin-nx", "nvidia-rtx-4090")]
    assert page.cells(".totals-table", 3) == [f"{a.totals.tokens_per_s:.4g}" for a in expected]
    q_proj = next(op for op in expected[0].ops if op.name == "layer.attn.q_proj")
    # Keyboard focus shows the same details as hovering (and reaches a marker under a smaller one).
    page.page.locator('svg.roofline .op-point[data-names~="layer.attn.q_proj"]').first.focus()
    tooltip = page.page.locator("#roofline-chart .chart-tooltip").inner_text()
    assert f"layer.attn.q_proj {q_proj.arithmetic_intensity:.3g} FLOP/B" in tooltip

    seen = page.updates()
    page.page.select_option("#phase", "prefill")
    page.wait_for_update(seen)
    assert page.page.locator("svg.roofline .op-point.prefill").count() > 0
    assert page.page.locator("svg.roofline .op-point.decode").count() == 0
    assert page.errors == []


def test_defaults_and_the_context_window_warning(page: Page, server_url: str) -> None:
    page.page.goto(server_url)
    page.wait_for_update(0)
    assert page.page.locator("#weights").input_value() == ""  # the model's own formats, as the API defaults
    assert page.page.locator("#warnings").inner_text() == ""
    seen = page.updates()
    page.page.fill("#seq_len", "8192")  # llama-2-7b: a 4096-token window
    page.wait_for_update(seen)
    warning = analyze("llama-2-7b", "jetson-orin-nx", seq_len=8192).warnings[0]
    assert page.page.locator("#warnings").inner_text() == f"Warning: {warning}"
    for box, option in (("#sparsity", {"sparsity": "2:4"}), ("#fuse", {"fuse": "elementwise"})):
        seen = page.updates()
        page.page.check(box)  # the levers of the chapter, as the command line's --sparsity and --fuse
        page.wait_for_update(seen)
        expected = analyze("llama-2-7b", "jetson-orin-nx", seq_len=8192, **option)
        assert page.cells(".totals-table", 3) == [f"{expected.totals.tokens_per_s:.4g}"]
        seen = page.updates()
        page.page.uncheck(box)
        page.wait_for_update(seen)
    assert page.errors == []


def tiny_config() -> dict[str, Any]:
    return catalogue_config("llama-3.2-1b") | {"num_hidden_layers": 3, "_display_name": "Tiny Llama (3 layers)"}


def test_uploaded_config_is_analyzed(page: Page, server_url: str) -> None:
    page.page.goto(server_url)
    page.wait_for_update(0)
    seen = page.updates()
    page.page.set_input_files("#upload", files=[{"name": "config.json", "mimeType": "application/json",
                                                 "buffer": json.dumps(tiny_config()).encode()}])
    page.wait_for_update(seen)
    assert page.page.locator("#model option:checked").inner_text().startswith("uploaded: config.json")
    assert set(page.cells(".ops-table", 3)) == {"1", "3"}
    assert page.page.locator("#error").inner_text() == ""
    # The uploaded model stays selected while the workload changes.
    seen = page.updates()
    page.page.fill("#seq_len", "4096")
    page.wait_for_update(seen)
    assert set(page.cells(".ops-table", 3)) == {"1", "3"}
    assert page.errors == []


def test_uploaded_gguf_is_analyzed_with_its_own_formats(page: Page, server_url: str, tmp_path: Path) -> None:
    require_module("gguf")
    from gguf_factory import T, llama_keys, llama_like_tensors, write_gguf

    path = tmp_path / "tiny-q4.gguf"
    write_gguf(path, "llama", llama_keys(256, 3, 4, 2, 512), llama_like_tensors(256, 3, 4, 2, 64, 512, 320),
               lambda name, shape: T.Q6_K if name == "output.weight" else T.Q4_K)
    page.page.goto(server_url)
    page.wait_for_update(0)
    seen = page.updates()
    page.page.set_input_files("#upload", files=[{"name": "tiny-q4.gguf", "mimeType": "application/octet-stream",
                                                 "buffer": path.read_bytes()}])
    page.wait_for_update(seen)
    assert page.page.locator("#model option:checked").inner_text().startswith("uploaded: tiny-q4.gguf")
    assert page.page.locator("#weights").input_value() == ""  # "as stored": the file's formats
    assert page.page.locator("#error").inner_text() == ""
    assert set(page.cells(".ops-table", 3)) == {"1", "3"}  # three layers
    # The workload line names the file's formats, as the CLI does for the same file.
    from llm_roofline import load_model

    expected = analyze(load_model(str(path)), "jetson-orin-nx")
    sync_api.expect(page.page.locator("#headline")).to_contain_text(expected.workload.weights_label)
    assert page.errors == []


@pytest.mark.parametrize(("content", "message"), [
    (b"{this is not json", "not valid JSON"),
    (json.dumps({"model_type": "bert", "hidden_size": 8}).encode(), "unsupported model_type 'bert'"),
], ids=["not-json", "unsupported-family"])
def test_bad_upload_shows_a_readable_error(page: Page, server_url: str, content: bytes, message: str) -> None:
    page.page.goto(server_url)
    page.wait_for_update(0)
    page.page.set_input_files("#upload", files=[{"name": "broken.json", "mimeType": "application/json",
                                                 "buffer": content}])
    error = page.page.locator("#error")
    sync_api.expect(error).to_contain_text(message)
    text = error.inner_text()
    assert text.startswith("Could not use broken.json:") and message in text
    assert page.page.locator("#model").input_value() == "llama-2-7b"  # the previous model stays
    assert page.page.locator("svg.roofline .op-point").count() > 0
    # The browser logs the refused request (HTTP 400) itself; nothing else may go wrong.
    assert [e for e in page.errors if "400" not in e] == []


def test_bad_number_shows_the_servers_message(page: Page, server_url: str) -> None:
    page.page.goto(server_url)
    page.wait_for_update(0)
    page.page.fill("#batch", "0")
    sync_api.expect(page.page.locator("#error")).to_contain_text("batch: Input should be greater than or equal to 1")


def test_report_opens_offline_and_draws_its_charts(browser: Any, request: pytest.FixtureRequest) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "report.html"
    analyses = [analyze("llama-2-7b", d, phase=p) for d in ("jetson-orin-nx", "apple-m2-gpu") for p in
                ("prefill", "decode")]
    path.write_text(report_html(analyses), encoding="utf-8")
    opened = Page(browser, offline=True, java_script_enabled=True)
    requested: list[str] = []

    def only_the_file(route: Any) -> None:
        requested.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    opened.context.route("**/*", only_the_file)
    try:
        opened.page.goto(path.as_uri())
        opened.page.wait_for_selector('body[data-drawn="true"]', state="attached")
        assert requested == [path.as_uri()]  # the file itself, and nothing else
        points = opened.page.locator("svg.roofline .op-point")
        names = points.evaluate_all("points => points.flatMap(p => p.dataset.names.split(' '))")
        assert len(names) == sum(sum(op.arithmetic_intensity > 0 for op in a.ops) for a in analyses)
        assert opened.page.locator("svg.breakdown .group-bar").count() > 0
        assert len(opened.cells(".totals-table", 0)) == 4
        assert len(opened.cells(".ops-table", 0)) == len(analyses[0].ops)
        opened.page.select_option("#table-choice", "3")
        assert opened.cells(".ops-table", 3)[2] == "32"
        points.last.hover()
        assert opened.page.locator("#roofline-chart .chart-tooltip").is_visible()
        assert opened.page.locator(".recommendations li").count() >= 4
        # The page's advice, ranking and layer graph, drawn from the file's own data.
        data = json.loads(opened.page.locator("#report-data").text_content() or "{}")
        assert opened.page.locator("#advice .advice-levers li").all_inner_texts() == [
            lever["text"] for lever in data["advice"][3]["top"]]
        assert opened.page.locator("#ranking-charts svg.ranking").count() == 2  # prefill and decode
        assert opened.page.locator("#ranking-charts .rank-row").count() == 4
        nodes = opened.page.locator("#graph .graph-node")
        assert {n for n in nodes.evaluate_all("ns => ns.map(n => n.dataset.op)")} == {op.name for op in analyses[3].ops}
        nodes.filter(has_text="down_proj").first.click()
        assert opened.page.locator("#ops tr.selected").get_attribute("data-op") == "layer.mlp.down_proj"
        assert opened.errors == []
    finally:
        opened.close(request.node.name)
