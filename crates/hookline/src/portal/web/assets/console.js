// The operator console (admin token): delivery health across every
// application, the applications with their endpoints, and the event type
// catalog with editing and archiving.

import { get, post, patch, del, getAll, enc } from './api.js';
import { h, icon, button, badge, field, empty, skeleton, when, pct, toast, dialog, confirmDialog, showFormErrors, clearFormErrors, json } from './dom.js';
import { current } from './main.js';
import { eventTypeCard } from './catalog.js';
import { health, series24h, sparkline } from './endpoints.js';

export async function render(main, env) {
  if (env.sub === 'apps') return renderApps(main, env);
  if (env.sub === 'event-types') return renderEventTypes(main, env);
  return renderOverview(main, env);
}

function tile(label, value, kind = '') {
  return h(`div.stat${kind ? `.${kind}` : ''}`, h('span.stat-label', label), h('span.stat-value', value));
}

async function openPortal(appId) {
  const access = await post(`/auth/app-portal-access/${enc(appId)}`, { expiry: 3600 });
  // With 'noopener' the browser returns null whether or not the tab opened
  // (HTML spec), so there is no failure to report here.
  window.open(access.url, '_blank', 'noopener');
}

function healthTable(items, empt, extra) {
  if (!items.length) return h('p.muted.pad', empt);
  return h('div.rows', items.map((e) => h('div.row.health-row',
    h('div.row-main', h('span.url', e.url), h('span.row-sub', e.appName, ' · ', h('code.mono', e.appId))),
    h('div.row-side', extra(e), button('Open portal', () => openPortal(e.appId), { kind: 'ghost', iconName: 'external', small: true })))));
}

async function renderOverview(main, env) {
  main.replaceChildren(h('div.page-head', h('div', h('h1', 'Delivery health'), h('p.lead', 'Across every application.'))), skeleton(6));
  const o = await get('/hookline/overview');
  if (!current(env.my)) return;
  const attempts = o.recentSuccess + o.recentFailure;
  main.replaceChildren(
    h('div.page-head', h('div', h('h1', 'Delivery health'), h('p.lead', 'Across every application.')),
      button('Refresh', () => renderOverview(main, env), { iconName: 'refresh' })),
    h('div.stats',
      tile('Applications', String(o.applications)),
      tile('Endpoints', String(o.endpoints)),
      tile('Backlog', String(o.backlog), o.backlog > 1000 ? 'warn' : ''),
      tile('Due now', String(o.dueNow), o.dueNow > 100 ? 'warn' : ''),
      tile('Oldest due', o.oldestDue ? when(o.oldestDue) : '—'),
      tile('Success, 24 h', attempts ? pct(o.recentSuccess / attempts) : '—', attempts && o.recentSuccess / attempts < 0.95 ? 'bad' : '')),
    h('section.card.flush', { 'aria-labelledby': 'failing-h' },
      h('div.card-head', h('h2', { id: 'failing-h' }, 'Failing endpoints'), badge(String(o.failingCount), o.failingCount ? 'danger' : 'neutral')),
      healthTable(o.failingEndpoints, 'No endpoint is failing.', (e) => h('span.muted.small', 'failing since ', when(e.failingSince)))),
    h('section.card.flush', { 'aria-labelledby': 'disabled-h' },
      h('div.card-head', h('h2', { id: 'disabled-h' }, 'Recently disabled endpoints'), badge(String(o.disabledCount), 'neutral')),
      healthTable(o.recentlyDisabledEndpoints, 'No endpoint was disabled in the last 7 days.', (e) => h('span.muted.small', 'disabled ', when(e.updatedAt)))));
}

async function renderApps(main, env) {
  const search = h('input.search', { type: 'search', placeholder: 'Search by name, uid or id', 'aria-label': 'Search applications' });
  const list = h('div.rows', skeleton(5));
  const more = h('div.more');
  main.replaceChildren(
    h('div.page-head', h('div', h('h1', 'Applications'), h('p.lead', 'One per customer. Open an application’s portal to see what its customer sees.')), search),
    h('section.card.flush', list, more));
  const overview = await get('/hookline/overview').catch(() => null);
  const failingByApp = new Map();
  for (const e of (overview && overview.failingEndpoints) || []) failingByApp.set(e.appId, (failingByApp.get(e.appId) || 0) + 1);
  let apps = [];
  let iterator;
  let loaded = false;
  const row = (app) => {
    const eps = h('div.app-endpoints', { hidden: true });
    const failing = failingByApp.get(app.id);
    const toggle = h('button.btn.ghost.small', { type: 'button', 'aria-expanded': 'false' }, icon('chart'), h('span', 'Endpoints'));
    toggle.addEventListener('click', async () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      eps.hidden = !open;
      if (open && !eps.dataset.loaded) {
        eps.dataset.loaded = '1';
        eps.replaceChildren(skeleton(2));
        const list = await getAll(`/app/${enc(app.id)}/endpoint`, {}, 200);
        eps.replaceChildren(...(list.length ? list.map((ep) => {
          const st = h('span', badge('…'));
          const sp = h('span.spark-wrap');
          series24h(`/app/${enc(app.id)}`, ep.id).then((s) => {
            const hl = health(ep, s);
            st.replaceChildren(badge(hl.label, hl.kind), ' ', h('span.muted.small', hl.rate === null || hl.rate === undefined ? '' : pct(hl.rate)));
            sp.replaceChildren(sparkline(s));
          });
          return h('div.sub-row', h('span.url', ep.url), h('span.row-side', sp, st));
        }) : [h('p.muted', 'No endpoints.')]));
      }
    });
    return h('div.app-item', { dataset: { search: `${app.name} ${app.uid || ''} ${app.id}`.toLowerCase() } },
      h('div.row',
        h('div.row-main', h('span.app-name', app.name), h('span.row-sub.mono', app.uid ? `${app.uid} · ${app.id}` : app.id)),
        h('div.row-side', failing ? badge(`${failing} failing`, 'danger') : null, h('span.muted.small', when(app.createdAt)), toggle,
          button('Open portal', () => openPortal(app.id), { kind: 'secondary', iconName: 'external', small: true }))),
      eps);
  };
  const filter = async () => {
    // Until the first page is in, there is nothing to filter (and asking the
    // API for each keystroke would only find what that page will show).
    if (!loaded) return;
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const item of list.querySelectorAll('.app-item')) {
      item.hidden = q && !item.dataset.search.includes(q);
      if (!item.hidden) shown++;
    }
    list.querySelector('.no-match')?.remove();
    if (q && !shown) {
      // Not among the loaded pages: ask for it by id or uid.
      const exact = await get(`/app/${enc(search.value.trim())}`).catch(() => null);
      if (exact && !apps.some((a) => a.id === exact.id)) {
        apps.push(exact);
        list.append(row(exact));
      } else if (!exact) {
        list.append(h('p.muted.pad.no-match', 'No application matches.'));
      }
    }
  };
  const load = async () => {
    const page = await get('/app', { limit: 100, iterator });
    if (!current(env.my)) return;
    if (!iterator) list.replaceChildren();
    apps = apps.concat(page.data);
    list.append(...page.data.map(row));
    if (!apps.length) list.replaceChildren(empty('No applications yet', 'Applications are created through the API, one per customer.'));
    iterator = page.done ? null : page.iterator;
    more.replaceChildren(iterator ? button('Load more', async () => { await load(); filter(); }, { kind: 'ghost' }) : '');
  };
  search.addEventListener('input', () => filter());
  await load();
  loaded = true;
  // Whatever was typed while the list loaded applies to it too.
  if (search.value.trim()) await filter();
}

