// test/harness.mjs - the real neighbours of the Backstage tests: a real
// `plinth serve` daemon (build/plinth, temp SQLite data dir, a bootstrap
// admin token), a real MLflow server (tools/mlflow-start.sh) and a bare git
// repository behind `git daemon` as the GitOps remote; plus a Backstage test
// backend in a child process (test/backend-main.mjs) that can be killed
// like a crashing backend.  Everything listens on loopback, on free ports,
// and stop() ends every process it started.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, openSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BACKSTAGE = join(dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = join(BACKSTAGE, '..');
export const PLINTH = process.env.PLINTH_BINARY || join(ROOT, 'build', 'plinth');
const ADMIN = 'plt_backstage_admin_token_0123456789abcdef';

const sleep = ms => new Promise(r => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Calls the daemon; resolves {status, body}; never throws on an HTTP status. */
export async function call(base, method, path, body, token = ADMIN, headers = {}) {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { parsed = text; }
  return { status: res.status, body: parsed };
}

async function must(base, method, path, body) {
  const r = await call(base, method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

function git(...args) {
  const r = spawnSync('git', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

export class World {
  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'plinth-backstage.'));
    this.procs = [];
    this.pgids = [];
    // A test process that ends before its after() hook (an uncaught error in
    // a rendered component, the runner's SIGTERM) must not leave the daemon
    // and backends running.
    for (const sig of ['SIGTERM', 'SIGINT']) process.once(sig, () => process.exit(1));
    process.once('exit', () => {
      for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      for (const g of this.pgids) { try { process.kill(-g, 'SIGKILL'); } catch { /* already gone */ } }
    });
  }

  /** MLflow + git daemon + plinth serve, a priced GPU type, two teams, a service token. */
  async start({ mlflow = true } = {}) {
    if (mlflow) {
      const mdir = join(this.dir, 'mlflow');
      mkdirSync(mdir);
      const r = spawnSync(join(ROOT, 'tools/mlflow-start.sh'), [mdir, String(await freePort())], { encoding: 'utf8' });
      if (existsSync(join(mdir, 'mlflow.pid'))) this.pgids.push(Number(readFileSync(join(mdir, 'mlflow.pid'), 'utf8')));
      if (r.status !== 0) throw new Error(`MLflow did not start: ${r.stderr}`);
      this.mlflow = r.stdout.trim();
    }
    const repos = join(this.dir, 'repos');
    this.bare = join(repos, 'gitops.git');
    mkdirSync(repos);
    git('init', '-q', '--bare', '--initial-branch=main', this.bare);
    const gport = await freePort();
    this.procs.push(spawn('git', ['daemon', '--reuseaddr', '--export-all', '--enable=receive-pack',
      `--base-path=${repos}`, '--listen=127.0.0.1', `--port=${gport}`, repos], { stdio: 'ignore' }));
    this.remote = `git://127.0.0.1:${gport}/gitops.git`;
    for (let i = 0; i < 100 && spawnSync('git', ['ls-remote', this.remote]).status !== 0; i++) await sleep(100);

    const data = join(this.dir, 'plinth');
    mkdirSync(data);
    const ready = join(data, 'ready');
    const env = { ...process.env, PLINTH_ADMIN_TOKEN: ADMIN, PLINTH_GITOPS_REMOTE: this.remote };
    delete env.PLINTH_DATABASE_URL;
    delete env.MLFLOW_TRACKING_URI;
    if (this.mlflow) env.MLFLOW_TRACKING_URI = this.mlflow;
    this.daemonLog = join(data, 'stderr.log');
    const d = spawn(PLINTH, ['serve', '--listen', '127.0.0.1:0', '--data', data, '--ready-file', ready],
      { env, stdio: ['ignore', 'ignore', openSync(this.daemonLog, 'w')] });
    this.procs.push(d);
    for (let i = 0; i < 400; i++) {
      if (existsSync(ready) && readFileSync(ready, 'utf8').trim()) break;
      if (d.exitCode !== null) throw new Error(`plinth exited: ${readFileSync(this.daemonLog, 'utf8')}`);
      await sleep(50);
    }
    this.base = readFileSync(ready, 'utf8').trim();
    await must(this.base, 'PUT', '/v1/gpu-types/h100-80gb',
      { name: 'NVIDIA H100 80GB', price_per_gpu_hour: '6.88', capacity: 16 });
    await must(this.base, 'PUT', '/v1/teams/nlp',
      { display_name: 'NLP', budget: { amount: '10000', period: 'monthly' } });
    await must(this.base, 'PUT', '/v1/teams/vision',
      { display_name: 'Vision', budget: { amount: '10', period: 'monthly' } });
    this.serviceToken = (await must(this.base, 'POST', '/v1/tokens',
      { name: 'backstage', role: 'service', teams: [] })).token;
    return this;
  }

  admin(method, path, body) { return call(this.base, method, path, body); }

  /** Plinth's request log lines (one JSON object per request). */
  requests() {
    return readFileSync(this.daemonLog, 'utf8').split('\n').filter(Boolean)
      .map(l => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
  }

  gitLog() {
    const d = join(this.dir, `clone-${Date.now()}`);
    git('clone', '-q', this.remote, d);
    return { dir: d, log: git('-C', d, 'log', '--format=%H %s') };
  }

  /**
   * A Backstage test backend (scaffolder + proxy + Plinth module) in a child
   * process; resolves {port, child}.  `dbDir` keeps the scaffolder's SQLite
   * database on disk so a second backend can recover the first one's tasks.
   */
  async backend({ dbDir = join(this.dir, `bs-db-${Date.now()}`), recover = false } = {}) {
    const cfg = {
      plinthBaseUrl: this.base, plinthToken: this.serviceToken, dbDir, recover,
      argocdUrl: 'https://argocd.example.test',
    };
    const log = join(this.dir, `backend-${Date.now()}.log`);
    const child = spawn(process.execPath, [join(BACKSTAGE, 'test', 'backend-main.mjs')], {
      env: { ...process.env, PLINTH_TEST_BACKEND: JSON.stringify(cfg) },
      stdio: ['ignore', 'pipe', openSync(log, 'w')],
    });
    this.procs.push(child);
    const port = await new Promise((resolve, reject) => {
      let out = '';
      const t = setTimeout(() => reject(new Error(`backend did not start: ${readFileSync(log, 'utf8').slice(-3000)}`)), 120000);
      child.stdout.on('data', b => {
        out += b;
        const m = out.match(/PORT (\d+)/);
        if (m) { clearTimeout(t); resolve(Number(m[1])); }
      });
      child.once('exit', code => { clearTimeout(t); reject(new Error(`backend exited ${code}: ${readFileSync(log, 'utf8').slice(-3000)}`)); });
    });
    return { port, child, dbDir, log, url: `http://127.0.0.1:${port}` };
  }

  async stop() {
    for (const p of this.procs.reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGTERM');
        await Promise.race([new Promise(r => p.once('exit', r)), sleep(5000)]);
        if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      }
    }
    // MLflow (its own process group): SIGTERM, then SIGKILL after 20 s.
    const alive = g => { try { process.kill(-g, 0); return true; } catch { return false; } };
    for (const g of this.pgids) {
      try { process.kill(-g, 'SIGTERM'); } catch { /* already gone */ }
      for (let i = 0; i < 200 && alive(g); i++) await sleep(100);
      if (alive(g)) process.kill(-g, 'SIGKILL');
    }
  }
}

/**
 * Saves a rendered jsdom document (markup + the MUI styles JSS put in
 * <head>) as dir/name.html and, with Debian's Chromium (playwright-core from
 * tests/e2e), as dir/name.png, to look at.
 */
export async function savePage(dir, name, doc) {
  const html = join(dir, `${name}.html`);
  writeFileSync(html, '<!doctype html>' + doc.documentElement.outerHTML);
  if (!existsSync('/usr/bin/chromium')) return; // the e2e suite needs it too; tools/deps.sh installs it
  const { chromium } = createRequire(join(ROOT, 'tests/e2e/package.json'))('playwright-core');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 640, height: 520 } });
    await page.goto('file://' + html);
    await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
  } finally {
    await browser.close();
  }
}
