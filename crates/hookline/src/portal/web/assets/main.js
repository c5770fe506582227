// Boot: take the token from the URL fragment into memory, apply the theme
// from svix-react's query parameters, learn what the token may do, then
// route (hash routes) to the customer portal or the operator console.

import { get, setToken, whenUnauthorized, enc } from './api.js';
import { h, icon } from './dom.js';

const root = document.getElementById('app');

// ---- token: fragment → memory, never storage ------------------------------
function takeToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  const t = params.get('token');
  if (!t) return null;
  // Out of the address bar (and history) at once; only page memory keeps it.
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  return t;
}

// ---- theme: darkMode, primaryColor, fontFamily, icon (svix-react) --------
const query = new URLSearchParams(location.search);

function applyTheme() {
  const html = document.documentElement;
  const dark = query.get('darkMode');
  const media = matchMedia('(prefers-color-scheme: dark)');
  const setDark = () => html.classList.toggle('dark', dark === 'true' || (dark === 'auto' && media.matches));
  setDark();
  if (dark === 'auto') media.addEventListener('change', setDark);
  const primary = (query.get('primaryColor') || '').trim();
  const color = /^[0-9a-f]{3,8}$/i.test(primary) ? `#${primary}` : primary;
  if (color && CSS.supports('color', color)) {
    html.style.setProperty('--primary', color);
    html.style.setProperty('--on-primary', readableOn(color));
  }
  const font = (query.get('fontFamily') || '').trim();
  if (font && /^[\w\s,'"-]{1,80}$/.test(font)) {
    const family = font.split(',').map((f) => f.trim().replace(/^['"]|['"]$/g, '')).filter(Boolean).map((f) => `"${f}"`).join(', ');
    html.style.setProperty('--font', `${family}, var(--font-system)`);
  }
}

/** Black or white, whichever reads better on `color`. */
function readableOn(color) {
  const probe = h('span');
  probe.style.color = color;
  document.body.append(probe);
  const rgb = getComputedStyle(probe).color.match(/[\d.]+/g).map(Number);
  probe.remove();
  const lin = rgb.slice(0, 3).map((c) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  const lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
  return lum > 0.4 ? '#0b0d12' : '#ffffff';
}

function brandIcon() {
  const src = query.get('icon');
  if (src) {
    try {
      const u = new URL(src, location.href);
      if (u.protocol === 'https:' || u.origin === location.origin) {
        return h('img.brand-icon', { src: u.href, alt: '', width: 28, height: 28, referrerpolicy: 'no-referrer' });
      }
    } catch {
      // Not a URL: fall back to the default mark.
    }
  }
  return h('span.brand-mark', icon('hook'));
}

// ---- fullSize: tell svix-react's <AppPortal> our height -----------------
function reportHeight() {
  if (window.parent === window) return;
  let last = 0;
  const send = () => {
    const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    if (height === last) return;
    last = height;
    window.parent.postMessage({ type: 'svix.iframe-resizer-height', payload: { height } }, '*');
  };
  new ResizeObserver(send).observe(document.documentElement);
  new ResizeObserver(send).observe(document.body);
  send();
}

// ---- what the token may do: the one place the UI asks ---------------------
/**
 * What the token may do, from its Svix capabilities (`info.capabilities`);
 * the rest of the portal asks only these flags.
 */
export function abilities(info) {
  const admin = info.scope === 'admin';
  const caps = Array.isArray(info.capabilities) ? info.capabilities : [];
  const has = (...any) => admin || any.some((c) => caps.includes(c));
  return {
    admin,
    write: has('ManageEndpoint'),
    seeSecrets: has('ViewEndpointSecret', 'ManageEndpointSecret', 'ManageEndpoint'),
    rotateSecret: has('ManageEndpointSecret', 'ManageEndpoint'),
    attempts: has('CreateAttempts', 'ManageEndpoint'),
  };
}

// ---- routing ----------------------------------------------------------------
export const ctx = { app: null, can: null, info: null, consoleApps: null };

function routeParts() {
  return location.hash.replace(/^#\/?/, '').split('?')[0].split('/').filter(Boolean).map(decodeURIComponent);
}

export function go(path) {
  location.hash = `#/${path}`;
}

let renderToken = 0;
/** Whether a view started by `render` is still the one on screen. */
export function current(tokenAtStart) {
  return tokenAtStart === renderToken;
}

const CUSTOMER_NAV = [
  ['endpoints', 'Endpoints'],
  ['catalog', 'Event catalog'],
  ['messages', 'Messages'],
];
const CONSOLE_NAV = [
  ['console', 'Overview'],
  ['console/apps', 'Applications'],
  ['console/event-types', 'Event catalog'],
];

function shell(nav, active, title, subtitle) {
  const links = nav.map(([path, label]) =>
    h('a.nav-link', { href: `#/${path}`, 'aria-current': path === active ? 'page' : null }, label));
  const main = h('main.content', { id: 'main', tabindex: '-1' });
  root.replaceChildren(
    h('a.skip', { href: '#main', onclick: (e) => { e.preventDefault(); main.focus(); } }, 'Skip to content'),
    h('header.topbar',
      h('div.brand', brandIcon(), h('div.brand-text', h('span.brand-title', title), subtitle ? h('span.brand-sub', subtitle) : null)),
      h('nav.nav', { 'aria-label': 'Portal' }, links)),
    main,
  );
  root.removeAttribute('aria-busy');
  return main;
}

async function render() {
  const my = ++renderToken;
  const parts = routeParts();
  const { can } = ctx;
  let section = parts[0] || (can.admin && !ctx.app ? 'console' : 'endpoints');
  if (can.admin && !ctx.app) {
    if (section !== 'console') section = 'console';
    const sub = parts[0] === 'console' ? parts[1] || '' : '';
    const active = sub ? `console/${sub}` : 'console';
    const main = shell(CONSOLE_NAV, active, 'Operator console', 'Hookline');
    const view = await import('./console.js');
    if (!current(my)) return;
    await view.render(main, { sub, rest: parts.slice(2), my });
    return;
  }
  const app = ctx.app;
  const main = shell(CUSTOMER_NAV, section === 'endpoints' && parts[1] ? 'endpoints' : section, app.name || 'Webhooks', ctx.can.write ? 'Webhooks' : 'Webhooks · read-only');
  const env = { app, appPath: `/app/${enc(app.id)}`, can, my, rest: parts.slice(1) };
  if (section === 'catalog') {
    (await import('./catalog.js')).renderCatalog(main, env);
  } else if (section === 'messages') {
    (await import('./messages.js')).render(main, env);
  } else if (parts[1]) {
    (await import('./endpoint.js')).render(main, { ...env, endpointId: parts[1], tab: parts[2] || 'overview' });
  } else {
    (await import('./endpoints.js')).render(main, env);
  }
}

function fatal(title, text) {
  root.removeAttribute('aria-busy');
  root.replaceChildren(h('div.fatal', h('div.fatal-card', icon('alert', 'fatal-icon'), h('h1', title), h('p', text))));
}

async function boot() {
  applyTheme();
  reportHeight();
  const t = takeToken();
  if (!t) {
    fatal('This link has no access token', 'Open the portal through the link your provider gave you. For security the token only lives in this page: reloading it needs a new link.');
    return;
  }
  await start(t);
  window.addEventListener('hashchange', () => {
    // A new link opened in the same page (only the fragment changed).
    const fresh = takeToken();
    (fresh ? start(fresh) : render()).catch(showError);
  });
}

async function start(t) {
  setToken(t);
  ctx.app = null;
  whenUnauthorized(() => fatal('Your access link has expired', 'Ask for a new link to manage your webhooks.'));
  let info;
  try {
    info = await get('/auth/token');
  } catch (e) {
    if (e.status !== 401) fatal('The portal cannot start', e.message);
    return;
  }
  ctx.info = info;
  ctx.can = abilities(info);
  if (info.scope === 'app') {
    try {
      ctx.app = await get(`/app/${enc(info.appId)}`);
    } catch (e) {
      if (e.status !== 401) fatal('This application is not available', e.message);
      return;
    }
  }
  document.title = ctx.app ? `Webhooks · ${ctx.app.name}` : 'Hookline operator console';
  await render().catch(showError);
}

function showError(e) {
  const main = document.getElementById('main');
  if (main) main.replaceChildren(h('div.notice.error', { role: 'alert' }, icon('alert'), h('span', e.message || String(e))));
}

boot();
