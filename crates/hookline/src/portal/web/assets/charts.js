// Per-endpoint charts, drawn with uPlot (vendored, loaded only when a chart
// is opened so the first load stays small): deliveries, success rate and
// latency percentiles over time, from the Hookline series extension route.

import { get, enc } from './api.js';
import { h, skeleton, pct } from './dom.js';
import { current } from './main.js';

const UPLOT = '../vendor/uplot-1.6.32/uPlot.esm.js';
const UPLOT_CSS = new URL('../vendor/uplot-1.6.32/uPlot.min.css', import.meta.url).href;

function loadCss() {
  if (document.querySelector('link[data-uplot]')) return;
  document.head.append(h('link', { rel: 'stylesheet', href: UPLOT_CSS, dataset: { uplot: '1' } }));
}

const RANGES = [
  ['24h', 'Last 24 hours', 24 * 3600e3, '1h'],
  ['7d', 'Last 7 days', 7 * 86400e3, '6h'],
  ['30d', 'Last 30 days', 30 * 86400e3, '1d'],
];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export async function render(body, ctx) {
  const { appPath, ep, my } = ctx;
  loadCss();
  const picker = h('div.segmented', { role: 'group', 'aria-label': 'Time range' });
  const area = h('div.charts', skeleton(6));
  body.replaceChildren(h('div.card-head.bare', h('h2', 'Delivery charts'), picker), area);
  const { default: uPlot } = await import(UPLOT);
  let range = '24h';
  const draw = async () => {
    for (const b of picker.children) b.setAttribute('aria-pressed', String(b.dataset.range === range));
    const [, , span, bucket] = RANGES.find((r) => r[0] === range);
    const until = new Date();
    const since = new Date(until.getTime() - span);
    const s = await get(`${appPath}/endpoint/${enc(ep.id)}/stats/series`, { since: since.toISOString(), until: until.toISOString(), bucket });
    if (!current(my)) return;
    const xs = s.data.map((b) => Date.parse(b.start) / 1000);
    const bad = s.data.map((b) => b.failure);
    // Empty buckets draw nothing (null), not a zero-height bar.
    const ok = s.data.map((b) => b.success || null);
    const total = s.data.map((b) => b.success + b.failure || null);
    const rate = s.data.map((b) => (b.success + b.failure ? (100 * b.success) / (b.success + b.failure) : null));
    const p = (k) => s.data.map((b) => b[k]);
    const sum = total.reduce((a, b) => a + (b || 0), 0);
    const okSum = ok.reduce((a, b) => a + (b || 0), 0);
    const summary = h('p.chart-summary', sum ? `${sum} attempts · ${pct(okSum / sum)} succeeded` : 'No attempts in this period yet.');
    const boxes = [
      ['Deliveries', 'Attempts per bucket: succeeded, and failed stacked on top.'],
      ['Success rate', 'Share of attempts that succeeded.'],
      ['Latency', 'Response time percentiles of attempts that got an answer.'],
    ].map(([title, hint]) => h('figure.card.chart-card', h('figcaption', h('h3', title), h('p.hint', hint)), h('div.chart', { role: 'img', 'aria-label': `${title} chart` })));
    boxes[0].classList.add('wide');
    area.replaceChildren(summary, ...boxes);
    const text = cssVar('--muted') || '#6b7280';
    const grid = cssVar('--border') || '#e5e7eb';
    const green = cssVar('--success') || '#16a34a';
    const red = cssVar('--danger') || '#dc2626';
    const primary = cssVar('--primary') || '#4f46e5';
    const axes = (unit) => [
      { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
      { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: unit === ' ms' ? 70 : 52, values: (u, v) => v.map((x) => (x === null ? '' : `${x}${unit}`)) },
    ];
    const bars = uPlot.paths.bars({ size: [0.7, 40] });
    const widthOf = (i) => Math.max(220, boxes[i].querySelector('.chart').clientWidth);
    const common = (i) => ({ width: widthOf(i), height: 200, cursor: { drag: { x: false, y: false } }, legend: { live: true } });
    const charts = [
      new uPlot({
        ...common(0),
        axes: axes(''),
        scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        series: [{}, { label: 'Failed', stroke: red, fill: red, paths: bars, points: { show: false }, value: (u, v, si, i) => (i === null || i === undefined ? '—' : bad[i]) },
          { label: 'Succeeded', stroke: green, fill: green, paths: bars, points: { show: false }, value: (u, v) => (v === null ? '—' : v || 0) }],
      }, [xs, total, ok], boxes[0].querySelector('.chart')),
      new uPlot({
        ...common(1),
        axes: axes('%'),
        scales: { y: { range: () => [0, 100] } },
        series: [{}, { label: 'Success rate', stroke: primary, width: 2, spanGaps: false, value: (u, v) => (v === null ? '—' : `${v.toFixed(1)}%`), points: { size: 5 } }],
      }, [xs, rate], boxes[1].querySelector('.chart')),
      new uPlot({
        ...common(2),
        axes: axes(' ms'),
        scales: { y: { range: (u, min, max) => [0, Math.max(10, max || 0)] } },
        series: [{},
          { label: 'p50', stroke: primary, width: 2, value: (u, v) => (v === null ? '—' : `${v} ms`) },
          { label: 'p90', stroke: cssVar('--warning') || '#d97706', width: 1.5, value: (u, v) => (v === null ? '—' : `${v} ms`) },
          { label: 'p99', stroke: red, width: 1.5, dash: [4, 3], value: (u, v) => (v === null ? '—' : `${v} ms`) }],
      }, [xs, p('p50Ms'), p('p90Ms'), p('p99Ms')], boxes[2].querySelector('.chart')),
    ];
    const ro = new ResizeObserver(() => {
      if (!area.isConnected) {
        ro.disconnect();
        charts.forEach((c) => c.destroy());
        return;
      }
      charts.forEach((c, i) => c.setSize({ width: widthOf(i), height: 200 }));
    });
    ro.observe(area);
  };
  for (const [key, label] of RANGES) {
    picker.append(h('button.seg', { type: 'button', dataset: { range: key }, 'aria-pressed': String(key === range), onclick: () => { range = key; draw(); } }, label));
  }
  await draw();
}
