// One endpoint: overview (health, secret, test event, recent attempts,
// recover), charts, custom headers, and the edit form.

import { get, post, patch, del, getAll, enc } from './api.js';
import { h, icon, button, badge, field, empty, skeleton, pct, when, fullDate, toast, confirmDialog, copyText, localInput, until, showFormErrors, clearFormErrors } from './dom.js';
import { go, current } from './main.js';
import { endpointForm, health, series24h, typeChips } from './endpoints.js';

export async function render(main, env) {
  const { appPath, endpointId, tab, my } = env;
  if (endpointId === 'new') {
    if (!env.can.write) return go('endpoints');
    return endpointForm(main, env);
  }
  main.replaceChildren(skeleton(6));
  const epPath = `${appPath}/endpoint/${enc(endpointId)}`;
  let ep;
  try {
    ep = await get(epPath);
  } catch (e) {
    if (!current(my)) return;
    main.replaceChildren(empty('Endpoint not found', e.message, h('a.btn.secondary', { href: '#/endpoints' }, 'Back to endpoints')));
    return;
  }
  if (!current(my)) return;
  if (tab === 'edit') {
    if (!env.can.write) return go(`endpoints/${enc(ep.id)}`);
    return endpointForm(main, env, ep);
  }
  const ctx = { ...env, ep, epPath };
  const series = await series24h(appPath, ep.id);
  if (!current(my)) return;
  const hl = health(ep, series);
  const tabs = [['overview', 'Overview'], ['charts', 'Charts'], ['headers', 'Headers']];
  const body = h('div.tab-body');
  main.replaceChildren(
    h('div.page-head',
      h('div.head-text',
        h('a.back', { href: '#/endpoints' }, icon('back'), 'Endpoints'),
        h('h1.url-title', ep.url),
        h('p.lead', badge(hl.label, hl.kind), ' ', ep.description || h('span.muted', 'No description'))),
      env.can.write ? h('div.head-actions',
        h('a.btn.secondary', { href: `#/endpoints/${enc(ep.id)}/edit` }, icon('edit'), h('span', 'Edit')),
        button(ep.disabled ? 'Enable' : 'Disable', async () => {
          await patch(epPath, { disabled: !ep.disabled });
          toast(ep.disabled ? 'Endpoint enabled' : 'Endpoint disabled');
          go(`endpoints/${enc(ep.id)}/${tab}`);
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        }, { iconName: ep.disabled ? 'play' : 'pause' }),
        button('Delete', async () => {
          const ok = await confirmDialog('Delete this endpoint?', `${ep.url} will stop receiving webhooks, and its delivery history is removed. This cannot be undone.`, 'Delete');
          if (!ok) return;
          await del(epPath);
          toast('Endpoint deleted');
          go('endpoints');
        }, { kind: 'danger-ghost', iconName: 'trash' })) : null),
    h('nav.tabs', { 'aria-label': 'Endpoint' }, tabs.map(([k, label]) =>
      h('a.tab', { href: `#/endpoints/${enc(ep.id)}${k === 'overview' ? '' : `/${k}`}`, 'aria-current': k === tab ? 'page' : null }, label))),
    body);
  if (tab === 'charts') {
    (await import('./charts.js')).render(body, ctx);
  } else if (tab === 'headers') {
    renderHeaders(body, ctx);
  } else {
    renderOverview(body, ctx, hl, series);
  }
}

function stat(label, value, sub) {
  return h('div.stat', h('span.stat-label', label), h('span.stat-value', value), sub ? h('span.stat-sub', sub) : null);
}

function renderOverview(body, ctx, hl, series) {
  const { ep, can } = ctx;
  const lat = (series && series.data) || [];
  const p50s = lat.map((b) => b.p50Ms).filter((x) => x !== null);
  const median = p50s.length ? p50s.sort((a, b) => a - b)[Math.floor(p50s.length / 2)] : null;
  body.replaceChildren(
    h('div.stats',
      stat('Success rate', pct(hl.rate), 'last 24 hours'),
      stat('Delivered', String(hl.ok || 0), 'attempts, 24 hours'),
      stat('Failed', String(hl.bad || 0), 'attempts, 24 hours'),
      stat('Typical latency', median === null ? '—' : `${median} ms`, 'median of hourly p50')),
    h('div.columns',
      h('div.col-main',
        attemptsCard(ctx),
        can.attempts ? recoverCard(ctx) : null),
      h('div.col-side',
        detailsCard(ep),
        secretCard(ctx),
        can.attempts ? testCard(ctx) : null)));
}

