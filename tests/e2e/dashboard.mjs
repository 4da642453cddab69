// tests/e2e/dashboard.mjs - the dashboard in a real headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core; no browser download).
//
// Starts the real daemon (--demo) in a temporary directory, then at 1280x800
// and 390x844: signs in with a token, renders the team, finance and catalog
// views, checks that the numbers on screen are the API's (exact decimal
// strings), moves between views with the keyboard only, checks the CSP
// header, saves a screenshot of each view under SHOT_DIR and fails on any
// console error, page error or failed request.  Prints TAP.
// Environment: PLINTH_BIN (required), SHOT_DIR (default: the current dir).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TOKEN = 'e2e-admin-token-0123456789abcdef';
const SHOT_DIR = process.env.SHOT_DIR || process.cwd();
let n = 0;
let failed = 0;
function ok(cond, desc, diag) {
  n += 1;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${desc}`);
  if (!cond) {
    failed += 1;
    for (const line of String(diag === undefined ? '' : typeof diag === 'string' ? diag : JSON.stringify(diag)).split('\n')) console.log(`#   ${line}`);
  }
  return cond;
}

/* "12,345.50" or "USD 12,345.5" -> canonical decimal "12345.50" */
function canon(s) {
  const t = String(s).replace(/^[A-Z]{3} /, '').replace(/,/g, '').trim();
  const [i, f = ''] = t.split('.');
  let frac = (f + '000000').slice(0, 6).replace(/0+$/, '');
  while (frac.length < 2) frac += '0';
  return `${BigInt(i)}.${frac}`;
}

