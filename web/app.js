/*
 * app.js - the Plinth dashboard: three views (team, finance, catalog) over
 * the public /v1 API.  No framework; Chart.js (window.Chart) draws.
 *
 * Money arrives as exact decimal strings and is shown from those strings
 * (only thousands separators are added); charts alone turn it into numbers,
 * for drawing.  Live accrued cost is computed in integer micro-units with
 * BigInt by the same formula as the daemon.  The token lives in
 * sessionStorage and is sent only as a Bearer header to this origin.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'plinth.token';
  const COLORS = ['#1f5fbf', '#e8a317', '#2e9d5b', '#8e44ad', '#c0392b', '#16a085', '#7f8c8d', '#d35400'];
  const charts = {};
  let liveTimer = null;
  let teamsCache = null;

  const $ = (sel) => document.querySelector(sel);
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
  /* "12345.5" -> "12,345.50"; the digits are the API's own. */
  function money(s, currency) {
    if (s === null || s === undefined) return '–';
    const norm = fromMicros(micros(String(s)));
    const [i, f] = norm.split('.');
    const neg = i.startsWith('-');
    const digits = (neg ? i.slice(1) : i).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return (currency ? currency + ' ' : '') + (neg ? '-' : '') + digits + '.' + f;
  }
  const num = (s) => Number(s); /* charts only */
  const day = (t) => (t ? t.slice(0, 10) : '–');
  function monthStart(y, m) { return new Date(Date.UTC(y, m, 1)).toISOString().slice(0, 10); }

  /* ---- API ---- */

  class ApiError extends Error {
    constructor(status, detail) { super(detail); this.status = status; }
  }

  async function api(path, asText) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const res = await fetch(path, { headers: { Authorization: 'Bearer ' + token, Accept: asText ? 'text/csv' : 'application/json' } });
    if (!res.ok) {
      let detail = res.status + ' ' + res.statusText;
      try { const p = await res.json(); detail = p.detail || p.title || detail; } catch (e) { /* not JSON */ }
      throw new ApiError(res.status, detail);
    }
    return asText ? res.text() : res.json();
  }

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

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    charts[id] = new window.Chart(document.getElementById(id), config);
  }

  /* ---- tables ---- */

  function fill(tbody, rows, cols) {
    tbody.replaceChildren();
    if (rows.length === 0) {
      const tr = el('tr');
      const td = el('td', 'Nothing to show', 'empty');
      td.colSpan = cols;
      tr.append(td);
      tbody.append(tr);
      return;
    }
    for (const cells of rows) {
      const tr = el('tr');
      for (const c of cells) tr.append(c);
      tbody.append(tr);
    }
  }
  function cell(text, cls, key, raw) {
    const td = el('td', text, cls);
    if (key) td.dataset.k = key;
    if (raw !== undefined) td.dataset.v = raw;
    return td;
  }

  /* ---- team view ---- */

  async function loadTeams() {
    if (!teamsCache) teamsCache = (await api('/v1/teams')).items;
    return teamsCache;
  }

  function setKpi(key, raw, currency) {
    const n = document.querySelector('[data-k="' + key + '"]');
    n.textContent = money(raw);
    n.dataset.v = raw;
  }

  function accruedNow(a, nowMs) {
    if (a.status !== 'running' || !a.started_at) return micros(a.accrued_cost);
    const started = Date.parse(a.started_at);
    let secs = BigInt(Math.max(0, Math.floor((nowMs - started) / 1000)));
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
      sel.replaceChildren(...teams.map((t) => { const o = el('option', t.display_name + ' (' + t.id + ')'); o.value = t.id; return o; }));
      const saved = sessionStorage.getItem('plinth.team');
      if (saved && teams.some((t) => t.id === saved)) sel.value = saved;
    }
    if (teams.length === 0) { showStatus('No team is visible to this token.'); return; }
    const id = sel.value;
    sessionStorage.setItem('plinth.team', id);
    const enc = encodeURIComponent(id);
    const t = await api('/v1/teams/' + enc);
    const cur = t.currency;
    $('#team-h').textContent = 'Team ' + t.display_name;
    $('#team-period').textContent = t.budget.period + ' period ' + day(t.period_start) + ' to ' + day(t.period_end) + ' (end exclusive) · amounts in ' + cur;
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
      options: { rotation: -90, circumference: 180, cutout: '60%', plugins: { legend: { position: 'bottom' } } },
    });

    const range = '&from=' + encodeURIComponent(t.period_start) + '&to=' + encodeURIComponent(t.period_end);
    const [byDay, byGpu, running, approved] = await Promise.all([
      api('/v1/costs?group_by=day&team=' + enc + range),
      api('/v1/costs?group_by=gpu_type&team=' + enc + range),
      api('/v1/allocations?team=' + enc + '&status=running&limit=100'),
      api('/v1/allocations?team=' + enc + '&status=approved&limit=100'),
    ]);

    /* cumulative spend per day of the period, budget line, forecast line */
    const perDay = new Map(byDay.items.map((r) => [r.key, micros(r.spent) + micros(r.accrued)]));
    const labels = [];
    const cumulative = [];
    const forecast = [];
    const start = Date.parse(t.period_start);
    const end = Date.parse(t.period_end);
    const today = new Date().toISOString().slice(0, 10);
    let acc = 0n;
    let todayIdx = -1;
    for (let d = start; d < end; d += 86400000) {
      const k = new Date(d).toISOString().slice(0, 10);
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
    draw('c-cumulative', {
      type: 'line',
      data: { labels, datasets: [
        { label: 'Spent (cumulative)', data: cumulative, borderColor: '#1f5fbf', backgroundColor: '#1f5fbf', pointRadius: 0 },
        { label: 'Forecast', data: forecast, borderColor: '#e8a317', borderDash: [6, 4], pointRadius: 0 },
        { label: 'Budget', data: labels.map(() => num(t.budget.amount)), borderColor: '#b3261e', pointRadius: 0 },
      ] },
      options: { scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true } }, plugins: { legend: { position: 'bottom' } } },
    });

    draw('c-gpu', {
      type: 'bar',
      data: { labels: byGpu.items.map((r) => r.key),
        datasets: [{ label: 'Spent + accrued', data: byGpu.items.map((r) => num(r.spent) + num(r.accrued)), backgroundColor: COLORS }] },
      options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } },
    });

    const allocs = running.items.concat(approved.items);
    const tbody = $('#t-allocs tbody');
    const rows = allocs.map((a) => {
      const acc2 = cell(money(fromMicros(accruedNow(a, Date.now()))), 'num live', 'alloc-accrued');
      acc2.dataset.id = a.id;
      return [cell(a.id), cell(a.project), cell(a.gpu_count + ' × ' + a.gpu_type), cell(a.status),
        cell(money(a.price_per_gpu_hour), 'num'), cell(money(a.estimated_cost), 'num'), acc2];
    });
    fill(tbody, rows, 7);
    if (liveTimer) clearInterval(liveTimer);
    liveTimer = setInterval(() => {
      const now = Date.now();
      for (const a of allocs) {
        if (a.status !== 'running') continue;
        const td = tbody.querySelector('td[data-id="' + a.id + '"]');
        if (td) td.textContent = money(fromMicros(accruedNow(a, now)));
      }
    }, 1000);
  }

  /* ---- finance view ---- */

  async function renderFinance() {
    teamsCache = null;
    const teams = await loadTeams();
    fill($('#t-teams tbody'), teams.map((t) => {
      const used = Number((micros(t.spent) + micros(t.reserved)) * 1000n / (micros(t.budget.amount) || 1n)) / 10;
      const m = el('meter');
      m.min = 0; m.max = 100; m.low = 50; m.high = 80; m.optimum = 0; m.value = Math.min(100, used);
      const td = el('td');
      td.append(m, el('span', used.toFixed(1) + '%', 'pct'));
      return [cell(t.display_name + ' (' + t.id + ')'), cell(money(t.budget.amount), 'num', 'fin-budget', t.budget.amount),
        cell(money(t.spent), 'num', 'fin-spent', t.spent), cell(money(t.reserved), 'num opt', 'fin-reserved', t.reserved),
        cell(money(t.available), 'num opt', 'fin-available', t.available), cell(money(t.forecast_period_end), 'num opt'), td];
    }), 7);
    draw('c-teams', {
      type: 'bar',
      data: { labels: teams.map((t) => t.id), datasets: [
        { label: 'Spent', data: teams.map((t) => num(t.spent)), backgroundColor: '#1f5fbf', stack: 's' },
        { label: 'Reserved', data: teams.map((t) => num(t.reserved)), backgroundColor: '#e8a317', stack: 's' },
        { label: 'Budget', data: teams.map((t) => num(t.budget.amount)), backgroundColor: '#c9d3e3', stack: 'b' },
      ] },
      options: { plugins: { legend: { position: 'bottom' } }, scales: { y: { beginAtZero: true } } },
    });

    const now = new Date();
    const months = [];
    for (let i = 5; i >= 0; i--) months.push([now.getUTCFullYear(), now.getUTCMonth() - i]);
    const res = await Promise.all(months.map(([y, m]) =>
      api('/v1/costs?group_by=team&from=' + monthStart(y, m) + '&to=' + monthStart(y, m + 1))));
    const labels = months.map(([y, m]) => monthStart(y, m).slice(0, 7));
    const ids = teams.map((t) => t.id);
    draw('c-mom', {
      type: 'bar',
      data: { labels, datasets: ids.map((id, i) => ({
        label: id, backgroundColor: COLORS[i % COLORS.length], stack: 'm',
        data: res.map((r) => { const it = r.items.find((x) => x.key === id); return it ? num(it.spent) + num(it.accrued) : 0; }),
      })) },
      options: { plugins: { legend: { position: 'bottom' } }, scales: { y: { beginAtZero: true } } },
    });

    const proj = await api('/v1/costs?group_by=project');
    const top = proj.items.slice().sort((a, b) => {
      const d = micros(b.spent) - micros(a.spent);
      return d > 0n ? 1 : d < 0n ? -1 : a.key.localeCompare(b.key);
    }).slice(0, 10);
    fill($('#t-projects tbody'), top.map((p) => [cell(p.key), cell(money(p.spent), 'num', 'proj-spent', p.spent),
      cell(money(p.reserved), 'num'), cell(p.gpu_hours, 'num')]), 4);
  }

  async function exportFocus(monthsBack) {
    const now = new Date();
    const y = now.getUTCFullYear();
    const m = now.getUTCMonth() - monthsBack;
    const from = monthStart(y, m);
    const to = monthStart(y, m + 1);
    try {
      const csv = await api('/v1/costs/export?format=focus&from=' + from + '&to=' + to, true);
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
    const g = (await api('/v1/gpu-types')).items;
    fill($('#t-gpus tbody'), g.map((x) => {
      const pct = x.capacity > 0 ? (100 * x.allocated) / x.capacity : 0;
      const m = el('meter');
      m.min = 0; m.max = 100; m.low = 60; m.high = 90; m.optimum = 50; m.value = pct;
      const td = el('td');
      td.append(m, el('span', pct.toFixed(1) + '%', 'pct'));
      const name = cell(x.name, 'wrap');
      name.append(el('br'), el('small', x.id, 'muted'));
      return [name, cell(money(x.price_per_gpu_hour), 'num', 'gpu-price', x.price_per_gpu_hour),
        cell(x.price_date, 'opt'), cell(x.capacity, 'num', 'gpu-capacity', x.capacity), cell(x.allocated, 'num', 'gpu-allocated', x.allocated), td];
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

  /* ---- navigation ---- */

  const VIEWS = { team: renderTeam, finance: renderFinance, catalog: renderCatalog };

  async function route() {
    if (!sessionStorage.getItem(TOKEN_KEY)) { showLogin(); return; }
    const name = (location.hash || '#team').slice(1);
    const view = VIEWS[name] ? name : 'team';
    $('#login').hidden = true;
    $('#nav').hidden = false;
    $('#logout').hidden = false;
    for (const v of Object.keys(VIEWS)) $('#view-' + v).hidden = v !== view;
    for (const a of document.querySelectorAll('nav a')) {
      if (a.dataset.view === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    if (view !== 'team' && liveTimer) { clearInterval(liveTimer); liveTimer = null; }
    showStatus('');
    document.body.dataset.ready = '';
    try {
      await VIEWS[view]();
      document.body.dataset.ready = view;
    } catch (err) { fail(err); }
  }

  function showLogin() {
    $('#login').hidden = false;
    $('#nav').hidden = true;
    $('#logout').hidden = true;
    for (const v of Object.keys(VIEWS)) $('#view-' + v).hidden = true;
    $('#token').focus();
  }

  function signOut(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    teamsCache = null;
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
    $('#export-this').addEventListener('click', () => exportFocus(0));
    $('#export-last').addEventListener('click', () => exportFocus(1));
    window.addEventListener('hashchange', route);
    route();
  });
})();
