// The message log: filters (event type, status, date, endpoint), each
// message's payload, where it went, every attempt, and Resend.

import { get, post, getAll, enc } from './api.js';
import { h, icon, button, badge, field, empty, skeleton, when, fullDate, toast, code, json, until, localInput } from './dom.js';
import { go, current } from './main.js';

const STATUS = {
  0: ['Succeeded', 'success'],
  1: ['Pending', 'warning'],
  2: ['Failed', 'danger'],
  3: ['Sending', 'info'],
};

export function statusBadge(status) {
  const [label, kind] = STATUS[status] || ['Unknown', 'neutral'];
  return badge(label, kind);
}

/** The overall status of a message from its destinations: the worst one wins. */
function overall(dests) {
  if (!dests.length) return null;
  for (const s of [2, 3, 1]) if (dests.some((d) => d.status === s)) return s;
  return 0;
}

export async function render(main, env) {
  if (env.rest[0]) return renderMessage(main, env, env.rest[0]);
  const { appPath, my } = env;
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const [types, endpoints] = await Promise.all([
    getAll('/event-type', {}, 1000).catch(() => []),
    getAll(`${appPath}/endpoint`, {}, 500).catch(() => []),
  ]);
  if (!current(my)) return;
  const typeSel = h('select', h('option', { value: '' }, 'All event types'), types.map((t) => h('option', { value: t.name }, t.name)));
  const statusSel = h('select', h('option', { value: '' }, 'Any status'), [[0, 'Succeeded'], [1, 'Pending'], [2, 'Failed'], [3, 'Sending']].map(([v, l]) => h('option', { value: String(v) }, l)));
  const sinceIn = h('input', { type: 'datetime-local' });
  const epSel = h('select', h('option', { value: '' }, 'All endpoints'), endpoints.map((e) => h('option', { value: e.id }, e.description ? `${e.description} — ${e.url}` : e.url)));
  typeSel.value = params.get('type') || '';
  statusSel.value = params.get('status') || '';
  sinceIn.value = params.get('since') || '';
  epSel.value = params.get('endpoint') || '';
  const list = h('div.rows', skeleton(5));
  const more = h('div.more');
  const filters = h('form.filters', { role: 'search', 'aria-label': 'Filter messages' },
    field('Event type', typeSel, { name: 'type' }),
    field('Status', statusSel, { name: 'status' }),
    field('Since', sinceIn, { name: 'since' }),
    field('Endpoint', epSel, { name: 'endpoint' }));
  const apply = () => {
    const q = new URLSearchParams();
    if (typeSel.value) q.set('type', typeSel.value);
    if (statusSel.value) q.set('status', statusSel.value);
    if (sinceIn.value) q.set('since', sinceIn.value);
    if (epSel.value) q.set('endpoint', epSel.value);
    const s = q.toString();
    go(`messages${s ? `?${s}` : ''}`);
  };
  filters.addEventListener('change', apply);
  filters.addEventListener('submit', (e) => {
    e.preventDefault();
    apply();
  });
  main.replaceChildren(
    h('div.page-head', h('div', h('h1', 'Messages'), h('p.lead', 'Every event sent to you, where it went, and each delivery attempt.'))),
    h('div.card.filter-card', filters),
    h('section.card.flush', { 'aria-label': 'Message log' }, list, more));

  const after = sinceIn.value ? new Date(sinceIn.value).toISOString() : undefined;
  const type = typeSel.value;
  const status = statusSel.value;
  const byEndpoint = status !== '' || epSel.value;
  const rowFor = (m, st) => {
    const statusCell = h('span.status-cell', st === undefined ? badge('…', 'neutral') : st === null ? badge('No endpoint', 'neutral') : statusBadge(st));
    const row = h('a.row.msg-row', { href: `#/messages/${enc(m.id)}` },
      h('span.msg-type.mono', m.eventType),
      h('span.mono.muted.msg-id', m.id),
      statusCell,
      h('span.muted.time', when(m.timestamp)));
    return [row, statusCell];
  };
  if (byEndpoint) {
    // Status lives on each (message, endpoint) delivery: read the chosen
    // endpoint's deliveries, or every endpoint's, and merge.
    const targets = epSel.value ? endpoints.filter((e) => e.id === epSel.value) : endpoints;
    const pages = await Promise.all(targets.map((e) =>
      get(`${appPath}/endpoint/${enc(e.id)}/msg`, { status, limit: 100, with_content: false }).then((p) => p.data).catch(() => [])));
    if (!current(my)) return;
    const seen = new Map();
    for (const m of pages.flat()) {
      if (type && m.eventType !== type) continue;
      if (after && m.timestamp < after) continue;
      const prev = seen.get(m.id);
      if (!prev || m.status > prev.status) seen.set(m.id, m);
    }
    const msgs = [...seen.values()].sort((a, b) => (a.timestamp < b.timestamp ? 1 : -1)).slice(0, 100);
    list.replaceChildren(...(msgs.length ? msgs.map((m) => rowFor(m, m.status)[0]) : [empty('No messages match', 'Try other filters.')]));
    return;
  }
  let iterator;
  const loadPage = async () => {
    const page = await get(`${appPath}/msg`, { limit: 50, iterator, event_types: type || undefined, after, with_content: false });
    if (!current(my)) return;
    if (!iterator) list.replaceChildren();
    if (!page.data.length && !iterator) {
      list.replaceChildren(empty('No messages yet', type || after ? 'No message matches these filters.' : 'Messages sent to your endpoints appear here.'));
    }
    for (const m of page.data) {
      const [row, cell] = rowFor(m, undefined);
      list.append(row);
      get(`${appPath}/msg/${enc(m.id)}/endpoint`, { limit: 50 }).then((d) => {
        const st = overall(d.data);
        cell.replaceChildren(st === null ? badge('No endpoint', 'neutral') : statusBadge(st));
      }).catch(() => cell.replaceChildren());
    }
    iterator = page.done ? null : page.iterator;
    more.replaceChildren(iterator ? button('Load more', loadPage, { kind: 'ghost' }) : '');
  };
  await loadPage();
}