function detailsCard(ep) {
  const row = (k, v) => [h('dt', k), h('dd', v)];
  return h('section.card', { 'aria-labelledby': 'details-h' },
    h('h2', { id: 'details-h' }, 'Details'),
    h('dl.details',
      row('Event types', typeChips(ep.filterTypes, 20)),
      row('Channels', ep.channels && ep.channels.length ? h('span.chips', ep.channels.map((c) => h('span.chip', c))) : h('span.muted', 'Any')),
      row('Rate limit', ep.rateLimit ? `${ep.rateLimit} / second` : h('span.muted', 'Default')),
      row('Endpoint ID', h('code.mono', ep.id)),
      row('Created', fullDate(ep.createdAt))));
}

function secretCard(ctx) {
  const { ep, epPath, can } = ctx;
  const card = h('section.card', { 'aria-labelledby': 'secret-h' }, h('h2', { id: 'secret-h' }, 'Signing secret'));
  if (!can.seeSecrets) {
    card.append(h('p.muted', 'The signing secret is not available with this access link.'));
    return card;
  }
  let secret = null;
  let shown = false;
  const value = h('code.secret', { 'aria-label': 'Signing secret value' }, 'whsec_••••••••••••••••••••••••');
  const load = async () => {
    if (!secret) secret = (await get(`${epPath}/secret`)).key;
    return secret;
  };
  const reveal = button('Reveal', async () => {
    shown = !shown;
    value.textContent = shown ? await load() : 'whsec_••••••••••••••••••••••••';
    reveal.querySelector('span').textContent = shown ? 'Hide' : 'Reveal';
  }, { iconName: 'eye', small: true });
  const copy = button('Copy', async () => {
    const ok = await copyText(await load());
    toast(ok ? 'Secret copied' : 'Copy is blocked here; reveal the secret and copy it by hand', ok ? 'info' : 'error');
  }, { iconName: 'copy', small: true });
  card.append(
    h('p.hint', 'Verify each webhook’s signature with this secret (Standard Webhooks / Svix libraries work).'),
    h('div.secret-row', value),
    h('div.actions.left', reveal, copy,
      can.rotateSecret ? button('Rotate secret', async () => {
        const ok = await confirmDialog('Rotate the signing secret?', 'A new secret signs webhooks from now on. The current one keeps signing alongside it for 24 hours, so you can update your receiver without missing a delivery.', 'Rotate secret', 'primary');
        if (!ok) return;
        await post(`${epPath}/secret/rotate`, {});
        secret = null;
        if (shown) value.textContent = await load();
        toast('Secret rotated');
      }, { iconName: 'refresh', small: true }) : null));
  return card;
}

function attemptRow(a, appPath) {
  const ok = a.status === 0;
  const code = a.responseStatusCode ? String(a.responseStatusCode) : (a.error || 'No response');
  return h('a.row.attempt-row', { href: `#/messages/${enc(a.msgId)}` },
    h('span', badge(ok ? 'Succeeded' : 'Failed', ok ? 'success' : 'danger')),
    h('span.mono.code-col', code),
    h('span.muted.dur', `${a.responseDurationMs} ms`),
    h('span.mono.msg-col', a.msgId),
    h('span.muted.time', when(a.timestamp)));
}

function attemptsCard(ctx) {
  const { epPath, appPath, my } = ctx;
  const list = h('div.rows', skeleton(3));
  const load = async () => {
    const page = await get(`${appPath}/attempt/endpoint/${enc(ctx.ep.id)}`, { limit: 20, with_content: false });
    if (!current(my)) return;
    list.replaceChildren(...(page.data.length ? page.data.map((a) => attemptRow(a, appPath))
      : [h('p.muted.pad', 'No delivery attempts yet. Send a test event to see one here.')]));
  };
  load();
  ctx.reloadAttempts = load;
  return h('section.card.flush', { 'aria-labelledby': 'attempts-h' },
    h('div.card-head', h('h2', { id: 'attempts-h' }, 'Recent attempts'), button('Refresh', load, { kind: 'ghost', iconName: 'refresh', small: true })),
    list);
}

