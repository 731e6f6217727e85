// The offline report: draws the analyses embedded in the page (no request leaves the file).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const results = data.results;
  const $ = (id) => document.getElementById(id);
  RooflineCharts.rooflineChart($("roofline-chart"), results);
  RooflineCharts.breakdownChart($("breakdown-chart"), results);
  RooflineCharts.totalsTable($("totals"), results);
  const select = $("table-choice");
  results.forEach((r, i) => {
    const node = document.createElement("option");
    node.value = String(i);
    node.textContent = `${r.hardware.display_name} · ${r.workload.phase}`;
    select.appendChild(node);
  });
  const showTable = () => RooflineCharts.opTable($("ops"), results[Number(select.value)]);
  select.addEventListener("change", showTable);
  showTable();
  document.body.dataset.drawn = "true";
})();
