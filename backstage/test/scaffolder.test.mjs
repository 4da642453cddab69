// test/scaffolder.test.mjs - the gpu-training-job template run as real
// scaffolder tasks (real scaffolder backend + Plinth's module, in
// startTestBackend) against a real plinth daemon with real MLflow and a real
// GitOps remote: a completed task reserves exactly the quoted price, the
// model is in MLflow and the commit in the repository; over budget the task
// fails with Plinth's detail in its log and nothing is reserved; a dry-run
// quotes and reserves nothing; a task recovered after the backend is killed
// mid-task re-runs the submit step and still makes one allocation.  Also the
// templates: the scaffolder's own Template validator and parameter-schema
// validation, the GPU type choices against Plinth's catalog, and ml-project's
// skeleton rendered by a dry-run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { World, BACKSTAGE } from './harness.mjs';
import { template } from './entities.mjs';

const require = createRequire(import.meta.url);
const sleep = ms => new Promise(r => setTimeout(r, ms));
let world;
let bs;

before(async () => {
  world = await new World().start();
  bs = await world.backend();
});
after(async () => { if (world) await world.stop(); });

async function api(b, method, path, body) {
  const res = await fetch(`${b.url}/api/scaffolder${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch { parsed = text; }
  return { status: res.status, body: parsed };
}

/** Waits (bounded: 240 s) for a task to finish; returns {status, events, output}. */
async function finish(b, id, limitMs = 240000) {
  const end = Date.now() + limitMs;
  for (;;) {
    const t = await api(b, 'GET', `/v2/tasks/${id}`);
    if (['completed', 'failed', 'cancelled'].includes(t.body.status)) {
      const ev = (await api(b, 'GET', `/v2/tasks/${id}/events`)).body;
      const done = ev.filter(e => e.type === 'completion').pop();
      return { status: t.body.status, events: ev, output: done?.body?.output ?? {},
        log: ev.filter(e => e.type === 'log').map(e => e.body.message).join('\n') };
    }
    if (Date.now() > end) throw new Error(`task ${id} still ${t.body.status} after ${limitMs} ms`);
    await sleep(250);
  }
}

const values = (over = {}) => ({
  team: 'group:default/nlp', project: 'llm', name: 'train-llm', framework: 'pytorch',
  gpuType: 'h100-80gb', gpuCount: 2, maxRuntimeHours: 1.5, modelName: 'llm-7b',
  command: ['python', 'train.py', '--epochs', '3'], ...over,
});

async function team(id) { return (await world.admin('GET', `/v1/teams/${id}`)).body; }
async function allocations(id) { return (await world.admin('GET', `/v1/allocations?team=${id}&limit=100`)).body.items; }

test('the template completes: allocation reserved at the quoted price, model in MLflow, commit in GitOps', async () => {
  // With the Price page's value as the form sends it (test/quote.test.src.mjs renders that page).
  const quote = { verdict: 'would approve', estimatedCost: '20.64', available: '10000.00',
    detail: 'Plinth would approve this job now.', request: 'nlp|h100-80gb|2|1.5' };
  const created = await api(bs, 'POST', '/v2/tasks', { templateRef: 'template:default/gpu-training-job', values: values({ quote }) });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const t = await finish(bs, created.body.id);
  console.log(`# task log of a successful run:\n${t.log.replace(/^/gm, '#   ')}`);
  assert.equal(t.status, 'completed', t.log);
  const out = t.output;
  assert.match(out.allocationId, /\S/);
  assert.equal(out.quotedCost, '20.64');             // 2 x 6.88 x 1.5, quoted before submit
  const alloc = (await world.admin('GET', `/v1/allocations/${out.allocationId}`)).body;
  assert.equal(alloc.status, 'approved');
  assert.equal(alloc.estimated_cost, out.quotedCost); // reserved at the quoted price
  assert.equal(out.estimatedCost, alloc.estimated_cost);
  assert.equal((await team('nlp')).reserved, '20.64');
  // The model is in MLflow, tagged with the allocation.
  const m = await fetch(`${world.mlflow}/api/2.0/mlflow/registered-models/get?name=llm-7b`).then(r => r.json());
  const tags = Object.fromEntries((m.registered_model.tags ?? []).map(x => [x.key, x.value]));
  assert.equal(tags['plinth.allocation_id'], out.allocationId);
  // The commit is in the GitOps repository.
  const g = world.gitLog();
  assert.match(out.gitopsCommit, /^[0-9a-f]{40}$/);
  assert.ok(g.log.split('\n').some(l => l.startsWith(out.gitopsCommit)), g.log);
  assert.equal(out.argocdApplication, 'nlp-train-llm');
  const links = Object.fromEntries(out.links.map(l => [l.title, l.url]));
  assert.equal(links['Plinth dashboard'], `${world.base}/`);
  assert.equal(links['MLflow model'], `${world.mlflow}/#/models/llm-7b`);
  assert.equal(links['Argo CD application'], 'https://argocd.example.test/applications/argocd/nlp-train-llm');
  // The user's entity ref went to Plinth with the request (X-Plinth-On-Behalf-Of),
  // and Plinth's audit log names the person beside the portal's token.
  assert.match(t.log, /on behalf of user:default\/mock/);
  const audit = (await world.admin('GET', '/v1/audit?team=nlp&limit=500')).body.items;
  const approve = audit.find(e => e.action === 'allocation.approve' && e.object_id === out.allocationId);
  assert.ok(approve, JSON.stringify(audit.map(e => e.action)));
  assert.match(approve.actor.name, /^user:default\/mock via /);
});

