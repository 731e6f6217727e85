"""One self-contained HTML report: interactive charts, the per-operator tables, totals, memory fit and
recommendations, for one model on several devices.

The file carries everything it needs: the analyses as JSON, and the style and scripts of the web page
(``web/static``) inlined, so it opens offline and fetches nothing. The charts are drawn by the same
``charts.js`` the web page uses, from ``charts.analysis_payload``; the advice is ``llm-roofline advise``'s
(``studies.advice``) and the layer graph ``graph.layer_graph``'s, drawn by the page's ``graph.js``:
nothing is computed here but words.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from importlib import resources

from llm_roofline import __version__
from llm_roofline.core.errors import InputError
from llm_roofline.core.roofline import Analysis
from llm_roofline.core.units import si
from llm_roofline.faces.report.charts import analysis_payload, model_label, workload_label
from llm_roofline.faces.report.graph import layer_graph
from llm_roofline.faces.report.render import advice_payload
from llm_roofline.features.studies.advice import advise

_STATIC = resources.files("llm_roofline.faces.web").joinpath("static")


def recommendations(analyses: Sequence[Analysis]) -> list[str]:
    """What the figures say to do, one sentence each, read off the analyses (bound, bytes, fit)."""
    advice = []
    for a in analyses:
        t, wl, device = a.totals, a.workload, a.hardware.display_name
        ridge = t.ridge_flop_per_byte
        where = f"{wl.phase.capitalize()} on {device}"
        if t.bound == "memory":
            kv_share = t.kv_read_bytes / t.bytes
            weight_share = t.weight_bytes / t.bytes
            if kv_share > weight_share:
                remedy = ("the KV cache is most of it: a narrower KV-cache format (--kv-cache int8), fewer KV "
                          "heads (GQA/MQA) or a shorter context cut it")
            else:
                remedy = ("weights are most of it: fewer bits per weight (--weights int8 or int4) cut it, and a "
                          "larger batch shares each weight read among more tokens")
            advice.append(f"{where} is memory-bound (intensity {t.arithmetic_intensity:.3g} FLOP/B, below the ridge "
                          f"point {ridge:.3g} FLOP/B): its time is set by the {si(t.bytes, 'B')} it moves per step "
                          f"({100 * weight_share:.0f}% weights, {100 * kv_share:.0f}% KV cache); {remedy}.")
        else:
            advice.append(f"{where} is compute-bound (intensity {t.arithmetic_intensity:.3g} FLOP/B, at or above the "
                          f"ridge point {ridge:.3g} FLOP/B): only a higher roof helps — math in a narrower "
                          f"precision the device runs faster (--activations fp8 or int8 where it has such "
                          f"units), or a faster device.")
        if a.memory.fits is False:
            advice.append(f"{where}: the model does not fit — it needs {si(a.memory.total_bytes, 'B')} "
                          f"(weights {si(a.memory.weight_bytes, 'B')}, KV cache {si(a.memory.kv_cache_bytes, 'B')}) "
                          f"and the device has {si(a.memory.capacity_bytes or 0, 'B')}: use fewer bits per weight, "
                          f"a smaller batch or context, or a device with more memory.")
    by_phase: dict[str, list[Analysis]] = {}
    for a in analyses:
        by_phase.setdefault(a.workload.phase, []).append(a)
    for phase, group in by_phase.items():
        if len({a.hardware.name for a in group}) > 1:
            best = min(group, key=lambda a: a.totals.time_s)
            advice.append(f"Fastest {phase}: {best.hardware.display_name}, {best.totals.tokens_per_s:.4g} tokens/s.")
    return advice


def _asset(name: str) -> str:
    return _STATIC.joinpath(name).read_text(encoding="utf-8")


def _script(text: str) -> str:
    """Inline script text; '</' would end the element early, so it is escaped."""
    return text.replace("</", "<\\/")


def report_html(analyses: Sequence[Analysis], precisions: Sequence[str] | None = None) -> str:
    """The report as one HTML document: analyses of one model and workload, on one or more devices."""
    if not analyses:
        raise InputError("a report needs at least one analysis")
    first = analyses[0]
    devices = list({a.hardware.name: a.hardware for a in analyses}.values())
    phases = list(dict.fromkeys(a.workload.phase for a in analyses))
    data = {"results": [analysis_payload(a, precisions) for a in analyses], "version": __version__,
            "advice": [advice_payload(advise(a.model, a.hardware, a.workload)) for a in analyses],
            "graphs": [layer_graph(a) for a in analyses]}
    title = f"{model_label(first)} on {', '.join(d.display_name for d in devices)}"
    model = first.model
    facts = [
        ("model", f"{model_label(first)} ({si(model.params, digits=4)} parameters; {model.num_layers} layers, "
                  f"hidden {model.hidden_size}, {model.num_heads} heads, {model.num_kv_heads} KV heads)"),
        ("workload", workload_label(first.workload, phases)),
        *((f"device: {d.display_name}", f"{si(d.memory_bytes_per_s, 'B/s')}, "
           + ", ".join(f"{p} {si(v, 'FLOP/s')}" for p, v in d.peak_flops_per_s.items())
           + f" — source: {d.source}") for d in devices),
    ]
    fact_rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    advice = "\n".join(f"<li>{html.escape(line)}</li>" for line in recommendations(analyses))
    payload = json.dumps(data, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="llm-roofline {html.escape(__version__)}">
<title>Roofline report: {html.escape(title)}</title>
<style>
{_asset("style.css")}
{_asset("graph.css")}
</style>
</head>
<body>
<header><h1>Roofline report</h1><span class="subtitle">{html.escape(title)}</span></header>
<main>
<table class="data facts">
{fact_rows}
</table>
<h2>Roofline</h2>
<p class="meta">Every operator at its arithmetic intensity and attainable FLOP/s; hover a point or a ridge point
for its figures.</p>
<div id="roofline-chart"></div>
<div id="ranking" hidden>
<h2>Devices ranked by tokens/s</h2>
<div id="ranking-charts"></div>
</div>
<h2>Totals and memory fit</h2>
<div class="table-scroll" id="totals"></div>
<h2>Time by operator group</h2>
<div id="breakdown-chart"></div>
<h2>Recommendations</h2>
<ul class="recommendations">
{advice}
</ul>
<h2><label for="table-choice">Advice, layer graph and operators for</label> <select id="table-choice"></select></h2>
<div id="advice" class="advice"></div>
<h2>The model, layer by layer</h2>
<p class="meta">Each box is an operator, coloured by its bound and shaded by its share of the step's time; click one
to find it in the table.</p>
<div id="graph"></div>
<h2>Operators</h2>
<p class="meta">Figures per instance; <em>count</em> instances run (one per layer); share is of the whole step.</p>
<div class="table-scroll" id="ops"></div>
</main>
<script id="report-data" type="application/json">{payload}</script>
<script>
{_script(_asset("charts.js"))}
</script>
<script>
{_script(_asset("graph.js"))}
</script>
<script>
{_script(_asset("report.js"))}
</script>
</body>
</html>
"""
