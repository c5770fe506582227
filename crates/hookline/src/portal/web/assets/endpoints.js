// Endpoints: the list with health, and the add/edit form shared with the
// endpoint page.

import { get, post, patch, getAll, enc } from './api.js';
import { h, icon, button, badge, field, empty, skeleton, pct, when, showFormErrors, clearFormErrors, toast } from './dom.js';
import { go, current } from './main.js';

/** healthy / failing / disabled from the last 24 h of attempts. */
export function health(endpoint, series) {
  if (endpoint.disabled) return { key: 'disabled', label: 'Disabled', kind: 'neutral' };
  const buckets = (series && series.data) || [];
  let ok = 0;
  let bad = 0;
  for (const b of buckets) {
    ok += b.success;
    bad += b.failure;
  }
  const latest = [...buckets].reverse().find((b) => b.success + b.failure > 0);
  const rate = ok + bad ? ok / (ok + bad) : null;
  if (latest && latest.failure > latest.success) return { key: 'failing', label: 'Failing', kind: 'danger', rate, ok, bad };
  return { key: 'healthy', label: 'Healthy', kind: 'success', rate, ok, bad };
}

export async function series24h(appPath, endpointId) {
  try {
    return await get(`${appPath}/endpoint/${enc(endpointId)}/stats/series`, { bucket: '1h' });
  } catch {
    return null;
  }
}

/** A tiny bar chart of attempts per hour: green success, red failure. */
export function sparkline(series) {
  const SVGNS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(SVGNS, 'svg');
  const data = (series && series.data) || [];
  const w = 96;
  const hgt = 24;
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('aria-hidden', 'true');
  const max = Math.max(1, ...data.map((b) => b.success + b.failure));
  const bw = w / Math.max(1, data.length);
  data.forEach((b, i) => {
    const total = b.success + b.failure;
    const x = i * bw + 0.5;
    const base = document.createElementNS(SVGNS, 'rect');
    base.setAttribute('x', x);
    base.setAttribute('width', Math.max(1, bw - 1));
    base.setAttribute('y', hgt - 1);
    base.setAttribute('height', 1);
    base.setAttribute('class', 'spark-base');
    svg.append(base);
    if (!total) return;
    const th = Math.max(2, (total / max) * (hgt - 2));
    const fh = (b.failure / total) * th;
    for (const [cls, y, height] of [['spark-ok', hgt - th + fh, th - fh], ['spark-bad', hgt - th, fh]]) {
      if (height <= 0) continue;
      const r = document.createElementNS(SVGNS, 'rect');
      r.setAttribute('x', x);
      r.setAttribute('width', Math.max(1, bw - 1));
      r.setAttribute('y', y);
      r.setAttribute('height', height);
      r.setAttribute('class', cls);
      svg.append(r);
    }
  });
  return svg;
}

export function typeChips(types, max = 3) {
  if (!types || !types.length) return h('span.muted', 'All event types');
  const shown = types.slice(0, max).map((t) => h('span.chip', t));
  return h('span.chips', shown, types.length > max ? h('span.chip.more', `+${types.length - max}`) : null);
}

export async function render(main, env) {
  const { appPath, can, my } = env;
  const list = h('div.list', skeleton(4));
  main.replaceChildren(
    h('div.page-head',
      h('div', h('h1', 'Endpoints'), h('p.lead', 'Where we send your webhooks. Each endpoint receives the event types it subscribes to.')),
      can.write ? button('Add endpoint', () => go('endpoints/new'), { kind: 'primary', iconName: 'plus' }) : null),
    list,
  );
  const endpoints = await getAll(`${appPath}/endpoint`, {}, 500);
  if (!current(my)) return;
  if (!endpoints.length) {
    list.replaceChildren(empty('No endpoints yet', can.write ? 'Add an endpoint to start receiving webhooks.' : 'No endpoints have been configured.',
      can.write ? button('Add endpoint', () => go('endpoints/new'), { kind: 'primary', iconName: 'plus' }) : null));
    return;
  }
  const rows = endpoints.map((ep) => {
    const status = h('span.status-cell', badge('…', 'neutral'));
    const rate = h('span.rate', '—');
    const spark = h('span.spark-wrap');
    const row = h('a.row.endpoint-row', { href: `#/endpoints/${enc(ep.id)}` },
      h('div.row-main',
        h('span.url', ep.url),
        h('span.row-sub', ep.description || h('span.muted', 'No description'), ' · ', typeChips(ep.filterTypes))),
      h('div.row-side', spark, h('div.rate-box', rate, h('span.rate-label', '24h success')), status),
    );
    series24h(appPath, ep.id).then((s) => {
      const hl = health(ep, s);
      status.replaceChildren(badge(hl.label, hl.kind));
      rate.textContent = hl.rate === null || hl.rate === undefined ? '—' : pct(hl.rate);
      spark.replaceChildren(sparkline(s));
    });
    return row;
  });
  list.replaceChildren(h('div.card.flush.rows', { role: 'list' }, rows.map((r) => h('div', { role: 'listitem' }, r))));
}

