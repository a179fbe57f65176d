// mlpq ui: refreshes the live parts of a page and draws its charts with Chart.js (static/chart.umd.min.js).
// Live parts are HTML fragments rendered (and escaped) by the server; they stop refreshing once the
// fragment says it is done. Charts poll the JSON of /api/.../chart; a job's log polls /api/jobs/ID/log for the
// lines after the last one shown and adds them as text (never HTML) until the job has ended.
"use strict";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf"];
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
                 "#b5de2b", "#fde725"];
const HIGHLIGHT = "#ff2d55";  // marks that belong to no job (a series whose group is null)
const POINT_STYLES = {none: "line", circle: "circle", "open-circle": "circle", square: "rect", cross: "crossRot",
                      star: "star"};
const POINT_RADII = {none: 0, circle: 3, "open-circle": 3.5, square: 3, cross: 5, star: 10};

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

function logArea(holder) {
  if (holder.dataset.state === "done") return;
  repeat(async () => {
    const response = await fetch(`${holder.dataset.log}?after=${Number(holder.dataset.after) || 0}`,
                                 {credentials: "same-origin"});
    if (!response.ok || response.redirected) return false;
    const page = await response.json();
    const atEnd = holder.scrollTop + holder.clientHeight >= holder.scrollHeight - 4;
    for (const line of page.lines) {
      holder.appendChild(document.createTextNode(`${line.text}\n`));
      holder.dataset.after = line.id;
    }
    if (atEnd) holder.scrollTop = holder.scrollHeight;  // keep following the end unless scrolled back
    holder.dataset.state = page.done ? "done" : "live";
    return page.done;
  }, Number(holder.dataset.pollMs) || 1500);
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

function cell(ticks, value) {
  // [index, fraction] of value between ticks[index] and ticks[index + 1]; null outside the ticks.
  if (!(value >= ticks[0] && value <= ticks[ticks.length - 1])) return null;
  let low = 0;
  let high = ticks.length - 1;
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (ticks[middle] <= value) low = middle; else high = middle;
  }
  return [low, (value - ticks[low]) / (ticks[high] - ticks[low])];
}

