// The report page's chart: data from the json_script element named by data-chart-source.
// Amounts arrive as Decimal strings; Number() here is for drawing only, never for sums.
(function () {
  "use strict";
  var canvas = document.getElementById("report-chart");
  if (!canvas || typeof Chart === "undefined") { return; }
  var data = JSON.parse(document.getElementById(canvas.dataset.chartSource).textContent);
  var keys = canvas.dataset.series.split(",");
  var names = canvas.dataset.labels.split("|");
  var colors = ["#4f9cf9", "#f5a524", "#17c964", "#f31260"];
  // Time runs left to right in RTL too (the chart box is dir="ltr"): only the legend reads RTL.
  var rtl = document.documentElement.dir === "rtl";
  var datasets = keys.map(function (key, i) {
    return {
      label: names[i] || key,
      data: data.series[key].map(Number),
      type: i === 0 ? "bar" : "line",
      backgroundColor: colors[i],
      borderColor: colors[i],
      yAxisID: i === 0 ? "y" : "y" + i,
    };
  });
  var scales = { x: { ticks: { color: "#aab" } }, y: { position: "left", ticks: { color: "#aab" } } };
  keys.slice(1).forEach(function (_key, i) {
    scales["y" + (i + 1)] = { position: "right", grid: { drawOnChartArea: false }, ticks: { color: colors[i + 1] } };
  });
  new Chart(canvas, {
    data: { labels: data.labels, datasets: datasets },
    options: { responsive: true, maintainAspectRatio: false, interaction: { mode: "index", intersect: false }, scales: scales, plugins: { legend: { rtl: rtl, labels: { color: "#dde" } } } },
  });
})();