function eventTypeForm(et, close) {
  const name = h('input.mono', { type: 'text', value: et ? et.name : '', readonly: !!et, placeholder: 'invoice.paid', required: true });
  const description = h('textarea', { rows: '2' });
  description.value = et ? et.description : '';
  const schema = h('textarea.mono', { rows: '12', spellcheck: 'false', placeholder: '{"1": {"type": "object", "properties": {…}, "examples": [{…}]}}' });
  schema.value = et && et.schemas ? json(et.schemas) : '';
  const banner = h('div.notice.error', { role: 'alert', tabindex: '-1', hidden: true });
  const form = h('form.form', { novalidate: true },
    banner,
    field('Name', name, { name: 'name', hint: et ? 'Names cannot change.' : 'Letters, digits, dots, dashes and underscores.' }),
    field('Description', description, { name: 'description' }),
    field('Schema', schema, { name: 'schemas', hint: 'JSON Schemas by version, e.g. {"1": {…}}; put example payloads in "examples". Optional.' }),
    h('div.actions', button('Cancel', () => close(false), { kind: 'ghost' }), h('button.btn.primary', { type: 'submit' }, h('span', et ? 'Save' : 'Create'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFormErrors(form, banner);
    let schemas = null;
    if (schema.value.trim()) {
      try {
        schemas = JSON.parse(schema.value);
      } catch (err) {
        showFormErrors(form, banner, { message: 'The schema is not valid JSON', fields: [{ field: 'schemas', message: err.message, text: 'Schema: not valid JSON' }] });
        return;
      }
    }
    try {
      if (et) await patch(`/event-type/${enc(et.name)}`, { description: description.value, schemas });
      else await post('/event-type', { name: name.value.trim(), description: description.value, schemas });
      toast(et ? 'Event type saved' : 'Event type created');
      close(true);
    } catch (err) {
      showFormErrors(form, banner, err);
    }
  });
  return form;
}

async function renderEventTypes(main, env) {
  const showArchived = h('input', { type: 'checkbox' });
  const list = h('div.stack', skeleton(4));
  const reload = () => renderEventTypes(main, env);
  main.replaceChildren(
    h('div.page-head', h('div', h('h1', 'Event catalog'), h('p.lead', 'What your customers can subscribe to. Archived types are hidden from them.')),
      h('div.head-actions', h('label.check', showArchived, ' Show archived'),
        button('New event type', async () => { if (await dialog('New event type', (close) => eventTypeForm(null, close), { wide: true })) reload(); }, { kind: 'primary', iconName: 'plus' }))),
    list);
  const draw = async () => {
    const types = await getAll('/event-type', { include_archived: showArchived.checked }, 2000);
    if (!current(env.my)) return;
    if (!types.length) {
      list.replaceChildren(empty('No event types', 'Create one, or import a catalog with `hookline event-types import`.'));
      return;
    }
    list.replaceChildren(...types.map((et) => eventTypeCard(et, h('div.et-actions',
      button('Edit', async () => { if (await dialog(`Edit ${et.name}`, (close) => eventTypeForm(et, close), { wide: true })) reload(); }, { kind: 'ghost', iconName: 'edit', small: true }),
      et.archived
        ? button('Unarchive', async () => { await patch(`/event-type/${enc(et.name)}`, { archived: false }); toast('Event type restored'); draw(); }, { kind: 'ghost', small: true })
        : button('Archive', async () => {
          if (!(await confirmDialog(`Archive ${et.name}?`, 'Customers no longer see it in the catalog or the endpoint form. Messages of this type are still delivered to endpoints that subscribe to it.', 'Archive'))) return;
          await del(`/event-type/${enc(et.name)}`);
          toast('Event type archived');
          draw();
        }, { kind: 'ghost', iconName: 'archive', small: true })))));
  };
  showArchived.addEventListener('change', draw);
  await draw();
}
