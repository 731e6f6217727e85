"""The page as an advisor, in a real browser (Playwright driving Debian's Chromium) at a phone's width
(390 x 844) and a desktop's (1400 x 1000): nothing wider than the screen, no two chart labels on top of
each other with eight devices, the advice equal to ``llm-roofline advise`` (whatif and feasibility), a
graph node selecting its operator in the table and on the chart, the heatmap's boundary equal to
``sweep --query boundary``, the state in the address surviving a reload, and no request leaving the server.

One server and one browser for the module, a fresh context per test; screenshots under
test-artifacts/browser/ (git-ignored; ``tools/web_screenshots.py`` writes the ones in docs/img/).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from browser_support import Page, chromium, serving
from llm_roofline import analyze
from llm_roofline.core.units import seconds
from llm_roofline.faces.cli.main import main

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1400, "height": 1000}
VIEWPORTS = [pytest.param(PHONE, id="390x844"), pytest.param(DESKTOP, id="1400x1000")]
EIGHT_DEVICES = ["jetson-orin-nx", "nvidia-rtx-4090", "apple-m2-gpu", "nvidia-h100-sxm", "nvidia-l4", "apple-m3-gpu",
                 "qualcomm-snapdragon-8-elite-gpu", "nvidia-t4"]

# Every visible element's box against the viewport, except those inside a box that scrolls on its own
# (a wide table in its scroll box is reached by scrolling the box, not the page).
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (node) => {
    for (let p = node.parentElement; p; p = p.parentElement) {
      const style = getComputedStyle(p);
      if (["auto", "scroll", "hidden"].includes(style.overflowX) && p !== document.body &&
          p !== document.documentElement) return true;
    }
    return false;
  };
  const wide = [];
  for (const node of document.querySelectorAll("body *")) {
    const box = node.getBoundingClientRect();
    if (box.width === 0 || box.height === 0 || scrolls(node)) continue;
    if (box.right > width + 0.5 || box.left < -0.5) {
      wide.push(`${node.tagName.toLowerCase()}#${node.id}.${node.getAttribute("class")}: ${box.left}..${box.right}`);
    }
  }
  return {width, scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 10)};
}"""