function testCard(ctx) {
  const { ep, epPath, appPath, my } = ctx;
  const select = h('select', h('option', { value: '' }, 'Loading event types…'));
  const results = h('div.test-results', { 'aria-live': 'polite' });
  getAll('/event-type', {}, 500).then((types) => {
    const usable = types.filter((t) => !t.archived && (!ep.filterTypes || ep.filterTypes.includes(t.name)));
    select.replaceChildren(...(usable.length ? usable.map((t) => h('option', { value: t.name }, t.name)) : [h('option', { value: '' }, 'No event types in the catalog')]));
  });
  const send = button('Send test event', async () => {
    if (!select.value) return toast('Choose an event type first', 'error');
    const msg = await post(`${epPath}/send-example`, { eventType: select.value });
    const line = h('div.test-line', badge('Sending…', 'neutral'), h('a.mono', { href: `#/messages/${enc(msg.id)}` }, msg.eventType), h('span.muted', 'waiting for the attempt'));
    results.prepend(line);
    const attempt = await until(async () => {
      const page = await get(`${appPath}/attempt/msg/${enc(msg.id)}`, { endpoint_id: ep.id, with_content: false });
      return page.data[0];
    }, { interval: 700, timeout: 60000, alive: () => current(my) });
    if (!current(my)) return;
    if (!attempt) {
      line.replaceChildren(badge('Pending', 'warning'), h('a.mono', { href: `#/messages/${enc(msg.id)}` }, msg.eventType), h('span.muted', 'no attempt yet; see the message log'));
      return;
    }
    const ok = attempt.status === 0;
    line.replaceChildren(badge(ok ? 'Succeeded' : 'Failed', ok ? 'success' : 'danger'),
      h('a.mono', { href: `#/messages/${enc(msg.id)}` }, msg.eventType),
      h('span.muted', `${attempt.responseStatusCode || attempt.error || 'no response'} · ${attempt.responseDurationMs} ms`));
    if (ctx.reloadAttempts) ctx.reloadAttempts();
  }, { kind: 'primary', iconName: 'send' });
  return h('section.card', { 'aria-labelledby': 'test-h' },
    h('h2', { id: 'test-h' }, 'Testing'),
    h('p.hint', 'Sends the event type’s example payload to this endpoint only.'),
    field('Event type', select, { name: 'testEventType' }),
    h('div.actions.left', send),
    results);
}

function recoverCard(ctx) {
  const { epPath, my } = ctx;
  const since = h('input', { type: 'datetime-local', value: localInput(new Date(Date.now() - 24 * 3600 * 1000)) });
  const banner = h('div.notice.error', { role: 'alert', tabindex: '-1', hidden: true });
  const progress = h('div.progress-box', { 'aria-live': 'polite' });
  const form = h('form.recover', { novalidate: true },
    banner,
    h('div.inline-form', field('Failed since', since, { name: 'since' }),
      h('button.btn.secondary', { type: 'submit' }, icon('refresh'), h('span', 'Recover'))),
    progress);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFormErrors(form, banner);
    const when = since.value ? new Date(since.value) : null;
    if (!when || Number.isNaN(when.getTime())) {
      showFormErrors(form, banner, { message: 'Choose a date', fields: [{ field: 'since', message: 'Choose when to recover from.', text: 'Since: choose a date' }] });
      return;
    }
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const before = await get(`${epPath}/stats`);
      const started = await post(`${epPath}/recover`, { since: when.toISOString() });
      const showTask = (t, text) => progress.replaceChildren(
        h('div.task', h('span.mono.muted', t.id), badge(t.status, t.status === 'failed' ? 'danger' : 'neutral')),
        h('span', text));
      showTask(started, 'Looking for failed messages…');
      // The task schedules the retries in steps; wait until it has seen them all.
      const task = await until(async () => {
        const t = await get(`/background-task/${started.id}`);
        return t.status !== 'running' && t;
      }, { interval: 500, timeout: 120000, alive: () => current(my) });
      if (!task) return;
      if (task.status === 'failed') {
        showTask(task, `Recovery failed: ${task.data.error ?? 'unknown error'}`);
        return;
      }
      const total = task.data.messagesScheduled ?? 0;
      const bar = h('progress', { max: String(Math.max(1, total)), value: '0' });
      const label = h('span', total ? `Recovering ${total} failed message${total === 1 ? '' : 's'}…` : 'Nothing to recover: no failed messages since then.');
      progress.replaceChildren(h('div.task', h('span.mono.muted', task.id), badge(task.status, 'neutral')), label, total ? bar : null);
      if (!total) return;
      const baseFail = before.fail;
      await until(async () => {
        const s = await get(`${epPath}/stats`);
        const left = s.pending + s.sending;
        const done = Math.max(0, Math.min(total, total - left));
        bar.value = done;
        const recovered = Math.max(0, baseFail - s.fail);
        label.textContent = `${done} of ${total} retried · ${recovered} now delivered`;
        return left === 0;
      }, { interval: 1000, timeout: 120000, alive: () => current(my) });
      if (ctx.reloadAttempts) ctx.reloadAttempts();
    } catch (err) {
      showFormErrors(form, banner, err);
    } finally {
      submit.disabled = false;
    }
  });
  return h('section.card', { 'aria-labelledby': 'recover-h' },
    h('h2', { id: 'recover-h' }, 'Recover failed messages'),
    h('p.hint', 'Retries every message that failed to reach this endpoint since the date you choose.'),
    form);
}

