// Browser tests of the portal: Debian's headless Chromium, driven by
// playwright-core, against the real hookline binary that
// tests/portal_browser.rs started and filled with fixtures. Every page fails
// its test on any console error or uncaught exception. Prints one line per
// test and "N passed, N failed" last; exits non-zero on any failure.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/portal_browser.rs sets it)`);
  return v;
};
const SERVER = env('HOOKLINE_URL');
const ADMIN = env('ADMIN_TOKEN');
const FIX = JSON.parse(env('FIXTURES'));
const SHOTS = env('SCREENSHOT_DIR');
const ONLY = process.env.PORTAL_TEST_ONLY || '';
const TIMEOUT = 20000;
const { chromium } = await import(pathToFileURL(env('PLAYWRIGHT_CORE')).href);

fs.mkdirSync(SHOTS, { recursive: true });

// ---- small helpers --------------------------------------------------------
async function api(method, p, body, token = ADMIN) {
  const res = await fetch(`${SERVER}/api/v1${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

/** Waits until `check` returns truthy (polling a condition, not sleeping blindly). */
async function eventually(what, check, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last && last.message ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const tokenOf = (url) => new URL(url).hash.replace('#token=', '');

// ---- browser and pages ----------------------------------------------------
const userDataDir = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'hookline-chromium-'));
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: env('CHROMIUM'),
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  viewport: { width: 1280, height: 860 },
}).catch(async (e) => {
  throw new Error(`cannot start Chromium at ${process.env.CHROMIUM}: ${e.message}`);
});
browser.setDefaultTimeout(TIMEOUT);

let problems = [];
// HTTP statuses a test provokes on purpose (Chromium logs every failed
// request as a console error; only these are expected).
let expectedStatuses = new Set();
function watch(page, label) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const status = /the server responded with a status of (\d+)/.exec(m.text());
    if (status && expectedStatuses.has(Number(status[1]))) return;
    problems.push(`${label}: console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${label}: uncaught: ${e.message}`));
  return page;
}

async function newPage(label, viewport) {
  const page = watch(await browser.newPage(), label);
  if (viewport) await page.setViewportSize(viewport);
  return page;
}

async function shot(page, name) {
  await page.evaluate(() => document.fonts && document.fonts.ready);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

const portal = (url, query = '') => {
  const u = new URL(url);
  return `${u.origin}${u.pathname}${query}${u.hash}`;
};

// ---- the tests ----------------------------------------------------------------
const tests = [];
const test = (name, fn) => tests.push([name, fn]);

test('customer_portal_full_run', async () => {
  const page = await newPage('app A');
  await page.goto(FIX.appA.portalUrl);
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  // The token left the address bar and nothing was stored.
  assert(!page.url().includes('token='), `token still in the URL: ${page.url()}`);
  const stored = await page.evaluate(() => [document.cookie, localStorage.length, sessionStorage.length]);
  assert(stored[0] === '' && stored[1] === 0 && stored[2] === 0, `the portal stored something: ${stored}`);

  // An invalid URL: the API's 422 is shown under the field it names.
  expectedStatuses.add(422);
  await page.getByRole('button', { name: 'Add endpoint' }).first().click();
  await page.getByLabel('Endpoint URL').fill('ftp://not-a-webhook');
  await page.getByRole('button', { name: 'Create' }).click();
  const urlError = page.locator('[data-field="url"] .field-error');
  await urlError.waitFor();
  assert((await urlError.textContent()).length > 3, 'no words under Endpoint URL');
  await page.getByRole('alert').filter({ hasText: 'Endpoint URL' }).waitFor();

  // 1-2. Add an endpoint with two event types; see it through the API.
  await page.getByLabel('Endpoint URL').fill(FIX.receiverOk);
  await page.getByLabel('Description').fill('Primary receiver');
  await page.getByRole('checkbox', { name: 'sync.complete' }).check();
  await page.getByRole('checkbox', { name: 'connection.created' }).check();
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name: FIX.receiverOk }).waitFor();
  const eps = await api('GET', `/app/${FIX.appA.id}/endpoint`);
  const ep = eps.body.data.find((e) => e.url === FIX.receiverOk);
  assert(ep, `endpoint not in the API: ${JSON.stringify(eps.body)}`);
  assert(JSON.stringify([...ep.filterTypes].sort()) === JSON.stringify(['connection.created', 'sync.complete']), `filterTypes ${ep.filterTypes}`);
  assert(ep.description === 'Primary receiver', 'description');

  // 3. Send a test event; the attempt appears, then in the message log.
  await page.getByLabel('Event type').selectOption('sync.complete');
  await page.getByRole('button', { name: 'Send test event' }).click();
  await page.locator('.test-line').filter({ hasText: 'Succeeded' }).waitFor();
  await page.getByRole('link', { name: 'Messages' }).click();
  await page.getByRole('heading', { name: 'Messages', level: 1 }).waitFor();
  const row = page.locator('.msg-row').filter({ hasText: 'sync.complete' }).first();
  await row.filter({ hasText: 'Succeeded' }).waitFor();
  await row.click();
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  await page.locator('.attempt').filter({ hasText: 'HTTP 200' }).first().waitFor();
  await page.locator('.attempt summary').first().click();
  await page.getByText('Response body').first().waitFor();
  await shot(page, 'message-desktop-light');

  // 5. Resend: a second attempt appears.
  const msgId = page.url().split('/messages/')[1];
  await page.getByRole('button', { name: 'Resend' }).click();
  await eventually('a second attempt in the log', async () => (await page.locator('.attempt').count()) >= 2);
  const attempts = await api('GET', `/app/${FIX.appA.id}/attempt/msg/${msgId}`);
  assert(attempts.body.data.length >= 2, `API shows ${attempts.body.data.length} attempts after resend`);

  // 4. Reveal, then rotate the secret.
  await page.goto(FIX.appA.portalUrl);
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  await page.getByRole('link', { name: new RegExp(FIX.receiverOk.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')) }).click();
  await page.getByRole('button', { name: 'Reveal' }).click();
  const secretEl = page.getByLabel('Signing secret value');
  const before = await eventually('the revealed secret', async () => {
    const t = await secretEl.textContent();
    return t.startsWith('whsec_') && !t.includes('•') && t;
  });
  assert(before === (await api('GET', `/app/${FIX.appA.id}/endpoint/${ep.id}/secret`)).body.key, 'revealed secret differs from the API');
  await page.getByRole('button', { name: 'Rotate secret' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Rotate secret' }).click();
  const after = await eventually('the rotated secret', async () => {
    const t = await secretEl.textContent();
    return t !== before && t.startsWith('whsec_') && !t.includes('•') && t;
  });
  assert(after === (await api('GET', `/app/${FIX.appA.id}/endpoint/${ep.id}/secret`)).body.key, 'rotated secret differs from the API');

  // Recover failures since a date: a finished task and its progress.
  await page.getByRole('button', { name: 'Recover' }).click();
  await page.locator('.progress-box').filter({ hasText: 'qtask_' }).waitFor();

  // 6. Disable the endpoint.
  await page.getByRole('button', { name: 'Disable' }).click();
  await page.getByRole('button', { name: 'Enable' }).waitFor();
  await page.locator('.page-head .badge').filter({ hasText: 'Disabled' }).waitFor();
  assert((await api('GET', `/app/${FIX.appA.id}/endpoint/${ep.id}`)).body.disabled === true, 'API does not show the endpoint disabled');

  // 7. The chart view: three uPlot charts drawn.
  await page.getByRole('link', { name: 'Charts' }).click();
  await eventually('three charts', async () => (await page.locator('.uplot canvas').count()) === 3);
  await page.getByRole('button', { name: 'Last 7 days' }).click();
  await page.getByRole('button', { name: 'Last 7 days', pressed: true }).waitFor();

  // Headers: save one, see it through the API.
  await page.getByRole('link', { name: 'Headers' }).click();
  await page.getByLabel('Header name').first().fill('X-Customer');
  await page.getByLabel('Header value').first().fill('acme');
  await page.getByRole('button', { name: 'Save' }).click();
  await eventually('the header through the API', async () =>
    (await api('GET', `/app/${FIX.appA.id}/endpoint/${ep.id}/headers`)).body.headers['X-Customer'] === 'acme');

  // Catalog: descriptions, schema and example.
  await page.getByRole('link', { name: 'Event catalog' }).click();
  const card = page.locator('.et-card').filter({ hasText: 'sync.complete' });
  await card.locator('summary').click();
  await card.getByRole('table').waitFor();
  await card.getByText('Example payload').waitFor();

  // Delete with confirmation.
  await page.goto(FIX.appA.portalUrl);
  await page.getByRole('link', { name: new RegExp('Primary receiver') }).click();
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  await eventually('the endpoint deleted through the API', async () => (await api('GET', `/app/${FIX.appA.id}/endpoint/${ep.id}`)).status === 404);
  await page.close();
});

test('portal_token_cannot_see_other_app', async () => {
  const page = await newPage('app A isolation');
  await page.goto(FIX.appA.portalUrl);
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  await page.waitForLoadState('networkidle');
  const text = await page.locator('main').innerText();
  assert(!text.includes(FIX.appB.okUrl) && !text.includes(FIX.receiverFail), `app B's endpoints are listed in A's portal`);
  // Deep links to B's objects answer "not found".
  expectedStatuses.add(404);
  await page.evaluate((id) => { location.hash = `#/endpoints/${id}`; }, FIX.appB.endpointOk);
  await page.getByRole('heading', { name: 'Endpoint not found' }).waitFor();
  await page.evaluate((id) => { location.hash = `#/messages/${id}`; }, FIX.appB.msgId);
  await page.getByRole('heading', { name: 'Message not found' }).waitFor();
  // And the API refuses the same token.
  const token = tokenOf(FIX.appA.portalUrl);
  for (const p of [`/app/${FIX.appB.id}/endpoint`, `/app/${FIX.appB.id}/endpoint/${FIX.appB.endpointOk}/stats/series`, `/app/${FIX.appB.id}/msg`]) {
    const r = await api('GET', p, undefined, token);
    assert(r.status === 404, `${p} with A's token answered ${r.status}`);
  }
  await page.close();
});