async function startDaemon(dir) {
  const ready = path.join(dir, 'ready');
  const proc = spawn(process.env.PLINTH_BIN, ['serve', '--listen', '127.0.0.1:0', '--data', dir,
    '--ready-file', ready, '--demo'], { env: { ...process.env, PLINTH_ADMIN_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'ignore'] });
  for (let i = 0; i < 300; i++) {
    if (existsSync(ready)) {
      const base = readFileSync(ready, 'utf8').trim();
      if (base) return { proc, base };
    }
    if (proc.exitCode !== null) throw new Error('the daemon exited at start');
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the daemon did not start');
}

async function api(base, p) {
  const res = await fetch(base + p, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (!res.ok) throw new Error(`${p}: ${res.status}`);
  return res.json();
}

async function textOf(page, sel) {
  return (await page.locator(sel).first().textContent()).trim();
}

async function runSize(browser, base, size, label) {
  const ctx = await browser.newContext({ viewport: size });
  const page = await ctx.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });

  const resp = await page.goto(base + '/');
  const csp = resp.headers()['content-security-policy'] || '';
  ok(resp.status() === 200 && csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'),
    `${label}: / is served with a strict CSP`, csp);
  ok(await page.locator('#token').isVisible(), `${label}: the page asks for a token`);

  // Sign in with the keyboard: type, Enter.
  await page.locator('#token').focus();
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-ready="team"]', { timeout: 15000 });
  ok(await page.evaluate(() => sessionStorage.getItem('plinth.token') !== null), `${label}: the token is kept in sessionStorage`);

  // Team view: every number equals GET /v1/teams/{team}.
  const teamId = await page.locator('#team-select').inputValue();
  const t = await api(base, `/v1/teams/${teamId}`);
  // Budget, spent, reserved and available hold still: exact.  Burn rate and
  // forecast move with every second of accrual: the screen must show exactly
  // the API string the page received, and that must be within 0.1% of ours.
  const pairs = [['team-budget', t.budget.amount], ['team-spent', t.spent], ['team-reserved', t.reserved],
    ['team-available', t.available]];
  const bad = [];
  for (const [k, v] of pairs) {
    const shown = await textOf(page, `[data-k="${k}"]`);
    if (canon(shown) !== canon(v)) bad.push(`${k}: screen ${shown} api ${v}`);
  }
  for (const [k, v] of [['team-burn', t.burn_rate_per_day], ['team-forecast', t.forecast_period_end]]) {
    const shown = await textOf(page, `[data-k="${k}"]`);
    const got = await page.locator(`[data-k="${k}"]`).getAttribute('data-v');
    const rel = Math.abs(Number(canon(got)) - Number(v)) / Math.max(1, Number(v));
    if (canon(shown) !== canon(got) || rel > 0.001) bad.push(`${k}: screen ${shown} (api said ${got}) now ${v}`);
  }
  ok(bad.length === 0, `${label}: team ${teamId} numbers on screen equal the API's`, bad.join('\n'));
  const runout = await textOf(page, '#team-runout');
  ok(t.budget_exhausted_at ? runout.includes(t.budget_exhausted_at.slice(0, 10)) : runout.includes('lasts'),
    `${label}: the forecast sentence matches budget_exhausted_at`, runout);
  const running = (await api(base, `/v1/allocations?team=${teamId}&status=running&limit=100`)).items;
  const approved = (await api(base, `/v1/allocations?team=${teamId}&status=approved&limit=100`)).items;
  const rows = await page.locator('#t-allocs tbody tr').count();
  ok(rows === Math.max(1, running.length + approved.length), `${label}: one row per active allocation`, `${rows} vs ${running.length + approved.length}`);
  if (running.length > 0) {
    const sel = `td[data-id="${running[0].id}"]`;
    const a1 = canon(await textOf(page, sel));
    await page.waitForTimeout(2200);
    const a2 = canon(await textOf(page, sel));
    ok(Number(a2) > Number(a1), `${label}: accrued cost of a running allocation ticks live`, `${a1} -> ${a2}`);
  }
  for (const id of ['c-gauge', 'c-cumulative', 'c-gpu']) {
    const box = await page.locator('#' + id).boundingBox();
    ok(box && box.width > 100 && box.height > 100, `${label}: chart ${id} is drawn`, box);
  }
  await page.screenshot({ path: path.join(SHOT_DIR, `dashboard-team-${label}.png`), fullPage: true });

  // Keyboard navigation to Finance: focus the nav link and press Enter.
  await page.locator('nav a[data-view="finance"]').focus();
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-ready="finance"]', { timeout: 15000 });
  const teams = (await api(base, '/v1/teams')).items;
  const spentShown = await page.locator('td[data-k="fin-spent"]').allTextContents();
  const budgetShown = await page.locator('td[data-k="fin-budget"]').allTextContents();
  ok(spentShown.length === teams.length && teams.every((x, i) => canon(spentShown[i]) === canon(x.spent) && canon(budgetShown[i]) === canon(x.budget.amount)),
    `${label}: finance shows every team's spend and budget as the API does`, { spentShown, api: teams.map((x) => x.spent) });
  const proj = (await api(base, '/v1/costs?group_by=project')).items;
  const topApi = proj.map((p) => p.spent).sort((a, b) => Number(b) - Number(a)).slice(0, 10).map(canon);
  const topShown = (await page.locator('td[data-k="proj-spent"]').allTextContents()).map(canon);
  ok(JSON.stringify(topShown) === JSON.stringify(topApi), `${label}: top projects equal /v1/costs?group_by=project`, { topShown, topApi });
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-this').press('Enter')]);
  const dlPath = await download.path();
  const csv = readFileSync(dlPath, 'utf8');
  ok(csv.startsWith('BilledCost,') && download.suggestedFilename().endsWith('.csv'), `${label}: the export button downloads the FOCUS CSV`, download.suggestedFilename());
  await page.screenshot({ path: path.join(SHOT_DIR, `dashboard-finance-${label}.png`), fullPage: true });

  // Catalog
  await page.locator('nav a[data-view="catalog"]').focus();
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-ready="catalog"]', { timeout: 15000 });
  const gpus = (await api(base, '/v1/gpu-types')).items;
  const cap = await page.locator('td[data-k="gpu-capacity"]').allTextContents();
  const al = await page.locator('td[data-k="gpu-allocated"]').allTextContents();
  const price = await page.locator('td[data-k="gpu-price"]').allTextContents();
  ok(gpus.length > 0 && cap.length === gpus.length && gpus.every((g, i) => Number(cap[i]) === g.capacity && Number(al[i]) === g.allocated && canon(price[i]) === canon(g.price_per_gpu_hour)),
    `${label}: catalog price, capacity and allocated equal the API's`, { cap, al });
  await page.screenshot({ path: path.join(SHOT_DIR, `dashboard-catalog-${label}.png`), fullPage: true });

  // Nothing wider than the viewport (readable on a phone without sideways scrolling of the page).
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  ok(overflow <= 0, `${label}: the page is not wider than the viewport`, overflow);

  // Sign out clears the token.
  await page.locator('#logout').focus();
  await page.keyboard.press('Enter');
  ok(await page.evaluate(() => sessionStorage.getItem('plinth.token') === null) && await page.locator('#token').isVisible(),
    `${label}: sign out forgets the token`);
  // A wrong token is refused politely (the 401 is expected, so not a problem).
  await page.locator('#token').fill('wrong-token-wrong-token');
  await page.locator('#token').press('Enter');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);
  const expected401 = problems.filter((p) => p.includes('HTTP 401') || p.includes('401 (Unauthorized)'));
  ok(expected401.length >= 1, `${label}: a wrong token shows an error`, problems);
  const real = problems.filter((p) => !expected401.includes(p));
  ok(real.length === 0, `${label}: no console errors, page errors or failed requests`, real.join('\n'));
  await ctx.close();
}

async function main() {
  mkdirSync(SHOT_DIR, { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'plinth-e2e-'));
  let daemon = null;
  let browser = null;
  try {
    daemon = await startDaemon(dir);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    await runSize(browser, daemon.base, { width: 1280, height: 800 }, '1280x800');
    await runSize(browser, daemon.base, { width: 390, height: 844 }, '390x844');
  } catch (e) {
    ok(false, 'the browser test ran to the end', e && e.stack ? e.stack : String(e));
  } finally {
    if (browser) await browser.close();
    if (daemon) daemon.proc.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`1..${n}`);
  process.exit(failed || n === 0 ? 1 : 0);
}

main();