async function renderHeaders(body, ctx) {
  const { epPath, can, my } = ctx;
  body.replaceChildren(skeleton(3));
  const data = await get(`${epPath}/headers`);
  if (!current(my)) return;
  const entries = Object.entries(data.headers || {});
  const sensitive = data.sensitive || [];
  if (!can.write) {
    body.replaceChildren(h('section.card', h('h2', 'Custom headers'),
      entries.length || sensitive.length ? h('dl.details', entries.flatMap(([k, v]) => [h('dt.mono', k), h('dd.mono', v)]),
        sensitive.flatMap((k) => [h('dt.mono', k), h('dd.muted', 'Hidden (credential)')])) : h('p.muted', 'No custom headers.')));
    return;
  }
  const rowsBox = h('div.header-rows');
  // Credential headers (Authorization, API keys…) never come back from the
  // API: they show as hidden, and are only replaced or removed.
  const addRow = (k = '', v = '', hidden = false) => {
    const name = h('input.mono', { type: 'text', value: k, placeholder: 'X-Example-Header', 'aria-label': 'Header name', readonly: hidden });
    const value = h('input.mono', { type: 'text', value: v, placeholder: hidden ? 'Hidden; type to replace' : 'value', 'aria-label': 'Header value' });
    const row = h('div.header-row', { dataset: { hidden: hidden ? '1' : '' } }, name, value,
      h('button.icon-btn', { type: 'button', 'aria-label': `Remove header ${k}`.trim(), onclick: () => row.remove() }, icon('x')));
    rowsBox.append(row);
    return name;
  };
  entries.forEach(([k, v]) => addRow(k, v));
  sensitive.forEach((k) => addRow(k, '', true));
  if (!entries.length && !sensitive.length) addRow();
  const banner = h('div.notice.error', { role: 'alert', tabindex: '-1', hidden: true });
  const form = h('form.card.form', { novalidate: true },
    h('h2', 'Custom headers'),
    h('p.hint', 'Sent with every delivery to this endpoint, e.g. for your own authentication. Credential values stay hidden.'),
    banner,
    h('div.field', { dataset: { field: 'headers' } }, rowsBox, h('p.field-error', { hidden: true })),
    h('div.actions',
      button('Add header', () => addRow().focus(), { kind: 'ghost', iconName: 'plus' }),
      h('button.btn.primary', { type: 'submit' }, h('span', 'Save'))));
  let original = [...entries.map(([k]) => k), ...sensitive];
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFormErrors(form, banner);
    const headers = {};
    const kept = new Set();
    for (const row of rowsBox.children) {
      const [n, v] = row.querySelectorAll('input');
      const key = n.value.trim();
      if (!key) continue;
      kept.add(key);
      if (row.dataset.hidden && !v.value) continue;
      headers[key] = v.value;
    }
    const deleteHeaders = original.filter((k) => !kept.has(k));
    try {
      await patch(`${epPath}/headers`, { headers, deleteHeaders });
      original = [...kept];
      toast('Headers saved');
    } catch (err) {
      showFormErrors(form, banner, err);
    }
  });
  body.replaceChildren(form);
}