test('over budget: the task fails with Plinth\'s detail in its log and nothing is reserved', async () => {
  const created = await api(bs, 'POST', '/v2/tasks', {
    templateRef: 'template:default/gpu-training-job',
    values: values({ team: 'group:default/vision', name: 'too-big', modelName: 'vision-big' }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const t = await finish(bs, created.body.id);
  console.log(`# task log of a refused run:\n${t.log.replace(/^/gm, '#   ')}`);
  assert.equal(t.status, 'failed');
  assert.match(t.log, /would be refused/);            // the quote step said so first
  assert.match(t.log, /Plinth refused \(409\) Budget exceeded: .*available 10\.00/);
  const v = await team('vision');
  assert.equal(v.reserved, '0.00');
  assert.equal((await allocations('vision')).length, 0);
});

test('dry-run: a quote, nothing reserved', async () => {
  const before = await allocations('nlp');
  const r = await api(bs, 'POST', '/v2/dry-run', {
    template: template('gpu-training-job'), values: values({ name: 'dry', gpuCount: 4 }), directoryContents: [],
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const log = r.body.log.map(e => e.body.message).join('\n');
  assert.match(log, /Dry run: nothing submitted\. Plinth quotes 41\.28/);
  assert.equal(r.body.output.estimatedCost, '41.28');
  assert.deepEqual((await allocations('nlp')).map(a => a.id), before.map(a => a.id));
  assert.equal((await team('nlp')).reserved, '20.64');
});

test('a task recovered after the backend is killed mid-task makes one allocation', async () => {
  const b1 = await world.backend();
  const before = (await allocations('nlp')).length;
  const posts = () => world.requests().filter(r => r.method === 'POST' && r.path === '/v1/jobs').length;
  const postsBefore = posts();
  const created = await api(b1, 'POST', '/v2/tasks', {
    templateRef: 'template:default/gpu-training-job-crash-test',
    values: values({ name: 'crash-job', modelName: 'crash-model' }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id;
  // Kill the backend once Plinth has allocated (the task is then in its wait step).
  const end = Date.now() + 180000;
  while ((await allocations('nlp')).length === before) {
    assert.ok(Date.now() < end, 'the submit step never allocated');
    await sleep(200);
  }
  assert.equal((await api(b1, 'GET', `/v2/tasks/${id}`)).body.status, 'processing');
  b1.child.kill('SIGKILL');
  await new Promise(r => b1.child.once('exit', r));
  // A new backend on the same database recovers the task and runs it again.
  const b2 = await world.backend({ dbDir: b1.dbDir, recover: true });
  const t = await finish(b2, id);
  assert.equal(t.status, 'completed', t.log);
  assert.ok(t.events.some(e => e.type === 'recovered'), 'the task was recovered');
  // POST /v1/jobs twice (before the crash and again after recovery), with the same Idempotency-Key.
  assert.equal(posts(), postsBefore + 2, 'the submit step ran again after the crash');
  const mine = (await allocations('nlp')).filter(a => a.id === t.output.allocationId);
  assert.equal(mine.length, 1);
  assert.equal((await allocations('nlp')).length, before + 1, 'one allocation, not two');
  assert.equal((await team('nlp')).reserved, '41.28');
  b2.child.kill('SIGTERM');
});

// --- the templates, checked by the scaffolder's own validation ------------------

test('both templates pass the scaffolder\'s Template v1beta3 validator', async () => {
  const { templateEntityV1beta3Validator } = require('@backstage/plugin-scaffolder-common');
  for (const name of ['gpu-training-job', 'ml-project']) {
    assert.equal(await templateEntityV1beta3Validator.check(template(name)), true, name);
  }
  // The validator can fail: a step without an action is refused.
  const broken = template('gpu-training-job');
  delete broken.spec.steps[0].action;
  await assert.rejects(templateEntityV1beta3Validator.check(broken));
});

test('the GPU type choices equal Plinth\'s catalog (GET /v1/gpu-types)', async () => {
  const p = template('gpu-training-job').spec.parameters[1].properties.gpuType;
  const items = (await world.admin('GET', '/v1/gpu-types')).body.items;
  assert.ok(items.length >= 9, JSON.stringify(items));
  assert.deepEqual([...p.enum].sort(), items.map(i => i.id).sort());
  const names = Object.fromEntries(items.map(i => [i.id, i.name]));
  p.enum.forEach((id, k) => assert.equal(p.enumNames[k], names[id], id));
});

test('the scaffolder refuses values outside the template\'s parameter schemas (400, nothing run)', async () => {
  const before = (await allocations('nlp')).length;
  for (const [bad, field] of [[{ gpuType: 'x100-1gb' }, 'gpuType'], [{ gpuCount: 0 }, 'gpuCount'],
    [{ name: 'Not A Label' }, 'name'], [{ maxRuntimeHours: 500 }, 'maxRuntimeHours']]) {
    const r = await api(bs, 'POST', '/v2/tasks', { templateRef: 'template:default/gpu-training-job', values: values(bad) });
    assert.equal(r.status, 400, `${field}: ${JSON.stringify(r.body)}`);
    assert.ok(JSON.stringify(r.body.errors).includes(field), JSON.stringify(r.body));
  }
  // The Price page's quote (the PlinthQuote field's value) is checked by the same schema.
  const badQuote = await api(bs, 'POST', '/v2/tasks', { templateRef: 'template:default/gpu-training-job',
    values: values({ quote: { verdict: 'would approve', estimatedCost: 20.64 } }) });
  assert.equal(badQuote.status, 400, JSON.stringify(badQuote.body));
  assert.match(JSON.stringify(badQuote.body.errors), /estimatedCost/);
  const missing = values();
  delete missing.team;
  const r = await api(bs, 'POST', '/v2/tasks', { templateRef: 'template:default/gpu-training-job', values: missing });
  assert.equal(r.status, 400);
  assert.match(JSON.stringify(r.body.errors), /requires property \\"team\\"/);
  assert.equal((await allocations('nlp')).length, before);
});

test('ml-project renders its skeleton with the team\'s annotation (dry-run of fetch:template)', async () => {
  const YAML = require('yaml');
  const dir = join(BACKSTAGE, 'templates', 'ml-project');
  const files = ['catalog-info.yaml', 'job.yaml', 'README.md'].map(f => ({
    path: `skeleton/${f}`, base64Content: readFileSync(join(dir, 'skeleton', f)).toString('base64'),
  }));
  const r = await api(bs, 'POST', '/v2/dry-run', {
    template: template('ml-project'),
    values: { team: 'group:default/nlp', project: 'churn', description: 'Churn model' },
    directoryContents: files,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const out = Object.fromEntries(r.body.directoryContents.map(f => [f.path, Buffer.from(f.base64Content, 'base64').toString()]));
  const info = YAML.parse(out['catalog-info.yaml']);
  assert.equal(info.metadata.annotations['plinth.io/team'], 'nlp');
  assert.equal(info.metadata.annotations['plinth.io/project'], 'churn');
  assert.equal(info.spec.owner, 'group:default/nlp');
  const job = YAML.parse(out['job.yaml']);
  assert.deepEqual([job.team, job.project, job.name, job.gpu_type], ['nlp', 'churn', 'churn-train', 'h100-80gb']);
  assert.match(out['README.md'], /^# churn/);
});

test('catalog-info.yaml (Plinth\'s Component and API) passes the catalog\'s validators', async () => {
  const YAML = require('yaml');
  const { componentEntityV1alpha1Validator, apiEntityV1alpha1Validator } = require('@backstage/catalog-model');
  const [component, apiEntity] = YAML.parseAllDocuments(readFileSync(join(BACKSTAGE, '..', 'catalog-info.yaml'), 'utf8'))
    .map(d => d.toJSON());
  assert.equal(await componentEntityV1alpha1Validator.check(component), true);
  assert.deepEqual(component.spec.providesApis, [apiEntity.metadata.name]);
  assert.equal(apiEntity.spec.type, 'openapi');
  // The catalog replaces the $text placeholder with the file before validating.
  const text = readFileSync(join(BACKSTAGE, '..', apiEntity.spec.definition.$text), 'utf8');
  assert.match(JSON.parse(text).openapi, /^3\./);
  assert.equal(await apiEntityV1alpha1Validator.check({ ...apiEntity, spec: { ...apiEntity.spec, definition: text } }), true);
});
