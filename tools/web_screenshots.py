"""Screenshots of the web page's views for docs/img/ (docs/visualization.md shows them).

    python tools/web_screenshots.py [--out docs/img]

Serves the app on a free loopback port, drives Debian's Chromium with Playwright (as the browser tests
do) and saves, at 1400 x 1000 and at a phone's 390 x 844:
web-advice.png (advice and devices ranked, eight devices), web-roofline.png (the roofline of eight
devices), web-graph.png (the layer graph, an operator chosen), web-explore.png (batch x length heatmap),
web-timeline.png (a generation), web-phone.png (the whole page at 390 px).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
EIGHT = ["jetson-orin-nx", "nvidia-rtx-4090", "apple-m2-gpu", "nvidia-h100-sxm", "nvidia-l4", "apple-m3-gpu",
         "qualcomm-snapdragon-8-elite-gpu", "nvidia-t4"]


@contextmanager
def serve() -> Iterator[str]:
    import uvicorn

    from llm_roofline.faces.web.serving import server_config

    server = uvicorn.Server(server_config("127.0.0.1", 0, "warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def opened(browser: Any, url: str, width: int, height: int, **state: Any) -> Any:
    page = browser.new_page(viewport={"width": width, "height": height})
    query = urlencode({k: ",".join(v) if isinstance(v, list) else v for k, v in state.items()})
    page.goto(f"{url}/?{query}")
    page.wait_for_selector('body[data-updates="1"]', state="attached")
    page.wait_for_selector('body[data-advice="1"]', state="attached")
    tab = state.get("tab")
    if tab in ("explore", "timeline"):
        page.wait_for_selector(f'body[data-{tab}="1"]', state="attached")
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with serve() as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = opened(browser, url, 1400, 1000, hardware=EIGHT, target_ms=50)
        box = page.locator(".results").bounding_box()
        ranking = page.locator("#ranking-panel").bounding_box()
        page.screenshot(path=str(args.out / "web-advice.png"), clip={
            "x": box["x"], "y": box["y"], "width": box["width"], "height": ranking["y"] + ranking["height"] - box["y"]})
        page.locator("#roofline-chart").screenshot(path=str(args.out / "web-roofline.png"))
        page.close()
        page = opened(browser, url, 1400, 1000, model="deepseek-v3", hardware=["nvidia-h200-sxm"],
                      weights="fp8", op="layer.mlp.experts.up_proj")
        page.locator("#graph").screenshot(path=str(args.out / "web-graph.png"))
        page.close()
        page = opened(browser, url, 1400, 1000, model="llama-3.1-8b", hardware=["nvidia-l4"], tab="explore")
        page.locator("#panel-explore").screenshot(path=str(args.out / "web-explore.png"))
        page.close()
        page = opened(browser, url, 1400, 1000, model="llama-3.1-8b", hardware=["jetson-orin-nx"], weights="q4_k_m",
                      seq_len=2048, steps=4096, tab="timeline")
        page.locator("#panel-timeline").screenshot(path=str(args.out / "web-timeline.png"))
        page.close()
        page = opened(browser, url, 390, 844, model="llama-3.2-3b", hardware=["qualcomm-snapdragon-8-elite-gpu",
                                                                               "apple-a17-pro-gpu"], weights="q4_k_m")
        page.screenshot(path=str(args.out / "web-phone.png"), full_page=True)
        page.close()
        browser.close()
    for name in ("web-advice", "web-roofline", "web-graph", "web-explore", "web-timeline", "web-phone"):
        print(args.out / f"{name}.png")


if __name__ == "__main__":
    main()