function contourImage(grid, area, scales) {
  // The grid's values, interpolated per pixel and coloured in grid.levels viridis bands, as an offscreen canvas.
  const width = Math.max(1, Math.round(area.right - area.left));
  const height = Math.max(1, Math.round(area.bottom - area.top));
  const values = grid.z.flat().filter(Number.isFinite);
  const low = values.reduce((a, b) => Math.min(a, b), Infinity);
  const high = values.reduce((a, b) => Math.max(a, b), -Infinity);
  const columns = Array.from({length: width}, (_, px) => cell(grid.x, scales.x.getValueForPixel(area.left + px + 0.5)));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const image = canvas.getContext("2d").createImageData(width, height);
  for (let py = 0; py < height; py++) {
    const row = cell(grid.y, scales.y.getValueForPixel(area.top + py + 0.5));
    if (row === null) continue;
    const [j, v] = row;
    const [below, above] = [grid.z[j], grid.z[Math.min(j + 1, grid.y.length - 1)]];
    for (let px = 0; px < width; px++) {
      if (columns[px] === null) continue;
      const [i, u] = columns[px];
      const next = Math.min(i + 1, grid.x.length - 1);
      const value = (1 - v) * ((1 - u) * below[i] + u * below[next]) + v * ((1 - u) * above[i] + u * above[next]);
      if (!Number.isFinite(value)) continue;
      const band = Math.min(grid.levels - 1, Math.floor((value - low) / (high - low || 1) * grid.levels));
      image.data.set([...viridis(band / Math.max(1, grid.levels - 1)), 255], 4 * (py * width + px));
    }
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
  return canvas;
}

// A panel's contour grid (computed by the server) behind its plot area, drawn again only when the size changes.
const contourPlugin = {
  id: "contours",
  beforeDatasetsDraw(chart) {
    const grid = chart.options.plugins.contours.grid;
    if (!grid) return;
    const {ctx, chartArea: area, scales} = chart;
    const size = `${Math.round(area.right - area.left)}x${Math.round(area.bottom - area.top)}`;
    if (!chart.$contours || chart.$contours.size !== size || chart.$contours.grid !== grid) {
      chart.$contours = {size, grid, image: contourImage(grid, area, scales)};
    }
    ctx.save();
    ctx.drawImage(chart.$contours.image, area.left, area.top, area.right - area.left, area.bottom - area.top);
    ctx.restore();
  },
};

function colourOf(group) {
  return group === null ? HIGHLIGHT : COLORS[group % COLORS.length];
}

function datasets(panel) {
  return panel.series.map((series) => {
    const colour = colourOf(series.group);
    return {
      label: series.label,
      data: series.points.map(([x, y]) => ({x, y})),
      showLine: series.line !== "none",
      borderColor: colour,
      backgroundColor: series.marker === "open-circle" ? "rgba(0, 0, 0, 0)" : colour,
      borderDash: series.line === "dashed" ? [6, 4] : [],
      borderWidth: series.marker === "star" ? 2 : 1.5,
      pointStyle: POINT_STYLES[series.marker],
      pointRadius: POINT_RADII[series.marker],
      pointHitRadius: 4,
      inLegend: series.legend,
    };
  });
}

function axisOptions(axis) {
  const options = {title: {display: true, text: axis.label}, ticks: {}};
  if (axis.scale === "log") options.type = "logarithmic";
  if (axis.limits) [options.min, options.max] = axis.limits;
  if (axis.ticks === "integer") options.ticks.precision = 0;
  if (axis.ticks === "percent") options.ticks.callback = (value) => `${(value * 100).toFixed(1)}%`;
  return options;
}

function chartOptions(panel) {
  return {
    animation: false, responsive: true, maintainAspectRatio: false,
    interaction: {mode: "nearest", intersect: false},
    plugins: {title: {display: true, text: panel.title}, contours: {grid: panel.contours},
              legend: {labels: {boxWidth: 14, usePointStyle: panel.series.some((s) => s.legend && s.line === "none"),
                                filter: (item, data) => data.datasets[item.datasetIndex].inLegend}}},
    scales: {x: axisOptions(panel.x), y: axisOptions(panel.y)},
  };
}

function chartArea(holder) {
  // Draws the figure /api/.../chart describes (see mlpq/figures.py): one Chart.js chart per panel, its caption.
  const charts = [];
  const caption = document.createElement("p");
  caption.className = "caption";
  repeat(async () => {
    const response = await fetch(holder.dataset.chart, {credentials: "same-origin"});
    if (!response.ok || response.redirected) return false;
    const spec = await response.json();
    const panels = spec.figure.panels;
    if (charts.length !== panels.length) {
      charts.splice(0).forEach((chart) => chart.destroy());
      holder.replaceChildren();
      for (const panel of panels) {
        const box = document.createElement("div");
        box.className = panel.square ? "panel square" : "panel";
        const canvas = document.createElement("canvas");
        canvas.setAttribute("aria-label", panel.title);
        box.appendChild(canvas);
        holder.appendChild(box);
        charts.push(new Chart(canvas, {type: "scatter", data: {datasets: datasets(panel)},
                                       options: chartOptions(panel), plugins: [contourPlugin]}));
      }
      holder.appendChild(caption);
    } else {
      panels.forEach((panel, i) => {
        charts[i].data.datasets = datasets(panel);
        charts[i].update("none");
      });
    }
    caption.textContent = spec.figure.caption;
    caption.hidden = !spec.figure.caption;
    holder.dataset.state = spec.done ? "done" : "live";
    return spec.done;
  }, Number(holder.dataset.pollMs) || 1500, true);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(liveRegion);
  document.querySelectorAll("[data-chart]").forEach(chartArea);
  document.querySelectorAll("[data-log]").forEach(logArea);
});
