// The offline report: draws the analyses embedded in the page (no request leaves the file).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const results = data.results;
  const $ = (id) => document.getElementById(id);
  RooflineCharts.rooflineChart($("roofline-chart"), results);
  RooflineCharts.breakdownChart($("breakdown-chart"), results);
  RooflineCharts.totalsTable($("totals"), results);
  // Devices ranked, one chart per phase (a prompt's tokens/s and a decode step's do not compare).
  const phases = [...new Set(results.map((r) => r.workload.phase))];
  const several = new Set(results.map((r) => r.hardware.name)).size > 1;
  $("ranking").hidden = !several;
  if (several) {
    for (const phase of phases) {
      const box = document.createElement("div");
      box.className = "ranking-phase";
      const title = document.createElement("h3");
      title.textContent = phase;
      const chart = document.createElement("div");
      box.append(title, chart);
      $("ranking-charts").appendChild(box);
      RooflineCharts.rankingChart(chart, results.filter((r) => r.workload.phase === phase));
    }
  }
  const select = $("table-choice");
  results.forEach((r, i) => {
    const node = document.createElement("option");
    node.value = String(i);
    node.textContent = `${r.hardware.display_name} · ${r.workload.phase}`;
    select.appendChild(node);
  });
  let chosen = null;
  function markRow(name) {
    chosen = chosen === name ? null : name;
    for (const row of $("ops").querySelectorAll("tr.selected")) row.classList.remove("selected");
    const row = chosen ? $("ops").querySelector(`tr[data-op="${CSS.escape(chosen)}"]`) : null;
    if (row) {
      row.classList.add("selected");
      $("ops").scrollTop = row.offsetTop - $("ops").clientHeight / 2;
    }
    RooflineGraph.select($("graph"), chosen);
  }
  const show = () => {
    const index = Number(select.value);
    RooflineCharts.opTable($("ops"), results[index]);
    RooflineCharts.adviceBlock($("advice"), data.advice[index]);
    RooflineGraph.draw($("graph"), data.graphs[index], results[index], {onSelect: markRow});
    chosen = null;
  };
  select.addEventListener("change", show);
  show();
  document.body.dataset.drawn = "true";
})();