test('read_only_portal_shows_no_write_controls', async () => {
  const page = await newPage('read-only');
  await page.goto(FIX.appB.readOnlyUrl);
  await page.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  await page.getByText('Webhooks · read-only').waitFor();
  await page.locator('.endpoint-row').first().waitFor();
  assert((await page.getByRole('button', { name: 'Add endpoint' }).count()) === 0, 'read-only shows Add endpoint');
  await page.locator('.endpoint-row').first().click();
  await page.getByRole('heading', { name: 'Signing secret' }).waitFor();
  await page.getByText('not available with this access link').waitFor();
  for (const name of ['Reveal', 'Rotate secret', 'Disable', 'Delete', 'Send test event', 'Recover']) {
    assert((await page.getByRole('button', { name }).count()) === 0, `read-only shows ${name}`);
  }
  await page.getByRole('link', { name: 'Messages' }).click();
  await page.locator('.msg-row').first().click();
  await page.getByRole('heading', { name: 'Attempts' }).waitFor();
  await page.locator('.dest-row').first().waitFor();
  assert((await page.getByRole('button', { name: 'Resend' }).count()) === 0, 'read-only shows Resend');
  await page.close();
});

test('embedded_in_a_third_party_iframe', async () => {
  // Another origin (and site: localhost vs 127.0.0.1) embeds the portal the
  // way svix-react's <AppPortal fullSize> does.
  const url = new URL(FIX.appB.embedUrl);
  url.searchParams.append('darkMode', 'true');
  url.searchParams.append('fontFamily', 'Inter');
  url.searchParams.append('primaryColor', '#e11d48');
  const host = http.createServer((req, res) => {
    if (req.url === '/host.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(`window.resizes = [];
        window.addEventListener('message', (e) => {
          const f = document.querySelector('iframe');
          if (e.source !== f.contentWindow) return;
          const d = e.data;
          if (d && d.type === 'svix.iframe-resizer-height' && typeof d.payload.height === 'number') {
            window.resizes.push(d.payload.height);
            f.style.height = d.payload.height + 'px';
          }
        });`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>Acme settings</title><h1>Settings → Webhooks</h1>
      <script src="/host.js"></script>
      <iframe title="Webhooks portal" allow="clipboard-write" style="display:block;width:100%;border:none" src="${url.href.replace(/"/g, '&quot;')}"></iframe>`);
  });
  await new Promise((r) => host.listen(0, '127.0.0.1', r));
  const hostUrl = `http://localhost:${host.address().port}/`;
  try {
    const page = await newPage('iframe host');
    await page.goto(hostUrl);
    const frame = page.frameLocator('iframe');
    await frame.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
    await frame.locator('.endpoint-row').first().waitFor();
    const heights = await eventually('a resize message', async () => {
      const r = await page.evaluate(() => window.resizes);
      return r.length && r[r.length - 1] > 300 && r;
    });
    const inner = page.frames().find((f) => f.url().includes('/portal/'));
    const look = await inner.evaluate(() => ({
      dark: document.documentElement.classList.contains('dark'),
      primary: getComputedStyle(document.documentElement).getPropertyValue('--primary').trim(),
      font: getComputedStyle(document.body).fontFamily,
      cookie: document.cookie,
      // Chromium denies storage to this third-party frame: the portal must not need it.
      stored: (() => {
        try {
          return localStorage.length + sessionStorage.length;
        } catch {
          return 0;
        }
      })(),
      url: location.href,
    }));
    assert(look.dark, 'darkMode=true did not apply');
    assert(look.primary === '#e11d48', `primaryColor is ${look.primary}`);
    assert(look.font.startsWith('Inter') || look.font.startsWith('"Inter"'), `fontFamily is ${look.font}`);
    assert(look.cookie === '' && look.stored === 0, 'the embedded portal used cookies or storage');
    assert(!look.url.includes('token='), 'the token stayed in the frame URL');
    // The host sizes the frame from the latest message; later content (charts,
    // badges) may send more, so compare the two read at one instant, until
    // they agree.
    await eventually('the iframe sized by the latest message', async () => {
      const now = await page.evaluate(() => ({
        frame: document.querySelector('iframe').getBoundingClientRect().height,
        last: window.resizes[window.resizes.length - 1],
      }));
      return Math.abs(now.frame - now.last) < 2;
    });
    // Navigating inside the frame resizes it again.
    await frame.getByRole('link', { name: 'Event catalog' }).click();
    await frame.getByRole('heading', { name: 'Event catalog', level: 1 }).waitFor();
    await eventually('another resize', async () => (await page.evaluate(() => window.resizes.length)) > heights.length);
    await shot(page, 'embedded-iframe-dark');
    await page.close();
  } finally {
    host.close();
  }
});

