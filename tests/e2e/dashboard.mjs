// tests/e2e/dashboard.mjs - the dashboard in a real headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core; no browser download).
//
// Starts the real daemon (--demo) in a temporary directory, then at 1280x800
// and 390x844, signed in as the admin: renders every view (team, allocation
// history and one allocation, finance, catalog, the four admin sections) and
// checks that the numbers on screen are the API's (rounded to cents, the
// exact value on hover), that amounts never wrap, that charts fill the
// width and wide tables say they scroll; drives the admin screens (create a
// team, set its budget, a refused budget, change a capacity, create and
// revoke a token, filter the audit log) and the history filters and
// drill-down, checking each result through the API; signs in as a member
// (no Finance, no Admin) and as finance (Finance, no Admin).  Moves between
// views with the keyboard, checks the CSP header, saves a screenshot of every
// view under SHOT_DIR and fails on any console error, page error or failed
// request other than the ones a step expects.  Prints TAP.
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

/* The API's exact "55554.200932" -> what the screen must show, "55,554.20"
 * (cents, half away from zero); computed here independently of app.js. */
function cents(s) {
  const t = String(s);
  const neg = t.startsWith('-');
  const [i, f = ''] = (neg ? t.slice(1) : t).split('.');
  const us = BigInt(i) * 1000000n + BigInt((f + '000000').slice(0, 6));
  const c = (us + 5000n) / 10000n;
  const str = (c / 100n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',') + '.' + (c % 100n).toString().padStart(2, '0');
  return (neg && c !== 0n ? '-' : '') + str;
}
/* "$55,554.20" -> "55,554.20" (the symbol stripped, sign kept). */
const shownAmount = (s) => String(s).trim().replace(/^(-?)[^\d-]*/, '$1');
/* Exact decimal, normalised: "12.500000" -> "12.50" */
function exact(s) {
  const [i, f = ''] = String(s).split('.');
  let frac = (f + '000000').slice(0, 6).replace(/0+$/, '');
  while (frac.length < 2) frac += '0';
  return `${BigInt(i)}.${frac}`;
}
const addMoney = (a, b) => {
  const us = (s) => { const [i, f = ''] = s.split('.'); return BigInt(i) * 1000000n + BigInt((f + '000000').slice(0, 6)); };
  const v = us(a) + us(b);
  return `${v / 1000000n}.${(v % 1000000n).toString().padStart(6, '0')}`;
};

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

