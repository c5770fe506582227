// The event catalog: every event type with its description, its schema as a
// readable table, and an example payload.

import { getAll } from './api.js';
import { h, badge, code, json, empty, skeleton } from './dom.js';
import { current } from './main.js';

/** The newest schema version of an event type, if any. */
export function newestSchema(et) {
  const schemas = et.schemas || {};
  const versions = Object.keys(schemas).sort((a, b) => Number(a) - Number(b));
  return versions.length ? schemas[versions[versions.length - 1]] : null;
}

export function exampleOf(et) {
  const s = newestSchema(et);
  if (!s) return null;
  if (Array.isArray(s.examples) && s.examples.length) return s.examples[0];
  return s.example ?? null;
}

function typeText(s) {
  if (!s || typeof s !== 'object') return 'any';
  let t = s.type;
  if (Array.isArray(t)) t = t.join(' | ');
  if (!t && s.enum) t = 'enum';
  if (!t && (s.anyOf || s.oneOf)) t = (s.anyOf || s.oneOf).map(typeText).join(' | ');
  if (t === 'array' && s.items) t = `${typeText(s.items)}[]`;
  return t || 'any';
}

function schemaRows(schema, prefix = '', depth = 0, out = []) {
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  for (const [name, s] of Object.entries(props)) {
    const path = prefix ? `${prefix}.${name}` : name;
    const notes = [];
    if (s.enum) notes.push(h('span.enum', 'One of ', s.enum.map((v, i) => [i ? ', ' : '', h('code', JSON.stringify(v))])));
    if (s.format) notes.push(h('span.muted', ` format: ${s.format}`));
    out.push(h('tr',
      h('td', h('code.prop', { dataset: { depth: String(depth) } }, path)),
      h('td', h('span.type', typeText(s))),
      h('td', required.has(name) ? badge('required', 'info') : h('span.muted', 'optional')),
      h('td', s.description || '', notes)));
    if (depth < 3 && s.type === 'object') schemaRows(s, path, depth + 1, out);
    if (depth < 3 && s.type === 'array' && s.items && s.items.type === 'object') schemaRows(s.items, `${path}[]`, depth + 1, out);
  }
  return out;
}

export function schemaTable(schema) {
  const rows = schemaRows(schema);
  if (!rows.length) return h('p.muted', 'This event type’s schema lists no fields.');
  return h('div.table-wrap', { tabindex: '0', role: 'region', 'aria-label': 'Schema fields' },
    h('table.schema', h('thead', h('tr', h('th', 'Field'), h('th', 'Type'), h('th', 'Required'), h('th', 'Description'))), h('tbody', rows)));
}

export function eventTypeCard(et, actions) {
  const schema = newestSchema(et);
  const example = exampleOf(et);
  const details = h('details.et-details',
    h('summary', 'Schema and example'),
    schema ? schemaTable(schema) : h('p.muted', 'No schema published for this event type.'),
    example !== null ? [h('h4', 'Example payload'), code(json(example), `Example payload of ${et.name}`)] : null);
  return h('article.card.et-card', { id: `et-${et.name}` },
    h('div.et-head',
      h('h2.mono', et.name),
      h('div.et-badges', et.archived ? badge('Archived', 'neutral') : null, et.deprecated ? badge('Deprecated', 'warning') : null, et.validatePayloads ? badge('Validated', 'info') : null),
      actions || null),
    h('p', et.description || h('span.muted', 'No description.')),
    details);
}

export async function renderCatalog(main, env) {
  const list = h('div.stack', skeleton(4));
  const search = h('input.search', { type: 'search', placeholder: 'Search event types', 'aria-label': 'Search event types' });
  main.replaceChildren(
    h('div.page-head', h('div', h('h1', 'Event catalog'), h('p.lead', 'The events you can subscribe an endpoint to, with their payloads.')), search),
    list);
  const types = (await getAll('/event-type', {}, 2000)).filter((t) => !t.archived);
  if (!current(env.my)) return;
  if (!types.length) {
    list.replaceChildren(empty('No event types yet', 'The catalog is empty for now.'));
    return;
  }
  const cards = types.map((t) => [t, eventTypeCard(t)]);
  list.replaceChildren(...cards.map(([, c]) => c));
  search.addEventListener('input', () => {
    const q = search.value.trim().toLowerCase();
    for (const [t, c] of cards) c.hidden = q && !t.name.toLowerCase().includes(q) && !(t.description || '').toLowerCase().includes(q);
  });
}