test('operator_console_opens_an_app_portal', async () => {
  const page = await newPage('console');
  await page.goto(FIX.consoleUrl);
  await page.getByRole('heading', { name: 'Delivery health' }).waitFor();
  await page.getByRole('heading', { name: 'Failing endpoints' }).waitFor();
  await page.locator('.health-row').filter({ hasText: FIX.receiverFail }).first().waitFor();
  await shot(page, 'console-overview-desktop-light');

  await page.getByRole('link', { name: 'Applications' }).click();
  await page.getByLabel('Search applications').fill('Beta');
  const app = page.locator('.app-item').filter({ hasText: 'Beta Inc' });
  await app.waitFor();
  await page.locator('.app-item').filter({ hasText: 'Acme Corp' }).first().waitFor({ state: 'hidden' });
  await eventually('the search to narrow the list to one app', async () => (await page.locator('.app-item:visible').count()) === 1);
  await app.getByRole('button', { name: 'Endpoints' }).click();
  await app.locator('.sub-row').first().waitFor();
  await app.locator('.sub-row .badge').filter({ hasText: /Healthy|Failing/ }).first().waitFor();
  await shot(page, 'console-apps-desktop-light');
  const [popup] = await Promise.all([
    browser.waitForEvent('page'),
    app.getByRole('button', { name: 'Open portal' }).click(),
  ]);
  watch(popup, 'opened portal');
  await popup.getByRole('heading', { name: 'Endpoints', level: 1 }).waitFor();
  await popup.getByText('Beta Inc').first().waitFor();
  await popup.close();

  // Event catalog: edit a description, archive a type.
  await page.getByRole('link', { name: 'Event catalog' }).click();
  const card = page.locator('.et-card').filter({ hasText: 'test.archivable' });
  await card.getByRole('button', { name: 'Edit' }).click();
  const dlg = page.getByRole('dialog');
  await dlg.getByLabel('Description').fill('Edited in the console');
  await dlg.getByRole('button', { name: 'Save' }).click();
  await eventually('the edited description', async () =>
    (await api('GET', '/event-type/test.archivable')).body.description === 'Edited in the console');
  await page.locator('.et-card').filter({ hasText: 'test.archivable' }).getByRole('button', { name: 'Archive' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Archive' }).click();
  await eventually('the archived type', async () => (await api('GET', '/event-type/test.archivable')).body.archived === true);
  await page.close();
});

test('screenshots_of_the_main_screens', async () => {
  const sizes = { desktop: { width: 1280, height: 860 }, phone: { width: 390, height: 844 } };
  for (const [size, viewport] of Object.entries(sizes)) {
    for (const mode of ['light', 'dark']) {
      const page = await newPage(`screens ${size} ${mode}`, viewport);
      await page.goto(portal(FIX.appB.portalUrl, mode === 'dark' ? '?darkMode=true' : ''));
      await page.locator('.endpoint-row .spark rect').first().waitFor({ state: 'attached' });
      await page.locator('.endpoint-row .badge').filter({ hasText: 'Failing' }).waitFor();
      await shot(page, `endpoints-${size}-${mode}`);
      await page.locator('.endpoint-row').filter({ hasText: FIX.appB.okUrl }).click();
      await page.locator('.attempt-row').first().waitFor();
      await shot(page, `endpoint-${size}-${mode}`);
      await page.getByRole('link', { name: 'Charts' }).click();
      await eventually('three charts', async () => (await page.locator('.uplot canvas').count()) === 3);
      await shot(page, `charts-${size}-${mode}`);
      await page.getByRole('link', { name: 'Messages' }).click();
      await page.locator('.msg-row .badge').filter({ hasText: /Succeeded|Failed/ }).first().waitFor();
      await shot(page, `messages-${size}-${mode}`);
      await page.getByRole('link', { name: 'Event catalog' }).click();
      await page.locator('.et-card summary').first().click();
      await page.locator('.et-card table').first().waitFor();
      await shot(page, `catalog-${size}-${mode}`);
      await page.getByRole('link', { name: 'Endpoints' }).click();
      await page.getByRole('button', { name: 'Add endpoint' }).first().click();
      await page.getByLabel('Endpoint URL').waitFor();
      await shot(page, `add-endpoint-${size}-${mode}`);
      await page.close();
    }
  }
});

// ---- runner --------------------------------------------------------------------
let passed = 0;
let failed = 0;
const started = Date.now();
for (const [name, fn] of tests) {
  if (ONLY && !name.includes(ONLY)) continue;
  problems = [];
  expectedStatuses = new Set();
  const t0 = Date.now();
  try {
    await fn();
    if (problems.length) throw new Error(`console errors:\n  ${problems.join('\n  ')}`);
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name} (${Date.now() - t0} ms)\n  ${(e && e.stack) || e}`);
    for (const p of browser.pages()) {
      await p.screenshot({ path: path.join(SHOTS, `failure-${name}.png`), fullPage: true }).catch(() => {});
    }
  }
  for (const p of browser.pages()) await p.close().catch(() => {});
}
await browser.close();
fs.rmSync(userDataDir, { recursive: true, force: true });
console.log(`portal browser tests took ${Date.now() - started} ms`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