/** The add / edit form. `endpoint` undefined means "add". */
export async function endpointForm(main, env, endpoint) {
  const { appPath, my } = env;
  const types = await getAll('/event-type', {}, 1000).catch(() => []);
  if (!current(my)) return;
  const chosen = new Set((endpoint && endpoint.filterTypes) || []);
  const url = h('input', { type: 'url', required: true, placeholder: 'https://example.com/webhooks', autocomplete: 'url', value: endpoint ? endpoint.url : '' });
  const description = h('input', { type: 'text', placeholder: 'What receives these events', value: endpoint ? endpoint.description : '' });
  const channels = h('input', { type: 'text', placeholder: 'e.g. project-123, eu', value: endpoint && endpoint.channels ? endpoint.channels.join(', ') : '' });
  const rate = h('input', { type: 'number', min: '1', step: '1', inputmode: 'numeric', placeholder: 'Unlimited', value: endpoint && endpoint.rateLimit ? String(endpoint.rateLimit) : '' });
  const filter = h('input.picker-filter', { type: 'search', placeholder: 'Filter event types', 'aria-label': 'Filter event types' });
  const boxes = types.filter((t) => !t.archived || chosen.has(t.name)).map((t) => {
    const box = h('input', { type: 'checkbox', value: t.name, checked: chosen.has(t.name) });
    const descId = `td-${t.name.replace(/\W/g, '-')}`;
    box.setAttribute('aria-describedby', descId);
    return h('label.pick', { dataset: { name: t.name } }, box,
      h('span.pick-text', h('span.pick-name', t.name), h('span.pick-desc', { id: descId }, t.description || '')));
  });
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    for (const b of boxes) b.hidden = q && !b.dataset.name.toLowerCase().includes(q) && !b.textContent.toLowerCase().includes(q);
  });
  const picker = h('fieldset.field.picker', { dataset: { field: 'filterTypes' } },
    h('legend', 'Event types'),
    h('p.hint', 'Leave all unchecked to receive every event type.'),
    types.length > 6 ? filter : null,
    h('div.pick-list', boxes.length ? boxes : h('p.muted', 'The catalog has no event types yet; this endpoint will receive every event.')),
    h('p.field-error', { hidden: true }));
  const banner = h('div.notice.error', { role: 'alert', tabindex: '-1', hidden: true });
  const submitLabel = endpoint ? 'Save' : 'Create';
  const form = h('form.card.form', { novalidate: true },
    banner,
    field('Endpoint URL', url, { name: 'url', hint: 'An https URL that accepts POST requests.' }),
    field('Description', description, { name: 'description' }),
    picker,
    h('div.grid-2',
      field('Channels', channels, { name: 'channels', hint: 'Optional. Comma-separated; only messages sent to one of these channels are delivered.' }),
      field('Rate limit', rate, { name: 'rateLimit', hint: 'Optional. Most deliveries per second.' })),
    h('div.actions',
      button('Cancel', () => history.back(), { kind: 'ghost' }),
      h('button.btn.primary', { type: 'submit' }, h('span', submitLabel))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const submit = form.querySelector('button[type=submit]');
    if (submit.disabled) return;
    clearFormErrors(form, banner);
    const body = {
      url: url.value.trim(),
      description: description.value.trim(),
      filterTypes: boxes.map((b) => b.querySelector('input')).filter((b) => b.checked).map((b) => b.value),
      channels: channels.value.split(',').map((c) => c.trim()).filter(Boolean),
      rateLimit: rate.value.trim() ? Number(rate.value) : null,
    };
    if (!body.filterTypes.length) body.filterTypes = null;
    if (!body.channels.length) body.channels = null;
    if (!body.url) {
      showFormErrors(form, banner, { message: 'Endpoint URL is required', fields: [{ field: 'url', message: 'Enter the URL that should receive webhooks.', text: 'Endpoint URL is required' }] });
      url.focus();
      return;
    }
    submit.disabled = true;
    try {
      let saved;
      if (endpoint) {
        saved = await patch(`${appPath}/endpoint/${enc(endpoint.id)}`, body);
        toast('Endpoint saved');
      } else {
        saved = await post(`${appPath}/endpoint`, body);
        toast('Endpoint created');
      }
      go(`endpoints/${enc(saved.id)}`);
    } catch (err) {
      showFormErrors(form, banner, err);
    } finally {
      submit.disabled = false;
    }
  });
  main.replaceChildren(
    h('div.page-head',
      h('div', h('a.back', { href: endpoint ? `#/endpoints/${enc(endpoint.id)}` : '#/endpoints' }, icon('back'), endpoint ? 'Endpoint' : 'Endpoints'),
        h('h1', endpoint ? 'Edit endpoint' : 'Add endpoint'))),
    form);
  url.focus();
}

export { when };
