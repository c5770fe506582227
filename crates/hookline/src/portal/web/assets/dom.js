// Small DOM helpers: element builder, icons, dialogs, toasts, formatting.
// Nothing here sets inline style attributes or innerHTML (the CSP forbids
// inline styles, and text from the API is never parsed as HTML).

/** h('button.btn.primary', {onclick, type: 'button'}, 'Save') */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className += (el.className ? ' ' : '') + v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value' || k === 'checked' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
const ICONS = {
  plus: 'M12 5v14M5 12h14',
  back: 'M15 18l-6-6 6-6',
  copy: 'M9 9h10v10H9zM5 15V5h10',
  eye: 'M2 12s3.5-7 10-7 10 7 10 7-3.5 7-10 7S2 12 2 12zM12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6z',
  refresh: 'M20 11a8 8 0 0 0-14.9-3M4 4v4h4M4 13a8 8 0 0 0 14.9 3M20 20v-4h-4',
  send: 'M22 2 11 13M22 2l-7 20-4-9-9-4z',
  trash: 'M3 6h18M8 6V4h8v2M6 6l1 14h10l1-14',
  pause: 'M9 5v14M15 5v14',
  play: 'M7 4l13 8-13 8z',
  edit: 'M4 20h4L19 9l-4-4L4 16zM13 7l4 4',
  chart: 'M4 20V10M10 20V4M16 20v-7M22 20H2',
  search: 'M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14zM21 21l-5-5',
  external: 'M14 4h6v6M20 4l-9 9M18 14v6H4V6h6',
  hook: 'M9 20a5 5 0 1 1 7-4.6M16 15.4 20 9m-4 6.4h7a5 5 0 1 1-1.5 3.6',
  alert: 'M12 9v4M12 17h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z',
  check: 'M20 6 9 17l-5-5',
  x: 'M18 6 6 18M6 6l12 12',
  clock: 'M12 7v5l3 2M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z',
  archive: 'M3 4h18v4H3zM5 8v12h14V8M10 12h4',
};

