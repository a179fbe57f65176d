// mlpq ui: refreshes the live parts of a page and draws its charts with Chart.js (static/chart.umd.min.js).
// Live parts are HTML fragments rendered (and escaped) by the server; they stop refreshing once the
// fragment says it is done. Charts poll the JSON of /api/.../chart.
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf"];
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
                 "#b5de2b", "#fde725"];
const EXTENT = 6;
const CONTOUR_LEVELS = 24;

function repeat(task, ms, immediate = false) {
  // Run task every ms while the page is visible, until it returns true; the first time now if immediate.
  async function tick() {
    let finished = false;
    if (!document.hidden) {
      try { finished = await task(); } catch (error) { finished = false; }  // a blip: try again next time
    }
    if (!finished) setTimeout(tick, ms);
  }
  if (immediate) tick(); else setTimeout(tick, ms);
}

function liveRegion(region) {
  const done = () => region.querySelector('.live-state[data-state="done"]') !== null;
  if (done()) return;
  repeat(async () => {
    const response = await fetch(region.dataset.live, {credentials: "same-origin"});
    if (!response.ok || response.redirected) return false;
    region.innerHTML = await response.text();
    return done();
  }, Number(region.dataset.pollMs) || 1500);
}

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function viridis(t) {
  const scaled = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(scaled), VIRIDIS.length - 2);
  const [a, b] = [hexToRgb(VIRIDIS[i]), hexToRgb(VIRIDIS[i + 1])];
  return a.map((v, k) => Math.round(v + (b[k] - v) * (scaled - i)));
}

function himmelblau(x, y) {
  return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2;
}

// Filled contours of log10(1 + f) behind the plot area, drawn once per size.
const contourPlugin = {
  id: "himmelblauContours",
  beforeDatasetsDraw(chart) {
    if (!chart.options.plugins.himmelblauContours) return;
    const {ctx, chartArea: area, scales} = chart;
    const width = Math.max(1, Math.round(area.right - area.left));
    const height = Math.max(1, Math.round(area.bottom - area.top));
    if (!chart.$contours || chart.$contours.width !== width || chart.$contours.height !== height) {
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const image = canvas.getContext("2d").createImageData(width, height);
      const top = Math.log10(1 + himmelblau(EXTENT, EXTENT));
      for (let py = 0; py < height; py++) {
        const y = scales.y.getValueForPixel(area.top + py + 0.5);
        for (let px = 0; px < width; px++) {
          const x = scales.x.getValueForPixel(area.left + px + 0.5);
          const level = Math.floor(Math.log10(1 + himmelblau(x, y)) / top * CONTOUR_LEVELS) / CONTOUR_LEVELS;
          const [r, g, b] = viridis(level);
          const at = 4 * (py * width + px);
          image.data.set([r, g, b, 255], at);
        }
      }
      canvas.getContext("2d").putImageData(image, 0, 0);
      chart.$contours = canvas;
    }
    ctx.save();
    ctx.drawImage(chart.$contours, area.left, area.top, area.right - area.left, area.bottom - area.top);
    ctx.restore();
  },
};

function datasets(panel) {
  const sets = panel.series.map((series) => ({
    label: series.label,
    data: series.points.map(([x, y]) => ({x, y})),
    showLine: true,
    borderColor: panel.contours ? "#ffffff" : COLORS[series.group % COLORS.length],
    backgroundColor: COLORS[series.group % COLORS.length],
    borderDash: series.dashed ? [6, 4] : [],
    inLegend: series.legend,
    borderWidth: panel.contours ? 1.5 : 2,
    pointRadius: panel.contours ? 2 : 3,
  }));
  if (panel.contours) {
    sets.forEach((set) => { set.borderColor = set.backgroundColor; });
    sets.push({label: "minima", data: panel.minima.map(([x, y]) => ({x, y})), showLine: false, inLegend: true,
               pointStyle: "star", pointRadius: 10, borderWidth: 2, borderColor: "#ff2d55",
               backgroundColor: "#ff2d55"});
  }
  return sets;
}

function chartOptions(panel) {
  const square = panel.contours ? {min: -EXTENT, max: EXTENT} : {};
  const options = {
    animation: false, responsive: true, maintainAspectRatio: false,
    interaction: {mode: "nearest", intersect: false},
    plugins: {title: {display: true, text: panel.title}, himmelblauContours: Boolean(panel.contours),
              legend: {labels: {boxWidth: 14, usePointStyle: Boolean(panel.contours),
                                filter: (item, data) => data.datasets[item.datasetIndex].inLegend}}},
    scales: {x: {title: {display: true, text: panel.x}, ...square},
             y: {title: {display: true, text: panel.y}, ...square}},
  };
  if (panel.x === "epoch") options.scales.x.ticks = {stepSize: 1, precision: 0};
  if (panel.y === "accuracy") options.scales.y.ticks = {callback: (value) => `${(value * 100).toFixed(1)}%`};
  return options;
}

function chartArea(holder) {
  const charts = [];
  repeat(async () => {
    const response = await fetch(holder.dataset.chart, {credentials: "same-origin"});
    if (!response.ok || response.redirected) return false;
    const spec = await response.json();
    if (charts.length !== spec.panels.length) {
      charts.splice(0).forEach((chart) => chart.destroy());
      holder.replaceChildren();
      for (const panel of spec.panels) {
        const box = document.createElement("div");
        box.className = panel.contours ? "panel square" : "panel";
        const canvas = document.createElement("canvas");
        canvas.setAttribute("aria-label", panel.title);
        box.appendChild(canvas);
        holder.appendChild(box);
        charts.push(new Chart(canvas, {type: "scatter", data: {datasets: datasets(panel)},
                                       options: chartOptions(panel), plugins: [contourPlugin]}));
      }
    } else {
      spec.panels.forEach((panel, i) => {
        charts[i].data.datasets = datasets(panel);
        charts[i].update("none");
      });
    }
    holder.dataset.state = spec.done ? "done" : "live";
    return spec.done;
  }, Number(holder.dataset.pollMs) || 1500, true);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(liveRegion);
  document.querySelectorAll("[data-chart]").forEach(chartArea);
});