async function call(base, p, opts = {}) {
  const headers = { Authorization: `Bearer ${opts.token || TOKEN}` };
  if (opts.body) headers['Content-Type'] = 'application/json';
  const res = await fetch(base + p, { method: opts.method || 'GET', headers, body: opts.body ? JSON.stringify(opts.body) : undefined });
  return { status: res.status, json: res.status === 204 ? null : await res.json().catch(() => null) };
}
async function api(base, p, opts) {
  const r = await call(base, p, opts);
  if (r.status >= 300) throw new Error(`${p}: ${r.status}`);
  return r.json;
}
async function allPages(base, p) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < 100; i++) {
    const sep = p.includes('?') ? '&' : '?';
    const page = await api(base, p + sep + 'limit=500' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
    out.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

async function textOf(page, sel) {
  return (await page.locator(sel).first().textContent()).trim();
}

function watch(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`); });
  return problems;
}

async function signIn(page, base, token) {
  await page.goto(base + '/');
  await page.locator('#token').focus();
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-ready="team"]', { timeout: 15000 });
}

async function go(page, hash, ready) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(`body[data-ready="${ready}"]`, { timeout: 20000 });
}

/* Keyboard only: focus the view's link in the top navigation, press Enter. */
async function navTo(page, view) {
  await page.locator(`nav a[data-view="${view}"]`).focus();
  await page.keyboard.press('Enter');
  await page.waitForSelector(`body[data-ready="${view}"]`, { timeout: 20000 });
}

async function shot(page, name, label) {
  await page.screenshot({ path: path.join(SHOT_DIR, `dashboard-${name}-${label}.png`), fullPage: true });
}

/* Every amount on screen that carries an exact value shows it rounded to
 * cents, has the exact value as its title and sits on one line. */
async function moneyProblems(page) {
  return page.evaluate(() => {
    const bad = [];
    for (const e of document.querySelectorAll('.money')) {
      if (e.offsetParent === null) continue;
      const v = e.dataset.v;
      const norm = (x) => { const [i, f = ''] = x.split('.'); let fr = f.replace(/0+$/, ''); while (fr.length < 2) fr += '0'; return i + '.' + fr; };
      if (!e.title || e.title.split(' ')[0] !== norm(v)) bad.push(`title ${e.title} for ${v}`);
      const r = document.createRange();
      r.selectNodeContents(e);
      const lines = new Set([...r.getClientRects()].map((x) => Math.round(x.top)));
      if (lines.size > 1) bad.push(`wraps: ${e.textContent}`);
      const card = e.closest('.kpi');
      if (card && e.getBoundingClientRect().right > card.getBoundingClientRect().right) bad.push(`overflows its card: ${e.textContent}`);
    }
    return bad;
  });
}

async function noOverflow(page, label, view) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  ok(overflow <= 0, `${label}: ${view} is not wider than the viewport`, overflow);
}

async function pickTeam(page, id) {
  if (await page.locator('#team-select').inputValue() === id) return;
  await page.selectOption('#team-select', id);
  await page.waitForFunction((t) => document.body.dataset.ready === 'team' && document.querySelector('#team-h').dataset.team === t, id, { timeout: 15000 });
}

async function teamView(page, base, label) {
  await pickTeam(page, 'nlp'); // the demo's busiest team (the first by id is bigco)
  const teamId = await page.locator('#team-select').inputValue();
  const t = await api(base, `/v1/teams/${teamId}`);
  // Budget, spent, reserved and available hold still: exact.  Burn rate and
  // forecast move with every second of accrual: the screen must show the
  // API string the page received, and that must be within 0.1% of ours.
  const bad = [];
  for (const [k, v] of [['team-budget', t.budget.amount], ['team-spent', t.spent], ['team-reserved', t.reserved], ['team-available', t.available]]) {
    const shown = await textOf(page, `[data-k="${k}"]`);
    const title = await page.locator(`[data-k="${k}"]`).getAttribute('title');
    if (shownAmount(shown) !== cents(v) || !shown.startsWith('$')) bad.push(`${k}: screen ${shown} api ${v}`);
    if (!title.startsWith(exact(v) + ' USD')) bad.push(`${k}: title ${title} api ${v}`);
  }
  for (const [k, v] of [['team-burn', t.burn_rate_per_day], ['team-forecast', t.forecast_period_end]]) {
    const shown = await textOf(page, `[data-k="${k}"]`);
    const got = await page.locator(`[data-k="${k}"]`).getAttribute('data-v');
    const rel = Math.abs(Number(got) - Number(v)) / Math.max(1, Number(v));
    if (shownAmount(shown) !== cents(got) || rel > 0.001) bad.push(`${k}: screen ${shown} (api said ${got}) now ${v}`);
  }
  ok(bad.length === 0, `${label}: team ${teamId} amounts on screen are the API's rounded to cents, exact on hover`, bad.join('\n'));
  const mp = await moneyProblems(page);
  ok(mp.length === 0, `${label}: no amount on the team view wraps mid-number or lacks its exact title`, mp.join('\n'));
  const runout = await textOf(page, '#team-runout');
  ok(t.budget_exhausted_at ? runout.includes(t.budget_exhausted_at.slice(0, 10)) : runout.includes('lasts'),
    `${label}: the forecast sentence matches budget_exhausted_at`, runout);
  const running = (await api(base, `/v1/allocations?team=${teamId}&status=running&limit=100`)).items;
  const approved = (await api(base, `/v1/allocations?team=${teamId}&status=approved&limit=100`)).items;
  const rows = await page.locator('#t-allocs tbody tr').count();
  ok(rows === Math.max(1, running.length + approved.length), `${label}: one row per active allocation`, `${rows} vs ${running.length + approved.length}`);
  if (running.length > 0) {
    const sel = `td[data-id="${running[0].id}"]`;
    const a1 = await page.locator(sel).getAttribute('data-v');
    await page.waitForTimeout(2200);
    const a2 = await page.locator(sel).getAttribute('data-v');
    ok(Number(a2) > Number(a1), `${label}: accrued cost of a running allocation ticks live`, `${a1} -> ${a2}`);
  }
  for (const id of ['c-gauge', 'c-cumulative', 'c-gpu']) {
    const box = await page.locator('#' + id).boundingBox();
    ok(box && box.width > 100 && box.height > 100, `${label}: chart ${id} is drawn`, box);
  }
  // Spend far below the budget: the cumulative chart zooms to the spend and
  // names the budget; the button puts the whole budget back on the scale.
  const yMax = () => page.evaluate(() => window.Chart.getChart('c-cumulative').scales.y.max);
  const budgetN = Number(t.budget.amount);
  if (Number(t.forecast_period_end) * 4 < budgetN) {
    const zoomed = await yMax();
    const note = await textOf(page, '#cum-note');
    await page.locator('#cum-scale').click();
    await page.waitForFunction(() => document.body.dataset.ready === 'team' && !document.querySelector('#c-cumulative').dataset.zoom, null, { timeout: 15000 });
    const whole = await yMax();
    ok(zoomed < budgetN && note.includes(cents(t.budget.amount)) && whole >= budgetN,
      `${label}: the cumulative chart zooms to a small spend, names the budget, and shows it on request`, { zoomed, whole, note });
    await page.locator('#cum-scale').click();
    await page.waitForFunction(() => document.body.dataset.ready === 'team' && document.querySelector('#c-cumulative').dataset.zoom === '1', null, { timeout: 15000 });
  } else {
    ok(await yMax() >= budgetN, `${label}: the cumulative chart's scale holds the budget`);
  }
  await noOverflow(page, label, 'the team view');
  await shot(page, 'team', label);

  // The largest budget the API takes still shows on one line inside its card.
  await pickTeam(page, 'bigco');
  const big = await moneyProblems(page);
  const shownBig = await textOf(page, '[data-k="team-budget"]');
  ok(big.length === 0 && shownBig === '$999,999,999,999.00', `${label}: a budget of ${shownBig} fits its card on one line`, big.join('\n'));
  await shot(page, 'team-large-amounts', label);
  await pickTeam(page, teamId);
}

async function financeView(page, base, label) {
  await navTo(page, 'finance');
  const teams = (await api(base, '/v1/teams')).items;
  const spentShown = (await page.locator('td[data-k="fin-spent"]').allTextContents()).map(shownAmount);
  const budgetShown = (await page.locator('td[data-k="fin-budget"]').allTextContents()).map(shownAmount);
  ok(spentShown.length === teams.length && teams.every((x, i) => spentShown[i] === cents(x.spent) && budgetShown[i] === cents(x.budget.amount)),
    `${label}: finance shows every team's spend and budget as the API does`, { spentShown, api: teams.map((x) => x.spent) });
  const proj = (await api(base, '/v1/costs?group_by=project')).items;
  const topApi = proj.map((p) => p.spent).sort((a, b) => Number(b) - Number(a)).slice(0, 10).map(cents);
  const topShown = (await page.locator('td[data-k="proj-spent"]').allTextContents()).map(shownAmount);
  ok(JSON.stringify(topShown) === JSON.stringify(topApi), `${label}: top projects equal /v1/costs?group_by=project`, { topShown, topApi });
  const mp = await moneyProblems(page);
  ok(mp.length === 0, `${label}: no amount on the finance view wraps mid-number or lacks its exact title`, mp.join('\n'));

  // Charts use the whole width of the content column.
  const mainW = await page.evaluate(() => { const m = document.querySelector('#view-finance'); return m.getBoundingClientRect().width; });
  for (const id of ['c-teams', 'c-bva', 'c-mom']) {
    const box = await page.locator('#' + id).boundingBox();
    ok(box && box.width >= 0.9 * mainW && box.height > 100, `${label}: chart ${id} spans the full width`, { box, mainW });
  }
  // Spend is drawn against each team's own budget, so a small spend next to
  // a large budget is still a visible bar: the chart's data are percentages.
  const shares = await page.evaluate(() => window.Chart.getChart('c-teams').data.datasets[0].data);
  const us = (x) => { const [i, f = ''] = x.split('.'); return BigInt(i) * 1000000n + BigInt((f + '000000').slice(0, 6)); };
  const expectShares = teams.map((t) => Number(us(t.spent) * 10000n / us(t.budget.amount)) / 100);
  ok(JSON.stringify(shares) === JSON.stringify(expectShares), `${label}: the team chart shows spent as % of each team's budget`, { shares, expectShares });

  // Budget versus actual: the last period's row equals GET /v1/costs/periods,
  // whose actual is the budget view of GET /v1/costs for that month.
  await page.selectOption('#bva-team', 'recsys');
  await page.waitForFunction(() => document.querySelector('#t-bva').dataset.team === 'recsys', null, { timeout: 15000 });
  const bvaTeam = await page.locator('#bva-team').inputValue();
  const t = teams.find((x) => x.id === bvaTeam);
  const ps = new Date(t.period_start);
  const prev = new Date(Date.UTC(ps.getUTCFullYear(), ps.getUTCMonth() - 1, 1)).toISOString().slice(0, 10);
  const hist = await api(base, `/v1/costs/periods?team=${bvaTeam}&limit=6`);
  const c = await api(base, `/v1/costs?view=budget&group_by=team&team=${bvaTeam}&from=${prev}&to=${t.period_start.slice(0, 10)}`);
  const rows = await page.locator('#t-bva tbody tr').count();
  const period1 = await textOf(page, '#t-bva tbody tr:nth-child(2) [data-k="bva-period"]');
  const actual1 = shownAmount(await textOf(page, '#t-bva tbody tr:nth-child(2) [data-k="bva-actual"]'));
  const budget1 = shownAmount(await textOf(page, '#t-bva tbody tr:nth-child(2) [data-k="bva-budget"]'));
  ok(t.budget.period !== 'monthly' || (rows === 6 && period1 === prev.slice(0, 7) && hist.items[1].period_start.slice(0, 10) === prev &&
      actual1 === cents(hist.items[1].actual) && actual1 === cents(addMoney(c.total.spent, c.total.accrued)) &&
      budget1 === cents(hist.items[1].budget) && budget1 === cents(t.budget.amount)),
    `${label}: budget versus actual for ${prev.slice(0, 7)} equals /v1/costs/periods, the budget view of /v1/costs and the budget then`, { rows, period1, actual1, budget1, api: c.total, hist: hist.items[1] });
  ok(/By use/.test(await textOf(page, '#views-note')) && /By budget period/.test(await textOf(page, '#views-note')),
    `${label}: the finance view names both ways of counting a month`);

  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#export-this').press('Enter')]);
  const csv = readFileSync(await download.path(), 'utf8');
  ok(csv.startsWith('BilledCost,') && download.suggestedFilename().endsWith('.csv'), `${label}: the export button downloads the FOCUS CSV`, download.suggestedFilename());
  await noOverflow(page, label, 'the finance view');
  await shot(page, 'finance', label);
}

async function catalogView(page, base, label) {
  await navTo(page, 'catalog');
  const gpus = (await api(base, '/v1/gpu-types')).items;
  const cap = await page.locator('td[data-k="gpu-capacity"]').allTextContents();
  const al = await page.locator('td[data-k="gpu-allocated"]').allTextContents();
  const price = (await page.locator('td[data-k="gpu-price"]').allTextContents()).map(shownAmount);
  ok(gpus.length > 0 && cap.length === gpus.length && gpus.every((g, i) => Number(cap[i]) === g.capacity && Number(al[i]) === g.allocated && price[i] === cents(g.price_per_gpu_hour)),
    `${label}: catalog price, capacity and allocated equal the API's`, { cap, al, price });
  await noOverflow(page, label, 'the catalog');
  await shot(page, 'catalog', label);
}

async function historyView(page, base, label) {
  await navTo(page, 'allocations');
  const all = await allPages(base, '/v1/allocations');
  const from = await page.locator('#hist-from').inputValue();
  const to = await page.locator('#hist-to').inputValue();
  const inRange = (a) => a.approved_at.slice(0, 10) >= from && a.approved_at.slice(0, 10) <= to;
  const expectAll = all.filter(inRange);
  const count = Number(await page.locator('#hist-summary').getAttribute('data-count'));
  ok(count === expectAll.length && count > 0 && await page.locator('#t-hist tbody tr').count() === count,
    `${label}: history lists every allocation approved ${from}..${to}`, { count, api: expectAll.length });
  await shot(page, 'allocations', label);
  if (label === '390x844') {
    const hint = await page.evaluate(() => {
      const box = document.querySelector('#t-hist').closest('.scroll');
      return { more: box.classList.contains('more'), hint: !box.previousElementSibling.hidden, wider: box.scrollWidth > box.clientWidth };
    });
    ok(hint.more && hint.hint && hint.wider, `${label}: the wide history table says it scrolls sideways`, hint);
  }

  // Filters: a project and its GPU type, then a label, through the form.
  const pick = expectAll.find((a) => a.status === 'completed') || expectAll[0];
  await page.selectOption('#hist-project', pick.project);
  await page.selectOption('#hist-gpu', pick.gpu_type);
  await page.locator('#hist-label').fill('demo=true');
  await page.locator('#hist-form button[type="submit"]').click();
  await page.waitForFunction(() => document.body.dataset.ready === 'allocations' && location.hash.includes('project='), null, { timeout: 20000 });
  const want = expectAll.filter((a) => a.project === pick.project && a.gpu_type === pick.gpu_type && a.labels.demo === 'true');
  const projects = await page.locator('td[data-k="hist-project"]').allTextContents();
  const costs = (await page.locator('td[data-k="hist-cost"]').allTextContents()).map(shownAmount);
  // A running allocation's cost grows while the page loads: the shown cost
  // lies between the API's before the page asked and after it showed.
  const later = new Map((await allPages(base, '/v1/allocations')).map((a) => [a.id, a.accrued_cost]));
  const centsOf = (s) => BigInt(String(s).replace(/[,.]/g, ''));
  const costOk = (c, i) => centsOf(cents(want[i].accrued_cost)) <= centsOf(c) && centsOf(c) <= centsOf(cents(later.get(want[i].id)));
  ok(projects.length === want.length && projects.every((p) => p === pick.project) && costs.length === want.length && costs.every(costOk),
    `${label}: history filtered by project ${pick.project}, GPU type and label equals the API's list`, { projects, costs, want: want.map((a) => [a.id, a.status, a.accrued_cost]) });
  await page.locator('#hist-label').fill('no-such-label');
  await page.locator('#hist-form button[type="submit"]').click();
  await page.waitForFunction(() => document.body.dataset.ready === 'allocations' && location.hash.includes('no-such-label'), null, { timeout: 20000 });
  ok(await textOf(page, '#t-hist tbody td') === 'No allocation matches these filters', `${label}: a label nobody has shows no allocation`);

  // Drill down: back to the project filter, open the first allocation.
  // The old view stays 'ready' until the hashchange that goBack queues is handled.
  await page.evaluate(() => { document.body.dataset.ready = ''; });
  await page.goBack();
  await page.waitForFunction(() => document.body.dataset.ready === 'allocations' && !location.hash.includes('no-such-label'), null, { timeout: 20000 });
  await page.locator('#t-hist a[data-k="alloc-link"]').first().click();
  await page.waitForFunction(() => document.body.dataset.ready.startsWith('allocation/'), null, { timeout: 20000 });
  const a = await api(base, `/v1/allocations/${want[0].id}`);
  const head = await textOf(page, '#alloc-h');
  const est = await page.locator('[data-k="alloc-estimated"]').getAttribute('title');
  const actual = await textOf(page, '[data-k="alloc-actual-cost"]');
  ok(head === `Allocation ${a.id}` && est.startsWith(exact(a.estimated_cost)) &&
    (a.actual_cost === null ? actual === '–' : shownAmount(actual) === cents(a.actual_cost)),
    `${label}: the drill-down shows allocation ${a.id} as the API does`, { head, est, actual, api: a });
  await noOverflow(page, label, 'one allocation');
  await shot(page, 'allocation', label);
  await page.locator('#alloc-back').click();
  await page.waitForFunction(() => document.body.dataset.ready === 'allocations' && location.hash.includes('project='), null, { timeout: 20000 });
  ok(await page.locator('#hist-project').inputValue() === pick.project, `${label}: back from the drill-down keeps the filters`);
}

async function adminViews(page, base, label, tag, expected) {
  // Teams: create one through the form.
  await navTo(page, 'admin');
  const id = `speech-${tag}`;
  await page.locator('#tf-id').fill(id);
  await page.locator('#tf-name').fill('Speech ' + tag);
  await page.locator('#tf-amount').fill('1234.5');
  await page.selectOption('#tf-period', 'quarterly');
  await page.locator('#tf-alerts').fill('50, 90');
  await page.locator('#tf-save').click();
  await page.waitForFunction(() => document.querySelector('#admin-msg').textContent.startsWith('Saved team'), null, { timeout: 15000 });
  const made = await call(base, `/v1/teams/${id}`);
  ok(made.status === 200 && made.json.budget.amount === '1234.50' && made.json.budget.period === 'quarterly' &&
    JSON.stringify(made.json.alert_thresholds) === '[0.5,0.9]' && await page.locator(`button[data-team="${id}"]`).count() === 1,
  `${label}: the admin creates team ${id} in the form`, made);

  // A budget the API refuses: the field says why and nothing changes.
  await page.locator(`button[data-team="${id}"]`).click();
  await page.locator('#tf-amount').fill('12.3456789');
  await page.locator('#tf-save').click();
  await page.waitForFunction(() => document.querySelector('#admin-msg').textContent.startsWith('Not saved'), null, { timeout: 15000 });
  expected.push(`HTTP 422 ${base}/v1/teams/${id}`);
  const fieldErr = await textOf(page, '#team-form .field-error[data-field="budget.amount"]');
  const still = await api(base, `/v1/teams/${id}`);
  ok(fieldErr.includes('decimal') && await page.locator('#tf-amount').getAttribute('aria-invalid') === 'true' && still.budget.amount === '1234.50',
    `${label}: a refused budget is explained under its field and changes nothing`, { fieldErr, still: still.budget });
  await shot(page, 'admin-teams-error', label);

  // Set the budget: only the amount is typed; the rest of the team is kept.
  await page.locator('#tf-amount').fill('2000');
  await page.locator('#tf-save').click();
  await page.waitForFunction(() => document.querySelector('#admin-msg').textContent.startsWith('Saved team'), null, { timeout: 15000 });
  const set = await api(base, `/v1/teams/${id}`);
  const row = shownAmount(await textOf(page, `tr:has(button[data-team="${id}"]) [data-k="adm-budget"]`));
  ok(set.budget.amount === '2000.00' && set.display_name === 'Speech ' + tag && set.budget.period === 'quarterly' &&
    JSON.stringify(set.alert_thresholds) === '[0.5,0.9]' && row === '2,000.00',
  `${label}: the admin sets team ${id}'s budget to 2000 and keeps its name, period and alerts`, { set, row });
  await noOverflow(page, label, 'admin teams');
  await shot(page, 'admin-teams', label);

  // Capacity and prices: one more H100, price and its date kept.
  await go(page, '#admin/gpus', 'admin/gpus');
  const before = await api(base, '/v1/gpu-types/h100-80gb');
  await page.locator('button[data-gpu="h100-80gb"]').click();
  await page.locator('#gf-capacity').fill(String(before.capacity + 1));
  await page.locator('#gf-save').click();
  await page.waitForFunction(() => document.querySelector('#admin-msg').textContent.startsWith('Saved GPU type'), null, { timeout: 15000 });
  const after = await api(base, '/v1/gpu-types/h100-80gb');
  const capShown = await textOf(page, 'tr:has(button[data-gpu="h100-80gb"]) [data-k="adm-capacity"]');
  ok(after.capacity === before.capacity + 1 && after.price_per_gpu_hour === before.price_per_gpu_hour &&
    after.price_date === before.price_date && Number(capShown) === after.capacity,
  `${label}: the admin raises h100-80gb capacity to ${before.capacity + 1}, price kept`, { before, after, capShown });
  await noOverflow(page, label, 'admin GPU types');
  await shot(page, 'admin-gpus', label);

  // Tokens: create a member token in the form, then revoke it.
  await go(page, '#admin/tokens', 'admin/tokens');
  await page.locator('#kf-name').fill(`e2e member ${tag}`);
  await page.selectOption('#kf-role', 'member');
  await page.locator('#kf-teams input[value="nlp"]').check();
  await page.locator('#token-form button[type="submit"]').click();
  await page.waitForSelector('#kf-secret:not([hidden])', { timeout: 15000 });
  const secret = await page.locator('#kf-secret-value').inputValue();
  const tokens = (await api(base, '/v1/tokens')).items;
  const tok = tokens.find((k) => k.name === `e2e member ${tag}`);
  ok(tok && tok.role === 'member' && JSON.stringify(tok.teams) === '["nlp"]' && (await call(base, '/v1/teams', { token: secret })).status === 200,
    `${label}: the admin creates a member token and sees its secret once`, tok);
  await shot(page, 'admin-tokens-created', label);
  await page.locator(`button[data-token="${tok.id}"]`).click();
  await page.locator(`button[data-confirm="${tok.id}"]`).click();
  await page.waitForFunction(() => document.querySelector('#admin-msg').textContent.startsWith('Revoked'), null, { timeout: 15000 });
  const revoked = (await api(base, '/v1/tokens')).items.find((k) => k.id === tok.id);
  const st = await textOf(page, `tr:has(td[data-token="${tok.id}"]) [data-k="tok-state"]`);
  const refused = await call(base, '/v1/teams', { token: secret });
  ok(revoked.revoked_at !== null && st.startsWith('Revoked') && refused.status === 401 &&
    await page.locator(`button[data-token="${tok.id}"]`).count() === 0 && await page.locator('#kf-secret').isHidden() &&
    await page.locator('#kf-secret-value').inputValue() === '',
  `${label}: the admin revokes it: the API refuses it, the row says Revoked, its secret is off the screen`, { revoked, st, refused: refused.status });
  await noOverflow(page, label, 'admin tokens');
  await shot(page, 'admin-tokens', label);

  // Audit log: by team (the API's filter) and action (filtered in the page).
  await go(page, '#admin/audit', 'admin/audit');
  const log = await allPages(base, '/v1/audit');
  const total = Number(await page.locator('#audit-summary').getAttribute('data-count'));
  ok(total === log.length, `${label}: the audit view starts with every entry`, { total, api: log.length });
  await page.selectOption('#au-team', id); // a team is applied at once
  await page.waitForFunction((t) => document.body.dataset.ready === 'admin/audit' && location.hash.includes('team=' + t), id, { timeout: 15000 });
  await page.selectOption('#au-action', 'team.update');
  await page.locator('#audit-form button[type="submit"]').click();
  await page.waitForFunction(() => document.body.dataset.ready === 'admin/audit' && location.hash.includes('action=team.update'), null, { timeout: 15000 });
  const teamLog = await allPages(base, `/v1/audit?team=${id}`);
  const wantUpd = teamLog.filter((e) => e.action === 'team.update');
  const actions = await page.locator('td[data-k="audit-action"]').allTextContents();
  const changeText = await textOf(page, '#t-audit tbody td.changes');
  ok(wantUpd.length === 1 && actions.length === 1 && actions[0] === 'team.update' && changeText.includes('budget') && changeText.includes('2000.00'),
    `${label}: the audit filtered to team ${id} and team.update shows the one budget change`, { actions, changeText, api: wantUpd.length });
  await page.selectOption('#au-team', '');
  await page.waitForFunction(() => document.body.dataset.ready === 'admin/audit' && !location.hash.includes('team='), null, { timeout: 15000 });
  await page.selectOption('#au-action', 'allocation.approve');
  await page.locator('#au-since').fill(log[log.length - 1].at.slice(0, 10));
  await page.locator('#audit-form button[type="submit"]').click();
  await page.waitForFunction(() => document.body.dataset.ready === 'admin/audit' && location.hash.includes('allocation.approve'), null, { timeout: 15000 });
  const since = log[log.length - 1].at.slice(0, 10);
  const fresh = await allPages(base, '/v1/audit');
  const wantApprove = fresh.filter((e) => e.action === 'allocation.approve' && e.at.slice(0, 10) >= since);
  const cnt = Number(await page.locator('#audit-summary').getAttribute('data-count'));
  const shownActions = await page.locator('td[data-k="audit-action"]').allTextContents();
  ok(cnt === wantApprove.length && shownActions.length === Math.min(200, cnt) && shownActions.every((x) => x === 'allocation.approve'),
    `${label}: the audit filtered by action and since ${since} equals the API's log filtered the same way`, { cnt, want: wantApprove.length });
  await noOverflow(page, label, 'the audit log');
  await shot(page, 'admin-audit', label);
}

/* A member sees no Finance and no Admin; finance sees Finance, not Admin. */
async function roleViews(browser, base, size, label, tag) {
  const member = await api(base, '/v1/tokens', { method: 'POST', body: { name: `member ${tag}`, role: 'member', teams: ['nlp'] } });
  const fin = await api(base, '/v1/tokens', { method: 'POST', body: { name: `finance ${tag}`, role: 'finance' } });
  for (const [k, role] of [[member.token, 'member'], [fin.token, 'finance']]) {
    const ctx = await browser.newContext({ viewport: size });
    const page = await ctx.newPage();
    const problems = watch(page);
    await signIn(page, base, k);
    const finVis = await page.locator('nav a[data-view="finance"]').isVisible();
    const admVis = await page.locator('nav a[data-view="admin"]').isVisible();
    ok(role === 'member' ? !finVis && !admVis : finVis && !admVis, `${label}: a ${role} token sees ${role === 'member' ? 'neither Finance nor Admin' : 'Finance but not Admin'}`, { finVis, admVis });
    await page.evaluate(() => { location.hash = '#admin'; });
    await page.waitForSelector('body[data-ready="team"]', { timeout: 15000 });
    ok(await page.locator('#view-admin').isHidden() && await page.locator('#view-team').isVisible(), `${label}: a ${role} sent to #admin gets the team view`);
    if (role === 'member') {
      await page.evaluate(() => { location.hash = '#finance'; });
      await page.waitForSelector('body[data-ready="team"]', { timeout: 15000 });
      ok(await page.locator('#view-finance').isHidden(), `${label}: a member sent to #finance gets the team view`);
      await shot(page, 'member-team', label);
      await go(page, '#allocations', 'allocations');
      const teamsShown = await page.locator('#t-hist tbody tr td:nth-child(2)').allTextContents();
      ok(teamsShown.length > 0 && teamsShown.every((x) => x === 'nlp'), `${label}: a member's history holds only its team`, teamsShown.slice(0, 5));
    } else {
      await navTo(page, 'finance');
      const rows = await page.locator('#t-bva tbody tr').count();
      ok(rows === 6, `${label}: finance opens the Finance view with budget versus actual (read from the audit log)`, rows);
      await shot(page, 'finance-role', label);
    }
    // The role probe's 403s are expected; nothing else may fail.
    const real = problems.filter((p) => !/(403|Forbidden).*\/v1\/(tokens|audit\?limit=1)|\/v1\/(tokens|audit\?limit=1).*403|status of 403/.test(p));
    ok(real.length === 0, `${label}: ${role}: no console errors, page errors or failed requests besides the role probe`, real.join('\n'));
    await ctx.close();
  }
}

async function runSize(browser, base, size, label, tag) {
  const ctx = await browser.newContext({ viewport: size, acceptDownloads: true });
  const page = await ctx.newPage();
  const problems = watch(page);
  const expected = [];

  const resp = await page.goto(base + '/');
  const csp = resp.headers()['content-security-policy'] || '';
  ok(resp.status() === 200 && csp.includes("script-src 'self'") && csp.includes("style-src 'self'") && !csp.includes('unsafe-inline'),
    `${label}: / is served with a strict CSP`, csp);
  ok(await page.locator('#token').isVisible(), `${label}: the page asks for a token`);

  await signIn(page, base, TOKEN);
  ok(await page.evaluate(() => sessionStorage.getItem('plinth.token') !== null), `${label}: the token is kept in sessionStorage`);
  ok(await page.locator('nav a[data-view="finance"]').isVisible() && await page.locator('nav a[data-view="admin"]').isVisible(),
    `${label}: the admin sees Finance and Admin`);

  await teamView(page, base, label);
  await financeView(page, base, label);
  await catalogView(page, base, label);
  await historyView(page, base, label);
  await adminViews(page, base, label, tag, expected);

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
  const is422 = (p) => expected.includes(p) || p.includes('status of 422');
  const real = problems.filter((p) => !expected401.includes(p) && !is422(p));
  ok(real.length === 0, `${label}: no console errors, page errors or failed requests`, real.join('\n'));
  await ctx.close();

  await roleViews(browser, base, size, label, tag);
}

async function main() {
  mkdirSync(SHOT_DIR, { recursive: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'plinth-e2e-'));
  let daemon = null;
  let browser = null;
  try {
    daemon = await startDaemon(dir);
    await api(daemon.base, '/v1/teams/bigco', { method: 'PUT', body: { display_name: 'Big Co', budget: { amount: '999999999999', period: 'yearly' } } });
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    await runSize(browser, daemon.base, { width: 1280, height: 800 }, '1280x800', 'desk');
    await runSize(browser, daemon.base, { width: 390, height: 844 }, '390x844', 'phone');
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
