/*
 * app.js - the Plinth dashboard over the public /v1 API.  No framework;
 * Chart.js (window.Chart) draws.  Views: team, allocation history (and one
 * allocation), finance (admin and finance roles), catalog, and admin (teams
 * and budgets, capacity and prices, tokens, audit log; admin role only).
 *
 * Money arrives as exact decimal strings.  It is shown rounded to cents with
 * the currency symbol ("$55,554.20", rounding half away from zero in BigInt)
 * and the exact string in the title (hover); charts alone turn it into
 * numbers, for drawing.  Live accrued cost is computed in integer micro-units
 * with BigInt by the same formula as the daemon.  The token lives in
 * sessionStorage and is sent only as a Bearer header to this origin.
 *
 * The API has no "who am I": the role is learned by asking for the token
 * list (admin only) and one audit entry (admin and finance); the two 403s a
 * member's browser logs are expected.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'plinth.token';
  const COLORS = ['#1f5fbf', '#e8a317', '#2e9d5b', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d', '#d35400'];
  /* Paging bounds: the audit log is oldest first and has only a team filter,
   * allocations only team and status; the rest is filtered here over at
   * most this many pages of 500 (said on screen when the bound is hit). */
  const PAGE = 500;
  const MAX_PAGES = 20;
  const charts = {};
  const state = { role: null, currency: 'USD', teams: null, gpus: null, audit: null, auditTeam: null, lastHistory: '#allocations' };
  let liveTimer = null;

  const $ = (sel) => document.querySelector(sel);
  const $$ = (sel) => Array.from(document.querySelectorAll(sel));
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };

  /* ---- money and time (exact) ---- */

  function micros(s) {
    const neg = s.startsWith('-');
    const [i, f = ''] = (neg ? s.slice(1) : s).split('.');
    const v = BigInt(i) * 1000000n + BigInt((f + '000000').slice(0, 6));
    return neg ? -v : v;
  }
  function fromMicros(v) {
    const neg = v < 0n;
    if (neg) v = -v;
    let f = (v % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
    while (f.length < 2) f += '0';
    return (neg ? '-' : '') + (v / 1000000n).toString() + '.' + f;
  }
  const group3 = (digits) => digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const symbols = {};
  function symbol(cur) {
    if (!(cur in symbols)) {
      let s = cur + ' ';
      try {
        const p = new Intl.NumberFormat('en-US', { style: 'currency', currency: cur }).formatToParts(0).find((x) => x.type === 'currency');
        if (p) s = p.value;
      } catch (e) { /* not an ISO 4217 code: show it as it is */ }
      symbols[cur] = s;
    }
    return symbols[cur];
  }
  /* "55554.200932" -> "$55,554.20": cents, half away from zero. */
  function money(s, cur) {
    if (s === null || s === undefined) return '–';
    let v = micros(String(s));
    const neg = v < 0n;
    if (neg) v = -v;
    const c = (v + 5000n) / 10000n;
    const txt = symbol(cur || state.currency) + group3((c / 100n).toString()) + '.' + (c % 100n).toString().padStart(2, '0');
    return neg && c !== 0n ? '-' + txt : txt;
  }
  /* Writes a rounded amount into a node: the exact value on hover and in data-v. */
  function putMoney(node, s, cur) {
    node.textContent = money(s, cur);
    if (s === null || s === undefined) { node.removeAttribute('title'); return node; }
    node.title = fromMicros(micros(String(s))) + ' ' + (cur || state.currency) + ' (exact)';
    node.dataset.v = s;
    node.classList.add('money');
    return node;
  }
  const num = (s) => Number(s); /* charts only */
  const day = (t) => (t ? t.slice(0, 10) : '–');
  const when = (t) => (t ? t.slice(0, 10) + ' ' + t.slice(11, 16) : '–');
  const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
  function monthStart(y, m) { return new Date(Date.UTC(y, m, 1)).toISOString().slice(0, 10); }
  /* "12.5" percent -> 125000 ppm, exactly (string digits, no float). */
  function pctToPpm(s) {
    const m = /^\s*(\d{1,4})(?:\.(\d{0,4}))?\s*%?\s*$/.exec(s);
    if (!m) return null;
    return Number(m[1]) * 10000 + Number(((m[2] || '') + '0000').slice(0, 4));
  }
  const ppmToPct = (f) => String(Math.round(f * 1e6) / 1e4);

  function periodName(kind, s) {
    const d = new Date(s);
    if (kind === 'quarterly') return d.getUTCFullYear() + ' Q' + (Math.floor(d.getUTCMonth() / 3) + 1);
    if (kind === 'yearly') return String(d.getUTCFullYear());
    if (kind === 'weekly') return 'week of ' + isoDay(s);
    return isoDay(s).slice(0, 7);
  }

  /* ---- API ---- */

  class ApiError extends Error {
    constructor(status, detail, problem) { super(detail); this.status = status; this.problem = problem || null; }
  }

  async function api(path, opts) {
    const o = opts || {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { Authorization: 'Bearer ' + token, Accept: o.text ? 'text/csv' : 'application/json' };
    const init = { method: o.method || 'GET', headers };
    if (o.body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(o.body); }
    const res = await fetch(path, init);
    if (!res.ok) {
      let detail = res.status + ' ' + res.statusText;
      let problem = null;
      try { problem = await res.json(); detail = problem.detail || problem.title || detail; } catch (e) { /* not JSON */ }
      throw new ApiError(res.status, detail, problem);
    }
    if (res.status === 204) { await res.text(); return null; } /* read to the end, so the request completes */
    return o.text ? res.text() : res.json();
  }
  const enc = encodeURIComponent;

  /* Follows next_cursor for at most MAX_PAGES pages; stop(page) may end it early. */
  async function pages(path, stop) {
    const items = [];
    let cursor = null;
    for (let i = 0; i < MAX_PAGES; i++) {
      const sep = path.includes('?') ? '&' : '?';
      const p = await api(path + sep + 'limit=' + PAGE + (cursor ? '&cursor=' + enc(cursor) : ''));
      items.push(...p.items);
      cursor = p.next_cursor;
      if (!cursor || (stop && stop(p.items))) return { items, complete: true };
    }
    return { items, complete: !cursor };
  }

  async function whoAmI() {
    const forbidden = (e) => e instanceof ApiError && e.status === 403;
    try { await api('/v1/tokens'); return 'admin'; } catch (e) { if (!forbidden(e)) throw e; }
    try { await api('/v1/audit?limit=1'); return 'finance'; } catch (e) { if (!forbidden(e)) throw e; }
    return 'member';
  }
  const mayFinance = () => state.role === 'admin' || state.role === 'finance';

  function showStatus(msg) {
    const s = $('#status');
    s.textContent = msg || '';
    s.hidden = !msg;
  }

  function fail(err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut('The token was refused; sign in again.');
      return;
    }
    showStatus('Could not load: ' + (err && err.message ? err.message : String(err)));
  }

  /* ---- charts ---- */

  /* Draws each bar's value (a string from dataset.labelsText) at its end. */
  const barText = {
    id: 'barText',
    afterDatasetsDraw(chart) {
      const ctx = chart.ctx;
      chart.data.datasets.forEach((ds, i) => {
        if (!ds.labelsText) return;
        const meta = chart.getDatasetMeta(i);
        meta.data.forEach((bar, j) => {
          const t = ds.labelsText[j];
          if (!t) return;
          ctx.save();
          ctx.fillStyle = '#16181d';
          ctx.font = '12px system-ui, sans-serif';
          ctx.textBaseline = 'middle';
          const horizontal = chart.options.indexAxis === 'y';
          if (horizontal) ctx.fillText(t, Math.min(bar.x + 6, chart.chartArea.right - ctx.measureText(t).width), bar.y);
          else { ctx.textAlign = 'center'; ctx.fillText(t, bar.x, Math.max(bar.y - 9, chart.chartArea.top + 6)); }
          ctx.restore();
        });
      });
    },
  };

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    config.plugins = (config.plugins || []).concat([barText]);
    charts[id] = new window.Chart(document.getElementById(id), config);
  }
  const moneyTick = (v) => money(String(Math.round(v * 100) / 100)).replace(/\.00$/, '');

  /* ---- tables ---- */

  function fill(tbody, rows, cols, emptyText) {
    tbody.replaceChildren();
    if (rows.length === 0) {
      const tr = el('tr');
      const td = el('td', emptyText || 'Nothing to show', 'empty');
      td.colSpan = cols;
      tr.append(td);
      tbody.append(tr);
    } else {
      for (const cells of rows) {
        const tr = el('tr');
        for (const c of cells) tr.append(c);
        tbody.append(tr);
      }
    }
    markOverflow();
  }
  function cell(text, cls, key, raw) {
    const td = el('td', text, cls);
    if (key) td.dataset.k = key;
    if (raw !== undefined) td.dataset.v = raw;
    return td;
  }
  function moneyCell(s, key, cls, cur) {
    const td = el('td', null, 'num' + (cls ? ' ' + cls : ''));
    if (key) td.dataset.k = key;
    return putMoney(td, s, cur);
  }
  function usedCell(usedPct, low, high, optimum) {
    const m = el('meter');
    m.min = 0; m.max = 100; m.low = low; m.high = high; m.optimum = optimum; m.value = Math.min(100, usedPct);
    const td = el('td');
    td.append(m, el('span', usedPct.toFixed(1) + '%', 'pct'));
    return td;
  }
  function usedPct(t) {
    return Number((micros(t.spent) + micros(t.reserved)) * 1000n / (micros(t.budget.amount) || 1n)) / 10;
  }

  /* A table wider than its box scrolls sideways: say so above it (and the
   * CSS shades the edge that has more), re-checked on every render and resize. */
  function markOverflow() {
    for (const box of $$('.scroll')) {
      let hint = box.previousElementSibling;
      if (!hint || !hint.classList.contains('scroll-hint')) {
        hint = el('p', 'Scroll sideways for more columns →', 'scroll-hint');
        hint.setAttribute('aria-hidden', 'true');
        box.before(hint);
      }
      const more = box.scrollWidth > box.clientWidth + 1;
      box.classList.toggle('more', more);
      hint.hidden = !more;
    }
  }

  /* ---- team view ---- */

  async function loadTeams(fresh) {
    if (!state.teams || fresh) {
      state.teams = (await api('/v1/teams')).items;
      if (state.teams.length) state.currency = state.teams[0].currency;
    }
    return state.teams;
  }
  async function loadGpus(fresh) {
    if (!state.gpus || fresh) state.gpus = (await api('/v1/gpu-types')).items;
    return state.gpus;
  }
  function teamOptions(sel, teams, anyText) {
    const keep = sel.value;
    const opts = teams.map((t) => { const o = el('option', t.display_name + ' (' + t.id + ')'); o.value = t.id; return o; });
    if (anyText) { const o = el('option', anyText); o.value = ''; opts.unshift(o); }
    sel.replaceChildren(...opts);
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  }
  function options(sel, values, anyText, current) {
    const opts = [el('option', anyText)];
    opts[0].value = '';
    for (const v of values) { const o = el('option', v); o.value = v; opts.push(o); }
    sel.replaceChildren(...opts);
    sel.value = values.includes(current) ? current : '';
  }

  function setKpi(key, raw, cur) {
    putMoney(document.querySelector('[data-k="' + key + '"]'), raw, cur);
  }
  /* A KPI amount stays on one line: a long one (a trillion-dollar budget on
   * a phone) gets a smaller font until it fits its card, never a line break. */
  function fitKpis() {
    for (const s of $$('.kpi strong')) {
      s.style.fontSize = '';
      const room = s.parentElement.clientWidth - 2 * parseFloat(getComputedStyle(s.parentElement).paddingLeft);
      for (let px = parseFloat(getComputedStyle(s).fontSize), i = 0; i < 12 && s.offsetParent !== null && s.getBoundingClientRect().width > room && px > 10; i++) {
        px -= 1;
        s.style.fontSize = px + 'px';
      }
    }
  }

  function accruedNow(a, nowMs) {
    if (a.status !== 'running' || !a.started_at) return micros(a.accrued_cost);
    const started = Date.parse(a.started_at);
    const secs = BigInt(Math.max(0, Math.floor((nowMs - started) / 1000)));
    const maxUs = BigInt(Math.round(Number(a.max_runtime_hours) * 3600)) * 1000000n;
    let us = secs * 1000000n;
    if (us > maxUs) us = maxUs;
    /* gpu_count x price x hours, rounded half up to a micro-unit */
    const num2 = BigInt(a.gpu_count) * micros(a.price_per_gpu_hour) * us;
    const den = 3600n * 1000000n;
    return (num2 + den / 2n) / den;
  }

  async function renderTeam() {
    const teams = await loadTeams();
    const sel = $('#team-select');
    if (sel.options.length !== teams.length) {
      teamOptions(sel, teams);
      const saved = sessionStorage.getItem('plinth.team');
      if (saved && teams.some((t) => t.id === saved)) sel.value = saved;
    }
    if (teams.length === 0) { showStatus('No team is visible to this token.'); return; }
    const id = sel.value;
    sessionStorage.setItem('plinth.team', id);
    const t = await api('/v1/teams/' + enc(id));
    const cur = t.currency;
    $('#team-h').textContent = 'Team ' + t.display_name;
    $('#team-h').dataset.team = t.id;
    $('#team-period').textContent = t.budget.period + ' period ' + day(t.period_start) + ' to ' + day(t.period_end) +
      ' (end exclusive) · amounts in ' + cur + ', rounded to cents (hover for the exact amount)';
    setKpi('team-budget', t.budget.amount, cur);
    setKpi('team-spent', t.spent, cur);
    setKpi('team-reserved', t.reserved, cur);
    setKpi('team-available', t.available, cur);
    setKpi('team-accrued', t.accrued, cur);
    setKpi('team-burn', t.burn_rate_per_day, cur);
    setKpi('team-forecast', t.forecast_period_end, cur);
    const ro = $('#team-runout');
    if (t.budget_exhausted_at) {
      ro.textContent = 'At this rate the budget runs out on ' + day(t.budget_exhausted_at) + '.';
      ro.className = 'runout warn';
      ro.dataset.v = t.budget_exhausted_at;
    } else {
      ro.textContent = 'At this rate the budget lasts to the end of the period.';
      ro.className = 'runout ok';
      ro.dataset.v = '';
    }

    draw('c-gauge', {
      type: 'doughnut',
      data: { labels: ['Spent', 'Reserved', 'Available'],
        datasets: [{ data: [num(t.spent), num(t.reserved), num(t.available)], backgroundColor: ['#1f5fbf', '#e8a317', '#2e9d5b'] }] },
      options: { rotation: -90, circumference: 180, cutout: '60%', plugins: { legend: { position: 'bottom' },
        tooltip: { callbacks: { label: (c) => c.label + ': ' + money([t.spent, t.reserved, t.available][c.dataIndex], cur) } } } },
    });

    const range = '&from=' + enc(t.period_start) + '&to=' + enc(t.period_end);
    const [byDay, byGpu, running, approved] = await Promise.all([
      api('/v1/costs?group_by=day&team=' + enc(id) + range),
      api('/v1/costs?group_by=gpu_type&team=' + enc(id) + range),
      api('/v1/allocations?team=' + enc(id) + '&status=running&limit=100'),
      api('/v1/allocations?team=' + enc(id) + '&status=approved&limit=100'),
    ]);

    /* cumulative spend per day of the period, budget line, forecast line */
    const perDay = new Map(byDay.items.map((r) => [r.key, micros(r.spent) + micros(r.accrued)]));
    const labels = [];
    const cumulative = [];
    const forecast = [];
    const start = Date.parse(t.period_start);
    const end = Date.parse(t.period_end);
    const today = isoDay(Date.now());
    let acc = 0n;
    let todayIdx = -1;
    for (let d = start; d < end; d += 86400000) {
      const k = isoDay(d);
      labels.push(k);
      if (k <= today) {
        acc += perDay.get(k) || 0n;
        cumulative.push(num(fromMicros(acc)));
        todayIdx = labels.length - 1;
      } else {
        cumulative.push(null);
      }
    }
    const fc = num(t.forecast_period_end);
    const last = todayIdx >= 0 ? cumulative[todayIdx] : 0;
    for (let i = 0; i < labels.length; i++) {
      if (i < todayIdx) forecast.push(null);
      else if (i === todayIdx) forecast.push(last);
      else forecast.push(last + (fc - last) * (i - todayIdx) / Math.max(1, labels.length - 1 - todayIdx));
    }
    /* Spend far below the budget is a flat line on the budget's scale: then
     * the chart zooms to the spend and says where the budget is; a button
     * shows the whole budget. */
    const budgetN = num(t.budget.amount);
    const top = Math.max(fc, last, 0);
    const small = top * 4 < budgetN;
    const zoom = small && !state.wholeBudget;
    const btn = $('#cum-scale');
    btn.hidden = !small;
    btn.textContent = zoom ? 'Show the whole budget' : 'Zoom to the spend';
    $('#cum-note').textContent = !small ? '' : zoom
      ? 'Zoomed to the spend: the budget (' + money(t.budget.amount, cur) + ') is above this scale; the forecast is ' + (100 * fc / budgetN).toFixed(1) + '% of it.'
      : 'The whole budget: spend so far is ' + (100 * last / budgetN).toFixed(1) + '% of it.';
    $('#c-cumulative').dataset.zoom = zoom ? '1' : '';
    draw('c-cumulative', {
      type: 'line',
      data: { labels, datasets: [
        { label: 'Spent (cumulative)', data: cumulative, borderColor: '#1f5fbf', backgroundColor: '#1f5fbf', pointRadius: 0 },
        { label: 'Forecast', data: forecast, borderColor: '#e8a317', borderDash: [6, 4], pointRadius: 0 },
      ].concat(zoom ? [] : [{ label: 'Budget', data: labels.map(() => budgetN), borderColor: '#b3261e', pointRadius: 0 }]) },
      options: { scales: { x: { ticks: { maxTicksLimit: 8 } },
        y: { beginAtZero: true, max: zoom ? undefined : Math.max(budgetN, top) * 1.05, grace: '5%', ticks: { callback: moneyTick } } },
      plugins: { legend: { position: 'bottom' } } },
    });

    draw('c-gpu', {
      type: 'bar',
      data: { labels: byGpu.items.map((r) => r.key),
        datasets: [{ label: 'Spent + accrued', data: byGpu.items.map((r) => num(r.spent) + num(r.accrued)), backgroundColor: COLORS,
          labelsText: byGpu.items.map((r) => money(fromMicros(micros(r.spent) + micros(r.accrued)), cur)) }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, grace: '10%', ticks: { callback: moneyTick } } } },
    });

    const allocs = running.items.concat(approved.items);
    const tbody = $('#t-allocs tbody');
    const rows = allocs.map((a) => {
      const acc2 = moneyCell(fromMicros(accruedNow(a, Date.now())), 'alloc-accrued', 'live', cur);
      acc2.dataset.id = a.id;
      return [allocLink(a.id), cell(a.project), cell(a.gpu_count + ' × ' + a.gpu_type), cell(a.status),
        moneyCell(a.price_per_gpu_hour, null, null, cur), moneyCell(a.estimated_cost, null, null, cur), acc2];
    });
    fill(tbody, rows, 7);
    if (liveTimer) clearInterval(liveTimer);
    liveTimer = setInterval(() => {
      const now = Date.now();
      for (const a of allocs) {
        if (a.status !== 'running') continue;
        const td = tbody.querySelector('td[data-id="' + a.id + '"]');
        if (td) putMoney(td, fromMicros(accruedNow(a, now)), cur);
      }
    }, 1000);
  }

  function allocLink(id) {
    const td = el('td');
    const a = el('a', id);
    a.href = '#allocation/' + enc(id);
    a.dataset.k = 'alloc-link';
    td.append(a);
    return td;
  }

  /* ---- allocation history ---- */

  function hashParams() {
    const q = location.hash.indexOf('?');
    return new URLSearchParams(q >= 0 ? location.hash.slice(q + 1) : '');
  }
  function defaultFrom() {
    const n = new Date();
    return monthStart(n.getUTCFullYear(), n.getUTCMonth() - 1);
  }
  /* "key" or "key=value" against an allocation's labels. */
  function labelMatch(labels, f) {
    if (!f) return true;
    const i = f.indexOf('=');
    if (i < 0) return Object.prototype.hasOwnProperty.call(labels, f.trim());
    const k = f.slice(0, i).trim();
    return Object.prototype.hasOwnProperty.call(labels, k) && labels[k] === f.slice(i + 1).trim();
  }

  async function renderAllocations() {
    const p = hashParams();
    const f = {
      from: p.get('from') || defaultFrom(), to: p.get('to') || isoDay(Date.now()), team: p.get('team') || '',
      status: p.get('status') || '', project: p.get('project') || '', gpu: p.get('gpu') || '', label: p.get('label') || '',
    };
    state.lastHistory = location.hash || '#allocations';
    const [teams, gpus] = await Promise.all([loadTeams(), loadGpus()]);
    teamOptions($('#hist-team'), teams, 'All teams');
    $('#hist-team').value = f.team;
    $('#hist-from').value = f.from;
    $('#hist-to').value = f.to;
    $('#hist-status').value = f.status;
    $('#hist-label').value = f.label;
    options($('#hist-gpu'), gpus.map((g) => g.id), 'Any GPU type', f.gpu);

    const fromMs = Date.parse(f.from + 'T00:00:00Z');
    const toMs = Date.parse(f.to + 'T00:00:00Z') + 86400000;
    let path = '/v1/allocations';
    const q = [];
    if (f.team) q.push('team=' + enc(f.team));
    if (f.status) q.push('status=' + enc(f.status));
    if (q.length) path += '?' + q.join('&');
    /* Newest first: stop once a page reaches back before `from`. */
    const got = await pages(path, (items) => items.length > 0 && Date.parse(items[items.length - 1].approved_at) < fromMs);
    const inRange = got.items.filter((a) => { const t = Date.parse(a.approved_at); return t >= fromMs && t < toMs; });
    options($('#hist-project'), [...new Set(inRange.map((a) => a.project))].sort(), 'Any project', f.project);
    const shown = inRange.filter((a) => (!f.project || a.project === f.project) && (!f.gpu || a.gpu_type === f.gpu) && labelMatch(a.labels, f.label));
    let total = 0n;
    for (const a of shown) total += micros(a.accrued_cost);
    const sum = $('#hist-summary');
    sum.replaceChildren(el('span', shown.length + ' allocation' + (shown.length === 1 ? '' : 's') + ' approved ' + f.from + ' to ' + f.to + ', cost '));
    sum.append(putMoney(el('strong', null), fromMicros(total)));
    sum.dataset.count = String(shown.length);
    sum.append(el('span', got.complete ? '' : ' · only the newest ' + got.items.length + ' allocations were read; narrow the dates or pick a team to see older ones'));
    fill($('#t-hist tbody'), shown.map((a) => [allocLink(a.id), cell(a.team), cell(a.project, null, 'hist-project'),
      cell(a.gpu_count + ' × ' + a.gpu_type, null, 'hist-gpu'), cell(a.status), cell(when(a.approved_at)),
      moneyCell(a.estimated_cost), moneyCell(a.accrued_cost, 'hist-cost'),
      cell(Object.entries(a.labels).map(([k, v]) => k + '=' + v).join(', '), 'wrap')]), 9, 'No allocation matches these filters');
  }

  function historySubmit(ev) {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, sel] of [['from', '#hist-from'], ['to', '#hist-to'], ['team', '#hist-team'], ['status', '#hist-status'],
      ['project', '#hist-project'], ['gpu', '#hist-gpu'], ['label', '#hist-label']]) {
      const v = $(sel).value.trim();
      if (v) q.set(k, v);
    }
    navigate('#allocations?' + q.toString());
  }

  async function renderAllocation(id) {
    $('#alloc-back').href = state.lastHistory;
    const a = await api('/v1/allocations/' + enc(id));
    $('#alloc-h').textContent = 'Allocation ' + a.id;
    $('[data-k="alloc-status"]').textContent = a.status;
    setKpi('alloc-estimated', a.estimated_cost);
    setKpi('alloc-cost', a.actual_cost !== null ? a.actual_cost : fromMicros(accruedNow(a, Date.now())));
    setKpi('alloc-price', a.price_per_gpu_hour);
    const facts = [
      ['Team', a.team], ['Project', a.project], ['GPUs', a.gpu_count + ' × ' + a.gpu_type],
      ['Max runtime', a.max_runtime_hours + ' h'], ['Purpose', a.purpose || '–'],
      ['Labels', Object.entries(a.labels).map(([k, v]) => k + '=' + v).join(', ') || '–'],
      ['Approved', when(a.approved_at)], ['Start by (else it expires)', when(a.expires_at)],
      ['Started', when(a.started_at)], ['Ended', when(a.ended_at)],
      ['Charged to the budget period from', day(a.period_start)],
      ['Actual cost', a.actual_cost], ['Created by (token id)', a.created_by],
      ['Managed by', a.managed_by === 'controller' ? 'plinth controller (a job)' : 'by hand'],
    ];
    const dl = $('#alloc-dl');
    dl.replaceChildren();
    for (const [k, v] of facts) {
      const dd = el('dd');
      if (k === 'Actual cost') putMoney(dd, v); else dd.textContent = v;
      dd.dataset.k = 'alloc-' + k.toLowerCase().replace(/[^a-z]+/g, '-');
      dl.append(el('dt', k), dd);
    }
  }

  /* ---- finance view ---- */

  async function renderFinance() {
    const teams = await loadTeams(true);
    fill($('#t-teams tbody'), teams.map((t) => [cell(t.display_name + ' (' + t.id + ')'),
      moneyCell(t.budget.amount, 'fin-budget', null, t.currency), moneyCell(t.spent, 'fin-spent', null, t.currency),
      moneyCell(t.reserved, 'fin-reserved', null, t.currency), moneyCell(t.available, 'fin-available', null, t.currency),
      moneyCell(t.forecast_period_end, null, null, t.currency), usedCell(usedPct(t), 50, 80, 0)]), 7);

    /* Each team against its own budget (100%): a small spend next to a big
     * budget stays readable, and teams of any size compare. */
    const share = (v, t) => Number(micros(v) * 10000n / (micros(t.budget.amount) || 1n)) / 100;
    $('#box-teams').style.height = Math.max(160, 70 + 44 * teams.length) + 'px';
    draw('c-teams', {
      type: 'bar',
      data: { labels: teams.map((t) => t.id), datasets: [
        { label: 'Spent', data: teams.map((t) => share(t.spent, t)), backgroundColor: '#1f5fbf', stack: 's' },
        { label: 'Reserved', data: teams.map((t) => share(t.reserved, t)), backgroundColor: '#e8a317', stack: 's',
          labelsText: teams.map((t) => usedPct(t).toFixed(1) + '% of ' + money(t.budget.amount, t.currency)) },
      ] },
      options: { indexAxis: 'y', scales: {
        x: { stacked: true, beginAtZero: true, suggestedMax: 110, ticks: { callback: (v) => v + '%' } },
        y: { stacked: true, ticks: { autoSkip: false } } },
      plugins: { legend: { position: 'bottom' }, tooltip: { callbacks: { label: (c) => {
        const t = teams[c.dataIndex];
        const v = c.datasetIndex === 0 ? t.spent : t.reserved;
        return c.dataset.label + ': ' + money(v, t.currency) + ' of ' + money(t.budget.amount, t.currency) + ' (' + c.raw.toFixed(1) + '%)';
      } } } } },
      plugins: [{ id: 'budgetLine', afterDatasetsDraw(chart) {
        const x = chart.scales.x.getPixelForValue(100);
        const ctx = chart.ctx;
        ctx.save();
        ctx.strokeStyle = '#b3261e'; ctx.lineWidth = 2; ctx.setLineDash([5, 3]);
        ctx.beginPath(); ctx.moveTo(x, chart.chartArea.top); ctx.lineTo(x, chart.chartArea.bottom); ctx.stroke();
        ctx.restore();
      } }],
    });

    const bvaSel = $('#bva-team');
    teamOptions(bvaSel, teams);
    const saved = sessionStorage.getItem('plinth.team'); /* the team last looked at */
    if (!bvaSel.dataset.touched && saved && teams.some((t) => t.id === saved)) bvaSel.value = saved;

    const now = new Date();
    const months = [];
    for (let i = 5; i >= 0; i--) months.push([now.getUTCFullYear(), now.getUTCMonth() - i]);
    const [res, proj] = await Promise.all([
      Promise.all(months.map(([y, m]) => api('/v1/costs?group_by=team&month=' + monthStart(y, m).slice(0, 7)))),
      api('/v1/costs?group_by=project'),
      renderBudgetVsActual(),
    ]);
    const labels = months.map(([y, m]) => monthStart(y, m).slice(0, 7));
    draw('c-mom', {
      type: 'bar',
      data: { labels, datasets: teams.map((t, i) => ({
        label: t.id, backgroundColor: COLORS[i % COLORS.length], stack: 'm',
        data: res.map((r) => { const it = r.items.find((x) => x.key === t.id); return it ? num(it.spent) + num(it.accrued) : 0; }),
      })) },
      options: { plugins: { legend: { position: 'bottom' } }, scales: { y: { beginAtZero: true, ticks: { callback: moneyTick } } } },
    });

    const top = proj.items.slice().sort((a, b) => {
      const d = micros(b.spent) - micros(a.spent);
      return d > 0n ? 1 : d < 0n ? -1 : a.key.localeCompare(b.key);
    }).slice(0, 10);
    fill($('#t-projects tbody'), top.map((p) => [cell(p.key), moneyCell(p.spent, 'proj-spent'),
      moneyCell(p.reserved), cell(p.gpu_hours, 'num')]), 4);
  }

  /* Budget versus actual from GET /v1/costs/periods: per period the budget
   * in force at its end and what was charged to it (the budget view). */
  async function renderBudgetVsActual() {
    const id = $('#bva-team').value;
    const t = (state.teams || []).find((x) => x.id === id);
    if (!t) return;
    const kind = t.budget.period;
    const hist = await api('/v1/costs/periods?limit=6&team=' + enc(id));
    const periods = hist.items.slice().reverse(); /* oldest first, for the chart */
    const rows = [];
    const actual = [];
    const reserved = [];
    const budgets = [];
    const labels = [];
    periods.forEach((p) => {
      const budget = p.budget;
      const act = micros(p.actual);
      const res = micros(p.reserved);
      labels.push(periodName(kind, Date.parse(p.period_start)) + (p.current ? ' (now)' : ''));
      actual.push(num(p.actual));
      reserved.push(num(p.reserved));
      budgets.push(budget === null ? null : num(budget));
      const used = budget === null ? null : Number((act + res) * 1000n / (micros(budget) || 1n)) / 10;
      const tr = [cell(labels[labels.length - 1], null, 'bva-period'),
        budget === null ? cell('no budget yet', 'num muted') : moneyCell(budget, 'bva-budget'),
        moneyCell(p.actual, 'bva-actual'), moneyCell(p.reserved),
        budget === null ? cell('–', 'num') : moneyCell(fromMicros(micros(budget) - act - res), 'bva-left', micros(budget) - act - res < 0n ? 'over' : ''),
        used === null ? cell('–') : usedCell(used, 80, 100, 0)];
      rows.push(tr);
    });
    fill($('#t-bva tbody'), rows.reverse(), 6);
    $('#t-bva').dataset.team = id;
    $('#bva-note').textContent = 'By budget period: actual is spent plus accrued of the allocations approved in each ' + kind +
      ' period (GET /v1/costs/periods), so an allocation that runs on into the next period counts in the one it was charged to; ' +
      'left is budget − actual − reserved; the budget is the one in force at the period’s end, from the audit log' +
      (hist.budget_history_complete ? '.' : ' (the log was read in part: older budgets may be missing).');
    draw('c-bva', {
      data: { labels, datasets: [
        { type: 'line', label: 'Budget', data: budgets, borderColor: '#b3261e', backgroundColor: '#b3261e', stepped: 'middle', pointRadius: 4, spanGaps: false },
        { type: 'bar', label: 'Actual', data: actual, backgroundColor: '#1f5fbf', stack: 'a',
          labelsText: actual.map((v, i) => (budgets[i] ? Math.round((100 * (v + reserved[i])) / budgets[i]) + '%' : '')) },
        { type: 'bar', label: 'Reserved', data: reserved, backgroundColor: '#e8a317', stack: 'a' },
      ] },
      options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { callback: moneyTick } } },
        plugins: { legend: { position: 'bottom' }, tooltip: { callbacks: { label: (c) => c.dataset.label + ': ' + (c.raw === null ? '–' : moneyTick(c.raw)) } } } },
    });
  }

  async function exportFocus(monthsBack) {
    const now = new Date();
    const y = now.getUTCFullYear();
    const m = now.getUTCMonth() - monthsBack;
    const from = monthStart(y, m);
    try {
      const csv = await api('/v1/costs/export?format=focus&month=' + from.slice(0, 7), { text: true });
      const url = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
      const a = el('a');
      a.href = url;
      a.download = 'plinth-focus-' + from.slice(0, 7) + '.csv';
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
      showStatus('');
    } catch (err) { fail(err); }
  }

  /* ---- catalog view ---- */

  async function renderCatalog() {
    const g = await loadGpus(true);
    if (g.length) state.currency = g[0].currency;
    fill($('#t-gpus tbody'), g.map((x) => {
      const pct = x.capacity > 0 ? (100 * x.allocated) / x.capacity : 0;
      const name = cell(x.name, 'wrap');
      name.append(el('br'), el('small', x.id, 'muted'));
      return [name, moneyCell(x.price_per_gpu_hour, 'gpu-price', null, x.currency),
        cell(x.price_date, 'opt'), cell(x.capacity, 'num', 'gpu-capacity', x.capacity), cell(x.allocated, 'num', 'gpu-allocated', x.allocated),
        usedCell(pct, 60, 90, 50)];
    }), 6);
    draw('c-util', {
      type: 'bar',
      data: { labels: g.map((x) => x.id), datasets: [
        { label: 'Allocated', data: g.map((x) => x.allocated), backgroundColor: '#1f5fbf' },
        { label: 'Capacity', data: g.map((x) => x.capacity), backgroundColor: '#c9d3e3' },
      ] },
      options: { indexAxis: 'y', plugins: { legend: { position: 'bottom' } },
        scales: { x: { beginAtZero: true }, y: { ticks: { autoSkip: false } } } },
    });
  }

  /* ---- admin view ---- */

  function say(msg, bad) {
    const m = $('#admin-msg');
    m.textContent = msg;
    m.className = 'msg' + (bad ? ' error' : msg ? ' ok' : '');
  }
  /* A refused write: the problem's detail on top, each field's message under its input. */
  function formErrors(form, err) {
    for (const s of form.querySelectorAll('.field-error')) s.textContent = '';
    for (const i of form.querySelectorAll('[aria-invalid]')) i.removeAttribute('aria-invalid');
    if (!err) return;
    const errs = (err.problem && Array.isArray(err.problem.errors)) ? err.problem.errors : [];
    const elsewhere = [];
    for (const e of errs) {
      const base = String(e.field).replace(/\[\d+\]$/, '');
      const slot = form.querySelector('.field-error[data-field="' + base + '"]');
      if (!slot) elsewhere.push(e.field + ': ' + e.message);
      if (slot) {
        slot.textContent = (slot.textContent ? slot.textContent + '; ' : '') + e.message;
        const input = slot.parentElement.querySelector('input, select');
        if (input) input.setAttribute('aria-invalid', 'true');
      }
    }
    const marked = errs.length - elsewhere.length;
    say('Not saved: ' + (errs.length ? (marked ? 'see the marked field' + (marked > 1 ? 's' : '') + (elsewhere.length ? '; ' : '') : '') +
      elsewhere.join('; ') : err.message), true);
  }
  const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

  async function renderAdmin(sub) {
    const name = ['teams', 'gpus', 'tokens', 'audit'].includes(sub) ? sub : 'teams';
    if (state.adminSub !== name) { say(''); hideSecret(); } /* a message belongs to the section it came from */
    state.adminSub = name;
    for (const s of $$('#view-admin .sub')) s.hidden = s.id !== 'admin-' + name;
    for (const a of $$('.subnav a')) {
      if (a.dataset.sub === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    await { teams: adminTeams, gpus: adminGpus, tokens: adminTokens, audit: adminAudit }[name]();
  }

  /* A table cell holding one button; data-<key>=<id> lets tests and CSS find it. */
  function buttonCell(text, cls, aria, key, id, onClick) {
    const b = el('button', text, cls);
    b.type = 'button';
    b.dataset[key] = id;
    b.setAttribute('aria-label', aria);
    b.addEventListener('click', onClick);
    const td = el('td');
    td.append(b);
    return td;
  }

  async function adminTeams() {
    const teams = await loadTeams(true);
    fill($('#t-admin-teams tbody'), teams.map((t) => {
      const act = buttonCell('Edit', 'small', 'Edit team ' + t.id, 'team', t.id, () => editTeam(t));
      return [act, cell(t.display_name + ' (' + t.id + ')', 'wrap'), moneyCell(t.budget.amount, 'adm-budget', null, t.currency),
        cell(t.budget.period), cell(t.alert_thresholds.map((x) => ppmToPct(x) + '%').join(', ')), usedCell(usedPct(t), 50, 80, 0)];
    }), 6);
  }
  function editTeam(t) {
    const f = $('#team-form');
    formErrors(f, null);
    f.dataset.mode = t ? 'edit' : 'new';
    $('#team-form-h').textContent = t ? 'Edit team ' + t.id : 'New team';
    $('#tf-id').value = t ? t.id : '';
    $('#tf-id').readOnly = !!t;
    $('#tf-name').value = t ? t.display_name : '';
    $('#tf-amount').value = t ? fromMicros(micros(t.budget.amount)).replace(/\.00$/, '') : '';
    $('#tf-period').value = t ? t.budget.period : 'monthly';
    $('#tf-alerts').value = t ? t.alert_thresholds.map(ppmToPct).join(', ') : '50, 80, 100';
    $('#tf-save').textContent = t ? 'Save team' : 'Create team';
    $('#tf-cancel').hidden = !t;
    if (t) $('#tf-amount').focus();
  }
  async function saveTeam(ev) {
    ev.preventDefault();
    const f = $('#team-form');
    formErrors(f, null);
    const id = $('#tf-id').value.trim();
    if (!LABEL.test(id)) {
      formErrors(f, new ApiError(0, 'check the team id', { errors: [{ field: 'id', message: 'use lower-case letters, digits and "-" (at most 63), starting and ending with a letter or digit' }] }));
      return;
    }
    const th = $('#tf-alerts').value.split(',').map((x) => x.trim()).filter((x) => x !== '');
    const ppm = th.map(pctToPpm);
    if (ppm.some((x) => x === null)) {
      formErrors(f, new ApiError(0, 'check the alert thresholds', { errors: [{ field: 'alert_thresholds', message: 'percentages like 50, 80, 100 (at most 4 decimals)' }] }));
      return;
    }
    const body = { display_name: $('#tf-name').value.trim(), budget: { amount: $('#tf-amount').value.trim().replace(/,/g, ''), period: $('#tf-period').value },
      alert_thresholds: ppm.map((x) => x / 1e6) };
    try {
      /* An existing team is patched: what the form does not show (admins,
       * namespaces) stays as it is. */
      const t = await api('/v1/teams/' + enc(id), { method: $('#tf-id').readOnly ? 'PATCH' : 'PUT', body });
      state.teams = null;
      editTeam(null);
      await adminTeams();
      say('Saved team ' + t.id + ': budget ' + money(t.budget.amount, t.currency) + ' ' + t.budget.period + '.');
    } catch (err) { if (err instanceof ApiError && err.status === 401) fail(err); else formErrors(f, err); }
  }

  async function adminGpus() {
    const g = await loadGpus(true);
    fill($('#t-admin-gpus tbody'), g.map((x) => {
      const act = buttonCell('Edit', 'small', 'Edit GPU type ' + x.id, 'gpu', x.id, () => editGpu(x));
      const name = cell(x.name, 'wrap');
      name.append(el('br'), el('small', x.id, 'muted'));
      const src = cell(x.price_date, 'wrap');
      src.append(el('br'), el('small', x.price_source, 'muted'));
      return [act, name, moneyCell(x.price_per_gpu_hour, 'adm-price', null, x.currency), src,
        cell(x.capacity, 'num', 'adm-capacity', x.capacity), cell(x.allocated, 'num')];
    }), 6);
  }
  function editGpu(x) {
    const f = $('#gpu-form');
    formErrors(f, null);
    $('#gpu-form-h').textContent = x ? 'Edit GPU type ' + x.id : 'New GPU type';
    $('#gf-id').value = x ? x.id : '';
    $('#gf-id').readOnly = !!x;
    $('#gf-name').value = x ? x.name : '';
    $('#gf-price').value = x ? x.price_per_gpu_hour : '';
    $('#gf-capacity').value = x ? String(x.capacity) : '';
    $('#gf-date').value = x ? x.price_date : '';
    $('#gf-save').textContent = x ? 'Save GPU type' : 'Add GPU type';
    $('#gf-cancel').hidden = !x;
    if (x) $('#gf-capacity').focus();
  }
  async function saveGpu(ev) {
    ev.preventDefault();
    const f = $('#gpu-form');
    formErrors(f, null);
    const id = $('#gf-id').value.trim();
    const cap = $('#gf-capacity').value.trim();
    const errs = [];
    if (!LABEL.test(id)) errs.push({ field: 'id', message: 'use lower-case letters, digits and "-", like h200-141gb' });
    if (!/^\d{1,7}$/.test(cap)) errs.push({ field: 'capacity', message: 'a whole number of GPUs, 0 to 1000000' });
    if (errs.length) { formErrors(f, new ApiError(0, 'check the form', { errors: errs })); return; }
    const body = { name: $('#gf-name').value.trim(), price_per_gpu_hour: $('#gf-price').value.trim(), capacity: Number(cap) };
    if ($('#gf-date').value) body.price_date = $('#gf-date').value;
    try {
      const g = await api('/v1/gpu-types/' + enc(id), { method: $('#gf-id').readOnly ? 'PATCH' : 'PUT', body });
      state.gpus = null;
      editGpu(null);
      await adminGpus();
      say('Saved GPU type ' + g.id + ': ' + g.capacity + ' GPUs at ' + money(g.price_per_gpu_hour, g.currency) + ' per GPU-hour.');
    } catch (err) { if (err instanceof ApiError && err.status === 401) fail(err); else formErrors(f, err); }
  }

  async function adminTokens() {
    const [tokens, teams] = await Promise.all([api('/v1/tokens'), loadTeams()]);
    const box = $('#kf-teams');
    if (box.children.length !== teams.length) {
      box.replaceChildren(...teams.map((t) => {
        const l = el('label', null, 'check');
        const c = el('input');
        c.type = 'checkbox'; c.value = t.id; c.name = 'teams';
        l.append(c, document.createTextNode(' ' + t.id));
        return l;
      }));
    }
    fill($('#t-tokens tbody'), tokens.items.map((k) => {
      const stateTd = cell(k.revoked_at ? 'Revoked ' + when(k.revoked_at) : 'Active', k.revoked_at ? 'revoked' : 'active', 'tok-state');
      const act = k.revoked_at ? cell('revoked', 'muted')
        : buttonCell('Revoke', 'small danger', 'Revoke token ' + k.name, 'token', k.id, () => confirmRevoke(act, k));
      const name = cell(k.name, 'wrap');
      name.append(el('br'), el('small', k.id, 'muted'));
      name.dataset.token = k.id;
      return [act, name, cell(k.role), cell(k.teams.join(', ') || (k.role === 'member' ? '–' : 'all')), cell(day(k.created_at)), stateTd];
    }), 6);
  }
  /* Revoking is immediate and final: a second, explicit click confirms it. */
  function confirmRevoke(td, k) {
    const yes = el('button', 'Confirm revoke', 'small danger');
    yes.type = 'button';
    yes.dataset.confirm = k.id;
    const no = el('button', 'Keep', 'small secondary');
    no.type = 'button';
    td.replaceChildren(yes, no);
    if (k.role === 'admin') td.append(el('small', 'An admin token: if it is yours, you are signed out.', 'hint'));
    no.addEventListener('click', () => adminTokens().catch(fail));
    yes.addEventListener('click', async () => {
      try {
        await api('/v1/tokens/' + enc(k.id), { method: 'DELETE' });
        hideSecret();
        await adminTokens();
        say('Revoked token ' + k.name + ' (' + k.id + '); it is refused from now on.');
      } catch (err) { if (err instanceof ApiError && err.status === 401) fail(err); else say('Not revoked: ' + err.message, true); }
    });
    yes.focus();
  }
  /* A new token's secret is shown once, and not left on screen afterwards. */
  function hideSecret() {
    $('#kf-secret-value').value = '';
    $('#kf-secret').hidden = true;
  }
  async function createToken(ev) {
    ev.preventDefault();
    const f = $('#token-form');
    formErrors(f, null);
    hideSecret();
    const body = { name: $('#kf-name').value.trim(), role: $('#kf-role').value,
      teams: $$('#kf-teams input:checked').map((c) => c.value) };
    try {
      const k = await api('/v1/tokens', { method: 'POST', body });
      $('#kf-secret-value').value = k.token;
      $('#kf-secret').hidden = false;
      $('#kf-name').value = '';
      for (const c of $$('#kf-teams input')) c.checked = false;
      await adminTokens();
      say('Created token ' + k.name + ' (' + k.role + ').');
      $('#kf-secret-value').select();
    } catch (err) { if (err instanceof ApiError && err.status === 401) fail(err); else formErrors(f, err); }
  }

  /* Before/after of one audit entry: only the keys that changed. */
  function changes(e) {
    const b = e.before || {};
    const a = e.after || {};
    const keys = [...new Set(Object.keys(b).concat(Object.keys(a)))].filter((k) => k !== 'updated_at' && JSON.stringify(b[k]) !== JSON.stringify(a[k]));
    const td = el('td', null, 'wrap changes');
    if (keys.length === 0) { td.textContent = '–'; return td; }
    const ul = el('ul');
    const show = (v) => (v === undefined ? '∅' : typeof v === 'string' ? v : JSON.stringify(v));
    for (const k of keys) {
      const li = el('li');
      li.append(el('code', k), document.createTextNode(e.before ? ': ' + show(b[k]) + ' → ' + show(a[k]) : ': ' + show(a[k])));
      ul.append(li);
    }
    /* A change of a few fields is shown as it is; a whole new object folds. */
    if (e.before && keys.length <= 4) { td.append(ul); return td; }
    const det = el('details');
    det.append(el('summary', (e.before ? keys.length + ' fields changed' : 'created with ' + keys.length + ' fields') + ': ' +
      keys.slice(0, 3).join(', ') + (keys.length > 3 ? ', …' : '')), ul);
    td.append(det);
    return td;
  }

  async function adminAudit() {
    const p = hashParams();
    const f = { team: p.get('team') || '', action: p.get('action') || '', actor: p.get('actor') || '', object: p.get('object') || '',
      since: p.get('since') || '', until: p.get('until') || '' };
    const teams = await loadTeams();
    teamOptions($('#au-team'), teams, 'All teams');
    $('#au-team').value = f.team;
    $('#au-object').value = f.object;
    $('#au-since').value = f.since;
    $('#au-until').value = f.until;
    if (state.audit === null || state.auditTeam !== f.team || p.get('fresh')) {
      state.audit = await pages('/v1/audit' + (f.team ? '?team=' + enc(f.team) : ''));
      state.auditTeam = f.team;
    }
    const all = state.audit.items;
    options($('#au-action'), [...new Set(all.map((e) => e.action))].sort(), 'Any action', f.action);
    options($('#au-actor'), [...new Set(all.map((e) => e.actor.name))].sort(), 'Anyone', f.actor);
    const since = f.since ? Date.parse(f.since + 'T00:00:00Z') : -Infinity;
    const until = f.until ? Date.parse(f.until + 'T00:00:00Z') + 86400000 : Infinity;
    const hit = all.filter((e) => (!f.action || e.action === f.action) && (!f.actor || e.actor.name === f.actor) &&
      (!f.object || e.object_id.includes(f.object)) && Date.parse(e.at) >= since && Date.parse(e.at) < until).reverse();
    const LIMIT = 200;
    const sum = $('#audit-summary');
    sum.dataset.count = String(hit.length);
    sum.textContent = hit.length + ' of ' + all.length + ' entries' + (f.team ? ' of team ' + f.team : '') + ' match, newest first' +
      (hit.length > LIMIT ? ' (the newest ' + LIMIT + ' are shown)' : '') +
      '. The team filter is the API’s; action, actor, object and dates are filtered in this page' +
      (state.audit.complete ? '.' : ' over the first ' + all.length + ' entries only (the log is longer; pick a team).');
    fill($('#t-audit tbody'), hit.slice(0, LIMIT).map((e) => {
      const actor = cell(e.actor.name, 'wrap', 'audit-actor');
      actor.title = e.actor.id;
      return [cell(when(e.at)), actor, cell(e.action, null, 'audit-action'), cell(e.object_type + ' ' + e.object_id, 'wrap'),
        cell(e.team || '–'), changes(e)];
    }), 6, 'No audit entry matches these filters');
  }
  function auditSubmit(ev) {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const [k, sel] of [['team', '#au-team'], ['action', '#au-action'], ['actor', '#au-actor'], ['object', '#au-object'],
      ['since', '#au-since'], ['until', '#au-until']]) {
      const v = $(sel).value.trim();
      if (v) q.set(k, v);
    }
    state.audit = null; /* Apply re-reads the log: it may have grown */
    navigate('#admin/audit?' + q.toString());
  }

  /* ---- navigation ---- */

  const VIEWS = {
    team: renderTeam, allocations: renderAllocations, allocation: renderAllocation, finance: renderFinance,
    catalog: renderCatalog, admin: renderAdmin,
  };
  const allowed = (v) => (v === 'finance' ? mayFinance() : v === 'admin' ? state.role === 'admin' : true);

  // A filter changes the hash; the view is not ready again until route() has
  // rendered it (hashchange comes later: a reader must not see the old table).
  function navigate(hash) {
    if (location.hash !== hash) document.body.dataset.ready = '';
    location.hash = hash;
  }

  async function route() {
    if (!sessionStorage.getItem(TOKEN_KEY)) { showLogin(); return; }
    const h = (location.hash || '#team').slice(1);
    const [path] = h.split('?');
    const [name, arg] = [path.split('/')[0], decodeURIComponent(path.split('/').slice(1).join('/'))];
    $('#login').hidden = true;
    showStatus('');
    document.body.dataset.ready = '';
    try {
      if (state.role === null) {
        state.role = await whoAmI();
        for (const a of $$('#nav a[data-role]')) a.hidden = !allowed(a.dataset.view);
        const w = $('#whoami');
        w.textContent = 'role: ' + state.role;
        w.hidden = false;
      }
      const view = VIEWS[name] && allowed(name) ? name : 'team';
      $('#nav').hidden = false;
      $('#logout').hidden = false;
      for (const v of Object.keys(VIEWS)) $('#view-' + v).hidden = v !== view;
      const navView = view === 'allocation' ? 'allocations' : view;
      for (const a of $$('#nav a')) {
        if (a.dataset.view === navView) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
      }
      if (view !== 'team' && liveTimer) { clearInterval(liveTimer); liveTimer = null; }
      await VIEWS[view](arg);
      markOverflow();
      fitKpis();
      document.body.dataset.ready = view + (arg ? '/' + arg : '');
    } catch (err) { fail(err); }
  }

  function showLogin() {
    $('#login').hidden = false;
    $('#nav').hidden = true;
    $('#logout').hidden = true;
    $('#whoami').hidden = true;
    for (const v of Object.keys(VIEWS)) $('#view-' + v).hidden = true;
    $('#token').focus();
  }

  function signOut(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    hideSecret();
    Object.assign(state, { role: null, teams: null, gpus: null, audit: null, auditTeam: null });
    if (liveTimer) { clearInterval(liveTimer); liveTimer = null; }
    showStatus('');
    $('#login-error').textContent = msg || '';
    showLogin();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const token = $('#token').value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    try {
      await api('/v1/teams');
      $('#token').value = '';
      $('#login-error').textContent = '';
      state.role = null;
      if (!location.hash) location.hash = '#team'; else route();
      $('#main').focus();
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      $('#login-error').textContent = err.status === 401 ? 'That token is not valid.' : 'Sign-in failed: ' + err.message;
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('#login-form').addEventListener('submit', signIn);
    $('#logout').addEventListener('click', () => signOut(''));
    $('#team-select').addEventListener('change', () => route());
    $('#cum-scale').addEventListener('click', () => { state.wholeBudget = !state.wholeBudget; route(); });
    $('#export-this').addEventListener('click', () => exportFocus(0));
    $('#export-last').addEventListener('click', () => exportFocus(1));
    $('#bva-team').addEventListener('change', () => { $('#bva-team').dataset.touched = '1'; renderBudgetVsActual().then(markOverflow, fail); });
    $('#hist-form').addEventListener('submit', historySubmit);
    $('#hist-reset').addEventListener('click', () => { navigate('#allocations'); });
    $('#team-form').addEventListener('submit', saveTeam);
    $('#tf-cancel').addEventListener('click', () => editTeam(null));
    $('#gpu-form').addEventListener('submit', saveGpu);
    $('#gf-cancel').addEventListener('click', () => editGpu(null));
    $('#token-form').addEventListener('submit', createToken);
    $('#audit-form').addEventListener('submit', auditSubmit);
    /* The action and actor lists come from the entries read for a team: re-read at once. */
    $('#au-team').addEventListener('change', () => $('#audit-form').requestSubmit());
    $('#au-reset').addEventListener('click', () => { state.audit = null; navigate('#admin/audit'); });
    window.addEventListener('hashchange', route);
    let t = null;
    window.addEventListener('resize', () => { clearTimeout(t); t = setTimeout(() => { markOverflow(); fitKpis(); }, 150); });
    route();
  });
})();