export function icon(name, cls = '') {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon ${cls}`.trim());
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', ICONS[name] || ICONS.hook);
  svg.append(path);
  return svg;
}

/** A button whose click handler may be async: busy state, errors to a toast. */
export function button(label, onClick, { kind = 'secondary', iconName, type = 'button', title, small } = {}) {
  const b = h(`button.btn.${kind}${small ? '.small' : ''}`, { type, title }, iconName ? icon(iconName) : null, h('span', label));
  if (onClick) {
    b.addEventListener('click', async (ev) => {
      if (b.disabled) return;
      b.disabled = true;
      b.setAttribute('aria-busy', 'true');
      try {
        await onClick(ev);
      } catch (e) {
        toast(errorText(e), 'error');
      } finally {
        b.disabled = false;
        b.removeAttribute('aria-busy');
      }
    });
  }
  return b;
}

export function errorText(e) {
  if (e && e.message) return e.message;
  return String(e);
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const t = h(`div.toast.${kind}`, icon(kind === 'error' ? 'alert' : 'check'), h('span', message));
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
}

/** A modal dialog; resolves with what `build` calls `close(value)` with (undefined on Esc). */
export function dialog(title, build, { wide } = {}) {
  return new Promise((resolve) => {
    const d = h(`dialog.dialog${wide ? '.wide' : ''}`, { 'aria-labelledby': 'dialog-title' });
    let result;
    const close = (value) => {
      result = value;
      d.close();
    };
    d.addEventListener('close', () => {
      d.remove();
      resolve(result);
    });
    d.append(h('div.dialog-head', h('h2', { id: 'dialog-title' }, title),
      h('button.icon-btn', { type: 'button', 'aria-label': 'Close', onclick: () => close(undefined) }, icon('x'))));
    d.append(h('div.dialog-body', build(close)));
    document.body.append(d);
    d.showModal();
  });
}

/** Asks for confirmation; `confirmLabel` names the destructive action. */
export function confirmDialog(title, text, confirmLabel, kind = 'danger') {
  return dialog(title, (close) => [
    h('p', text),
    h('div.actions',
      button('Cancel', () => close(false), { kind: 'ghost' }),
      button(confirmLabel, () => close(true), { kind })),
  ]);
}

export function badge(text, kind = 'neutral') {
  return h(`span.badge.${kind}`, text);
}

export function field(label, input, { hint, name } = {}) {
  const id = input.id || `f-${name || label.replace(/\W+/g, '-').toLowerCase()}-${Math.random().toString(36).slice(2, 7)}`;
  input.id = id;
  if (name) input.name = name;
  const err = h('p.field-error', { id: `${id}-err`, hidden: true });
  const hintEl = hint ? h('p.hint', { id: `${id}-hint` }, hint) : null;
  input.setAttribute('aria-describedby', [hintEl && hintEl.id, err.id].filter(Boolean).join(' '));
  return h('div.field', { dataset: { field: name || '' } }, h('label', { for: id }, label), input, hintEl, err);
}

/** Shows an ApiError's field messages under the matching fields; the rest in `banner`. */
export function showFormErrors(form, banner, e) {
  for (const el of form.querySelectorAll('.field-error')) {
    el.hidden = true;
    el.textContent = '';
  }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const unplaced = [];
  for (const f of (e && e.fields) || []) {
    const wrap = f.field && form.querySelector(`[data-field="${CSS.escape(f.field)}"]`);
    if (wrap) {
      const err = wrap.querySelector('.field-error');
      err.hidden = false;
      err.textContent = f.message;
      const input = wrap.querySelector('input, textarea, select');
      if (input) input.setAttribute('aria-invalid', 'true');
    } else {
      unplaced.push(f.text);
    }
  }
  banner.hidden = false;
  banner.replaceChildren(icon('alert'), h('div', h('strong', errorText(e)), unplaced.length ? h('ul', unplaced.map((t) => h('li', t))) : null));
  banner.focus();
}

export function clearFormErrors(form, banner) {
  banner.hidden = true;
  for (const el of form.querySelectorAll('.field-error')) el.hidden = true;
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
export function ago(iso) {
  if (!iso) return '—';
  const s = (new Date(iso).getTime() - Date.now()) / 1000;
  const abs = Math.abs(s);
  if (abs < 45) return rtf.format(Math.round(s), 'second');
  if (abs < 2700) return rtf.format(Math.round(s / 60), 'minute');
  if (abs < 79200) return rtf.format(Math.round(s / 3600), 'hour');
  return rtf.format(Math.round(s / 86400), 'day');
}

const dtf = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
export function when(iso) {
  return iso ? h('time', { datetime: iso, title: dtf.format(new Date(iso)) }, ago(iso)) : '—';
}

export function fullDate(iso) {
  return iso ? dtf.format(new Date(iso)) : '—';
}

export function pct(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  const v = x * 100;
  return `${v >= 99.95 || v === 0 ? v.toFixed(0) : v.toFixed(1)}%`;
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

export function code(text, label) {
  return h('pre.code', { tabindex: '0', 'aria-label': label }, h('code', text));
}

export function empty(title, text, action) {
  return h('div.empty', icon('hook', 'empty-icon'), h('h3', title), text ? h('p', text) : null, action || null);
}

export function skeleton(lines = 3) {
  return h('div.skeleton', { 'aria-label': 'Loading', role: 'progressbar' }, Array.from({ length: lines }, () => h('div.skeleton-line')));
}

/** A local datetime for <input type=datetime-local> from a Date. */
export function localInput(date) {
  const p = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T${p(date.getHours())}:${p(date.getMinutes())}`;
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard access can be denied inside an iframe without clipboard-write.
    return false;
  }
}

/** Polls `check` every `interval` ms until it returns truthy or `timeout` passes. */
export async function until(check, { interval = 1000, timeout = 30000, alive = () => true } = {}) {
  const end = Date.now() + timeout;
  while (Date.now() < end && alive()) {
    const v = await check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, interval));
  }
  return null;
}