async function renderMessage(main, env, msgId) {
  const { appPath, can, my } = env;
  main.replaceChildren(skeleton(6));
  const msgPath = `${appPath}/msg/${enc(msgId)}`;
  let msg;
  try {
    msg = await get(msgPath, { with_content: true });
  } catch (e) {
    if (!current(my)) return;
    main.replaceChildren(empty('Message not found', e.message, h('a.btn.secondary', { href: '#/messages' }, 'Back to messages')));
    return;
  }
  if (!current(my)) return;
  const dests = h('div.rows', skeleton(2));
  const attempts = h('div.rows', skeleton(3));
  const loadAttempts = async () => {
    const page = await get(`${appPath}/attempt/msg/${enc(msg.id)}`, { limit: 100, with_content: true });
    if (!current(my)) return page.data;
    attempts.replaceChildren(...(page.data.length ? page.data.map(attemptItem) : [h('p.muted.pad', 'No attempts yet.')]));
    return page.data;
  };
  const loadDests = async () => {
    const d = await get(`${msgPath}/endpoint`, { limit: 100 });
    if (!current(my)) return;
    dests.replaceChildren(...(d.data.length ? d.data.map((ep) => h('div.row.dest-row',
      h('div.row-main', h('a.url', { href: `#/endpoints/${enc(ep.id)}` }, ep.url), h('span.row-sub', ep.nextAttempt ? ['Next attempt ', when(ep.nextAttempt)] : ep.description || '')),
      h('div.row-side', statusBadge(ep.status),
        can.attempts ? button('Resend', async () => {
          const before = (await loadAttempts()).length;
          await post(`${msgPath}/endpoint/${enc(ep.id)}/resend`, {});
          toast('Resend queued');
          await until(async () => (await loadAttempts()).length > before, { interval: 700, timeout: 30000, alive: () => current(my) });
          await loadDests();
        }, { iconName: 'send', small: true }) : null))) : [h('p.muted.pad', 'This message matched no endpoint.')]));
  };
  main.replaceChildren(
    h('div.page-head', h('div.head-text',
      h('a.back', { href: '#/messages' }, icon('back'), 'Messages'),
      h('h1.mono', msg.eventType),
      h('p.lead.mono.muted', msg.id))),
    h('div.columns',
      h('div.col-main',
        h('section.card', { 'aria-labelledby': 'payload-h' }, h('h2', { id: 'payload-h' }, 'Payload'),
          msg.expired ? h('p.muted', 'The payload has expired or was removed.') : code(json(msg.payload), 'Message payload')),
        h('section.card.flush', { 'aria-labelledby': 'attempts-h' }, h('div.card-head', h('h2', { id: 'attempts-h' }, 'Attempts'),
          button('Refresh', loadAttempts, { kind: 'ghost', iconName: 'refresh', small: true })), attempts)),
      h('div.col-side',
        h('section.card', { 'aria-labelledby': 'msg-details-h' }, h('h2', { id: 'msg-details-h' }, 'Details'),
          h('dl.details',
            h('dt', 'Created'), h('dd', fullDate(msg.timestamp)),
            h('dt', 'Event ID'), h('dd', msg.eventId ? h('code.mono', msg.eventId) : h('span.muted', '—')),
            h('dt', 'Channels'), h('dd', msg.channels && msg.channels.length ? msg.channels.join(', ') : h('span.muted', '—')),
            h('dt', 'Tags'), h('dd', msg.tags && msg.tags.length ? msg.tags.join(', ') : h('span.muted', '—')))),
        h('section.card.flush', { 'aria-labelledby': 'dest-h' }, h('div.card-head', h('h2', { id: 'dest-h' }, 'Endpoints')), dests))));
  await Promise.all([loadDests(), loadAttempts()]);
}

function attemptItem(a) {
  const ok = a.status === 0;
  const summary = h('summary.attempt-summary',
    statusBadge(a.status),
    h('span.mono.code-col', a.responseStatusCode ? `HTTP ${a.responseStatusCode}` : 'No response'),
    h('span.muted.dur', `${a.responseDurationMs} ms`),
    h('span.muted', a.triggerType === 1 ? 'Manual' : 'Scheduled'),
    h('span.muted.time', when(a.timestamp)));
  return h('details.attempt', { dataset: { status: ok ? 'ok' : 'failed' } }, summary,
    h('div.attempt-body',
      h('p.muted.mono.small', a.url),
      a.error ? h('p.notice.error', icon('alert'), h('span', a.error)) : null,
      h('h4', 'Response body'),
      a.response ? code(a.response, 'Response body') : h('p.muted', 'Empty response body.')));
}

export { localInput };