# Pairs of labels (text boxes on screen) that overlap, within each chart.
OVERLAPS = """(selector) => {
  const found = [];
  for (const chart of document.querySelectorAll(selector)) {
    const boxes = Array.from(chart.querySelectorAll(".roof-label, .rank-label, .rank-value, .tick"),
                             (n) => [n.textContent, n.getBoundingClientRect()]).filter(([, b]) => b.width > 0);
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [ta, a] = boxes[i];
        const [tb, b] = boxes[j];
        const margin = 0.5;
        if (a.left < b.right - margin && b.left < a.right - margin && a.top < b.bottom - margin &&
            b.top < a.bottom - margin) found.push(`${ta} / ${tb}`);
      }
    }
  }
  return found;
}"""


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    yield from serving()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    viewport = request.node.callspec.params.get("viewport", DESKTOP) if hasattr(request.node, "callspec") else DESKTOP
    opened = Page(browser, viewport)
    yield opened
    opened.close(request.node.name)


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main([*args, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def assert_fits_the_screen(page: Page) -> None:
    report = page.page.evaluate(OVERFLOW)
    assert report["scrollWidth"] <= report["width"], report
    assert report["wide"] == [], report


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_every_view_fits_the_screen_and_no_labels_collide_with_eight_devices(page: Page, server_url: str,
                                                                           viewport: dict[str, int]) -> None:
    page.open(server_url, hardware=EIGHT_DEVICES)
    assert page.page.locator("svg.roofline .ridge").count() >= 8
    assert page.page.locator("#ranking-chart .rank-row").count() == 8
    assert page.page.locator("#breakdown-panel").is_hidden()  # the ranking replaces eight repeated breakdowns
    placed = page.page.locator("svg.roofline .roof-label").count()
    assert placed >= 4  # labels placed where they collide with nothing; the rest on hover of the ridge point
    assert page.page.evaluate(OVERLAPS, "svg.roofline") == []
    assert page.page.evaluate(OVERLAPS, "svg.ranking") == []
    # Labels stay inside their chart.
    for selector in ("svg.roofline .roof-label", "svg.ranking .rank-label", "svg.ranking .rank-value"):
        outside = page.page.locator(selector).evaluate_all("""nodes => nodes.filter(n => {
            const box = n.getBoundingClientRect(), svg = n.ownerSVGElement.getBoundingClientRect();
            return box.left < svg.left - 0.5 || box.right > svg.right + 0.5; }).map(n => n.textContent)""")
        assert outside == [], selector
    assert_fits_the_screen(page)
    for tab, kind in (("explore", "explore"), ("timeline", "timeline")):
        seen = page.count(kind)
        page.page.click(f"#tab-{tab}")
        page.wait(kind, seen)
        assert page.page.locator(f"#panel-{tab}").is_visible()
        assert_fits_the_screen(page)
    page.page.click("#tab-roofline")
    assert_fits_the_screen(page)
    assert page.errors == []


def test_the_ranking_orders_devices_by_expected_speed_and_marks_what_does_not_fit(page: Page, server_url: str) -> None:
    page.open(server_url, hardware=EIGHT_DEVICES)
    rows = page.page.locator("#ranking-chart .rank-row").evaluate_all(
        "rows => rows.map(r => [r.dataset.device, Number(r.dataset.expectedTokensPerS), r.dataset.fits])")
    expected = {d: analyze("llama-2-7b", d) for d in EIGHT_DEVICES}
    fitting = [row for row in rows if row[2] != "false"]
    assert [row[1] for row in fitting] == sorted((row[1] for row in fitting), reverse=True)
    assert rows[: len(fitting)] == fitting  # those that fit first
    for device, speed, fits in rows:
        assert speed == pytest.approx(expected[device].totals.expected_tokens_per_s, rel=1e-12)
        assert fits == str(expected[device].memory.fits).lower()
    not_fitting = [device for device, _, fits in rows if fits == "false"]
    assert not_fitting  # Llama-2-7B in fp16 does not fit the phone's 12 GB
    label = page.page.locator(f'#ranking-chart .rank-row[data-device="{not_fitting[0]}"]').text_content() or ""
    assert "does not fit" in label
    assert page.errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_the_advice_panel_says_what_the_command_line_says(page: Page, server_url: str, viewport: dict[str, int],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    page.open(server_url, model="mistral-7b", hardware=["apple-m3-gpu"], seq_len=4096, weights="q4_k_m",
              target_ms=25)
    advice = cli_json(capsys, "advise", "-m", "mistral-7b", "-H", "apple-m3-gpu", "-l", "4096", "-w", "q4_k_m",
                      "--target-ms", "25")
    panel = page.page.locator("#advice")
    assert panel.locator(".badge").inner_text() == f"{advice['bound']}-bound"
    assert panel.locator("[data-figure=tokens_per_s]").inner_text() == f"{advice['tokens_per_s']:.4g} tokens/s"
    assert panel.locator("[data-figure=expected_tokens_per_s]").inner_text() == \
        f"{advice['expected_tokens_per_s']:.4g} tokens/s"
    assert panel.locator("[data-figure=fits]").inner_text() == advice["fit_text"]
    assert panel.locator(".advice-why").inner_text() == advice["bound_reason"]
    levers = panel.locator(".advice-levers li")
    assert levers.all_inner_texts() == [lever["text"] for lever in advice["top"]]
    # Each lever's number is whatif's: the variant of the same knob, run as its own command.
    for item, lever in zip(levers.all(), advice["top"], strict=True):
        knob, value = item.get_attribute("data-knob"), item.get_attribute("data-value")
        assert (knob, value) == (lever["knob"], lever["value"])
        whatif = cli_json(capsys, "whatif", "-m", "mistral-7b", "-H", "apple-m3-gpu", "-l", "4096", "-w", "q4_k_m",
                          "--vary", f"{knob}={value}")
        (variant,) = whatif["variants"]
        assert variant["tokens_per_s"] == lever["tokens_per_s"]
        speed = lever["tokens_per_s"]
        shown = f"{speed:,.0f}" if speed >= 1000 else f"{speed:.4g}"
        assert shown in item.inner_text() or lever["throughput_ratio"] < 1.02
    feasibility = cli_json(capsys, "feasibility", "-m", "mistral-7b", "-H", "apple-m3-gpu", "-l", "4096", "-w",
                           "q4_k_m", "--target-ms", "25")
    assert advice["feasibility"] == feasibility
    verdict = panel.locator(".advice-notes li.target").inner_text()
    assert verdict == advice["feasibility_text"]
    assert verdict.startswith("meets" if feasibility["baseline"]["meets"] else "misses")
    # A new target is judged again.
    seen = page.count("advice")
    page.page.fill("#target_ms", "5")
    page.wait("advice", seen)
    assert page.page.locator("#advice .advice-notes li.target").inner_text().startswith("misses the 5 ms/token")
    assert page.errors == []


def test_the_state_is_in_the_address_and_survives_a_reload(page: Page, server_url: str) -> None:
    page.open(server_url)
    seen = page.count("updates")
    page.page.select_option("#model", "qwen3-8b")
    page.wait("updates", seen)
    seen = page.count("updates")
    page.page.select_option("#hardware", ["nvidia-l4", "apple-m3-gpu"])
    page.wait("updates", seen)
    for field, value in (("#batch", "4"), ("#seq_len", "2048")):
        seen = page.count("updates")
        page.page.fill(field, value)
        page.wait("updates", seen)
    seen = page.count("updates")
    page.page.check("#flash_attention")
    page.wait("updates", seen)
    seen = page.count("advice")
    page.page.select_option("#table-device", label="NVIDIA L4")
    page.wait("advice", seen)
    page.page.locator('#ops tr[data-op="layer.mlp.down_proj"]').click()
    seen = page.count("timeline")
    page.page.click("#tab-timeline")
    page.wait("timeline", seen)
    before = {
        "url": page.page.url,
        "totals": page.cells(".totals-table", 3),
        "advice": page.page.locator("#advice").inner_text(),
        "timeline": page.page.locator("#timeline").inner_text(),
    }
    for key in ("model=qwen3-8b", "batch=4", "seq_len=2048", "flash_attention=1", "tab=timeline",
                "device=nvidia-l4", "op=layer.mlp.down_proj"):
        assert key in before["url"]
    page.page.reload()
    page.wait("updates", 0)
    page.wait("advice", 0)
    page.wait("timeline", 0)
    assert page.page.url == before["url"]
    assert page.page.locator("#model").input_value() == "qwen3-8b"
    assert page.page.locator("#batch").input_value() == "4" and page.page.locator("#flash_attention").is_checked()
    assert page.page.locator("#table-device option:checked").inner_text() == "NVIDIA L4"
    assert page.page.locator("#tab-timeline").get_attribute("aria-selected") == "true"
    assert page.cells(".totals-table", 3) == before["totals"]
    assert page.page.locator("#advice").inner_text() == before["advice"]
    assert page.page.locator("#timeline").inner_text() == before["timeline"]
    assert page.page.locator('#ops tr.selected').get_attribute("data-op") == "layer.mlp.down_proj"
    expected = analyze("qwen3-8b", "nvidia-l4", batch=4, seq_len=2048, flash_attention=True)
    assert f"{expected.totals.tokens_per_s:.4g}" in before["totals"]
    assert page.errors == []


def test_no_request_leaves_the_server(page: Page, server_url: str) -> None:
    page.open(server_url, hardware=EIGHT_DEVICES[:3])
    for tab, kind in (("explore", "explore"), ("timeline", "timeline")):
        seen = page.count(kind)
        page.page.click(f"#tab-{tab}")
        page.wait(kind, seen)
    page.page.click("#tab-roofline")
    page.page.locator("svg.roofline .op-point").last.hover()
    assert page.requests and all(url.startswith(server_url + "/") for url in page.requests), page.requests
    assert page.errors == []


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_clicking_a_graph_node_selects_its_operator_in_the_table_and_on_the_chart(
        page: Page, server_url: str, viewport: dict[str, int]) -> None:
    page.open(server_url, model="qwen3-30b-a3b", hardware=["nvidia-l4", "jetson-orin-nx"], weights="q4_k_m",
              device="nvidia-l4")
    expected = analyze("qwen3-30b-a3b", "nvidia-l4", weights="q4_k_m")
    graph_ops = page.page.locator("#graph .graph-node").evaluate_all("nodes => nodes.map(n => n.dataset.op)")
    assert set(graph_ops) == {op.name for op in expected.ops}  # every operator drawn, none invented
    for name in ("layer.mlp.experts.down_proj", "layer.attn.qk"):
        node = page.page.locator(f'#graph .graph-node[data-op="{name}"]').first
        node.scroll_into_view_if_needed()
        node.click()
        assert page.page.locator("#ops tr.selected").get_attribute("data-op") == name
        assert page.page.locator("#ops tr.selected").count() == 1
        marked = page.page.locator("svg.roofline .op-point.selected")
        assert marked.count() == 1
        assert marked.get_attribute("data-device") == "nvidia-l4"
        assert name in (marked.get_attribute("data-names") or "").split()
        assert page.page.locator(f'#graph .graph-node.selected[data-op="{name}"]').count() >= 1
        assert f"op={name}" in page.page.url
    # From the table the other way, with the keyboard: the graph's node and the chart's point follow.
    row = page.page.locator('#ops tr[data-op="layer.mlp.router"]')
    row.focus()
    page.page.keyboard.press("Enter")
    assert page.page.locator("#graph .graph-node.selected").first.get_attribute("data-op") == "layer.mlp.router"
    marked_names = page.page.locator("svg.roofline .op-point.selected").get_attribute("data-names") or ""
    assert "layer.mlp.router" in marked_names.split()
    # Another device chosen: the graph is shaded by its figures and the chart marks its point.
    seen = page.count("advice")
    page.page.select_option("#table-device", label="NVIDIA Jetson Orin NX 16GB")
    page.wait("advice", seen)
    assert page.page.locator("svg.roofline .op-point.selected").get_attribute("data-device") == "jetson-orin-nx"
    assert_fits_the_screen(page)
    assert page.errors == []


@pytest.mark.parametrize(("model", "device", "state", "cli"), [
    ("llama-2-7b", "jetson-orin-nx", {}, []),
    ("llama-3.1-8b", "nvidia-l4", {"weights": "int4", "flash_attention": "1"},
     ["-w", "int4", "--flash-attention", "on"]),
    ("llama-3.1-8b", "nvidia-a100-80gb-sxm", {"phase": "prefill"}, ["-p", "prefill"]),
], ids=["orin-decode", "l4-int4-flash", "a100-prefill"])
def test_the_heatmaps_boundary_is_the_sweeps(page: Page, server_url: str, capsys: pytest.CaptureFixture[str],
                                             model: str, device: str, state: dict[str, str], cli: list[str]) -> None:
    page.open(server_url, model=model, hardware=[device], tab="explore", **state)
    page.wait("explore", 0)
    boundary_path = page.page.locator("#heatmap .boundary")
    shown = json.loads(boundary_path.get_attribute("data-boundary") or "null")
    batches = page.page.locator("#heatmap .heat-cell").evaluate_all(
        "cells => [...new Set(cells.map(c => Number(c.dataset.batch)))].sort((a, b) => a - b)")
    lengths = page.page.locator("#heatmap .heat-cell").evaluate_all(
        "cells => [...new Set(cells.map(c => Number(c.dataset.seqLen)))].sort((a, b) => a - b)")
    capsys.readouterr()
    rows = cli_json(capsys, "sweep", "-m", model, "-H", device, "-b", ",".join(map(str, batches)),
                    "-l", ",".join(map(str, lengths)), *cli, "-q", "boundary")["rows"]
    expected = {row["seq_len"]: row["batch"] for row in rows}
    assert shown == [expected.get(length) for length in lengths]
    assert any(value is not None for value in shown)
    # A cell's hover: its figures are the sweep's (and analyze's) at that point.
    cell = page.page.locator(f'#heatmap .heat-cell[data-batch="{batches[0]}"][data-seq-len="{lengths[0]}"]')
    cell.hover()
    tip = page.page.locator("#heatmap .chart-tooltip").inner_text()
    options = {"phase": state.get("phase", "decode"), "weights": state.get("weights"),
               "flash_attention": bool(state.get("flash_attention"))}
    point = analyze(model, device, batch=batches[0], seq_len=lengths[0], **options)
    assert f"step time {seconds(point.totals.time_s)} bound, {seconds(point.totals.expected_time_s)} expected" in tip
    assert f"bound {point.totals.bound}" in tip
    assert page.errors == []
