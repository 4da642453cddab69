// test/quote.test.mjs - the PlinthQuote scaffolder field in the scaffolder's
// own form: the gpu-training-job template's parameter schema as the real
// scaffolder backend serves it (GET .../parameter-schema), rendered by
// @backstage/plugin-scaffolder-react's Stepper with the field registered
// the way an app does (<ScaffolderFieldExtensions>), in jsdom with
// renderInTestApp; the field's quote goes through the real proxy backend
// (route /plinth-quote) to the real daemon.  An approvable request shows
// Plinth's numbers, reaches the review page with the quote listed, and is
// created with it; an over-budget one shows Plinth's reasons and what would
// fit, and the form stays on the page.  "What would fit" is checked against
// Plinth itself: each suggestion is approved, one step more is refused.
// The proxy route reaches POST /v1/quotes and nothing else.  scripts/build.mjs
// bundles this file into dist/quote.test.mjs, which is what runs.
import './jsdom-setup.mjs';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { World, savePage } from './harness.mjs';

import React from 'react';
import { renderInTestApp, TestApiProvider } from '@backstage/test-utils';
import { screen, cleanup, fireEvent, waitFor } from '@testing-library/react';
import { discoveryApiRef, fetchApiRef } from '@backstage/core-plugin-api';
import { ScaffolderFieldExtensions, useCustomFieldExtensions } from '@backstage/plugin-scaffolder-react';
import { Stepper } from '@backstage/plugin-scaffolder-react/alpha';
import { PlinthQuoteFieldExtension, whatFits } from '../plugins/plinth/src/index.ts';

const h = React.createElement;
const WAIT = { timeout: 30000 };
// Each test is bounded as a whole too: a form stuck on a page fails, it does not hang the suite.
const LIMIT = { timeout: 180000 };
let world;
let bs;
let manifest;

before(async () => {
  world = await new World().start({ mlflow: false });
  bs = await world.backend();
  // The form's steps as the scaffolder frontend gets them.
  const r = await fetch(`${bs.url}/api/scaffolder/v2/templates/default/template/gpu-training-job/parameter-schema`);
  assert.equal(r.status, 200);
  manifest = await r.json();
});
after(async () => {
  cleanup();
  if (world) await world.stop();
  setTimeout(() => process.exit(), 1000).unref(); // see card.test.src.mjs
});

const quote = body => world.admin('POST', '/v1/quotes', body);
const answers = (over = {}) => ({
  team: 'group:default/nlp', project: 'llm', name: 'train-llm', framework: 'pytorch',
  gpuType: 'h100-80gb', gpuCount: 2, maxRuntimeHours: 1.5, ...over,
});

/** The scaffolder form with the field registered as an app registers it. */
function TemplateForm({ initialState, onCreate }) {
  const extensions = useCustomFieldExtensions(h(ScaffolderFieldExtensions, null, h(PlinthQuoteFieldExtension)));
  return h(Stepper, { manifest, extensions, initialState, onCreate });
}

async function renderForm(initialState) {
  cleanup();
  const created = [];
  const apis = [
    [discoveryApiRef, { getBaseUrl: async id => `${bs.url}/api/${id}` }],
    [fetchApiRef, { fetch: (input, init) => globalThis.fetch(input, init) }],
  ];
  await renderInTestApp(h(TestApiProvider, { apis },
    h(TemplateForm, { initialState, onCreate: async v => { created.push(v); } })));
  // Pages 1-3 are filled from initialState: on to the Price page.
  for (let i = 0; i < 3; i++) await go('Next');
  assert.equal(activePage(), 'Price');
  return created;
}

/** The title of the page the Stepper shows (its active step label). */
const activePage = () => document.querySelector('.MuiStepLabel-label.MuiStepLabel-active')?.textContent;

/** Clicks Next or Back and waits until the Stepper shows another page. */
async function go(button) {
  await waitFor(() => assert.ok(activePage()), WAIT);
  const was = activePage();
  fireEvent.click(await screen.findByRole('button', { name: button }, WAIT));
  await waitFor(() => assert.notEqual(activePage(), was), WAIT);
}

const text = id => screen.getByTestId(id).textContent;

test('an approvable job: the Price page shows Plinth\'s quote, the review lists it, create sends it', LIMIT, async () => {
  const created = await renderForm(answers());
  await screen.findByTestId('plinth-quote', {}, WAIT);
  const api = (await quote({ team: 'nlp', gpu_type: 'h100-80gb', gpu_count: 2, max_runtime_hours: 1.5 })).body;
  assert.equal(api.estimated_cost, '20.64'); // 2 x 6.88 x 1.5
  assert.equal(api.approved, true);
  assert.equal(text('plinth-quote-cost'), `Estimated cost${api.estimated_cost}`);
  assert.equal(text('plinth-quote-available'), `Available budget (nlp)${api.available}`);
  assert.equal(text('plinth-quote-verdict'), "Plinth's answerwould approve");
  assert.equal(text('plinth-quote-job'), '2 × h100-80gb for 1.5 h at 6.88 per GPU-hour'.replace(/^/, 'Job'));
  assert.equal(text('plinth-quote-detail'), 'Plinth would approve this job now.');
  await savePage(process.env.PLINTH_CARD_SCREENSHOT || world.dir, 'quote-approved', document);

  fireEvent.click(screen.getByRole('button', { name: 'Review' }));
  const create = await screen.findByRole('button', { name: 'Create' }, WAIT);
  // The review table (StructuredMetadataTable): the quote's rows beside the other answers.
  const review = create.closest('div').parentElement.textContent;
  for (const [label, value] of [['Estimated cost', api.estimated_cost], ['Available budget', api.available],
    ["Plinth's answer", 'would approve'], ['GPUs', '2']]) {
    assert.ok(review.includes(label) && review.includes(value), `${label} ${value} in: ${review}`);
  }
  assert.ok(!review.includes('nlp|h100-80gb'), 'the request key is hidden on review');
  await savePage(process.env.PLINTH_CARD_SCREENSHOT || world.dir, 'quote-review', document);

  fireEvent.click(create);
  await waitFor(() => assert.equal(created.length, 1), WAIT);
  assert.deepEqual(created[0].quote, {
    verdict: 'would approve', estimatedCost: '20.64', available: api.available,
    detail: 'Plinth would approve this job now.', request: 'nlp|h100-80gb|2|1.5',
  });
  // Quoting reserved nothing.
  assert.equal((await world.admin('GET', '/v1/teams/nlp')).body.reserved, '0.00');
});

test('over budget: the Price page shows the refusal, Plinth\'s reasons and what fits; the form stays there', LIMIT, async () => {
  const created = await renderForm(answers({ team: 'group:default/vision' }));
  await screen.findByTestId('plinth-quote', {}, WAIT);
  const api = (await quote({ team: 'vision', gpu_type: 'h100-80gb', gpu_count: 2, max_runtime_hours: 1.5 })).body;
  assert.equal(api.approved, false);
  assert.equal(text('plinth-quote-verdict'), "Plinth's answerwould refuse");
  assert.equal(text('plinth-quote-available'), 'Available budget (vision)10.00');
  // Plinth's reason verbatim, then what fits: 2 x 6.88 x 0.72 = 9.9072 <= 10.00 < 2 x 6.88 x 0.73;
  // even 1 GPU for 1.5 h (10.32) does not fit.
  assert.equal(text('plinth-quote-detail'),
    `${api.reasons[0]}. What fits now: 2 × h100-80gb for up to 0.72 h.`);
  assert.match(api.reasons[0], /^budget: needs 20\.64 USD, 10\.00 USD available$/);

  fireEvent.click(screen.getByRole('button', { name: 'Review' }));
  await screen.findAllByText(/Plinth would refuse this job: budget: needs 20\.64 USD/, {}, WAIT);
  await savePage(process.env.PLINTH_CARD_SCREENSHOT || world.dir, 'quote-refused', document);
  // (A boolean: assert would print a jsdom element by walking its whole window.)
  assert.ok(!screen.queryByRole('button', { name: 'Create' }), 'no review page for a refused job');
  assert.equal(created.length, 0);
});

test('what fits is what Plinth approves, and one step more is what it refuses', LIMIT, async () => {
  // Budget refusals on vision (10.00 available) and a capacity refusal (4 of 16 GPUs free).
  const cases = [
    { team: 'vision', gpu_count: 2, max_runtime_hours: 1.5, gpus: 0, hours: '0.72' },
    { team: 'vision', gpu_count: 4, max_runtime_hours: 1, gpus: 1, hours: '0.36' },
    { team: 'vision', gpu_count: 1, max_runtime_hours: 7.25, gpus: 0, hours: '1.45' },
    { team: 'cap', gpu_count: 8, max_runtime_hours: 1, gpus: 4, hours: null },
    // Rounding: 0.996016 x 10.04 h = 10.0000006 -> Plinth rounds half up to 10.000001 > 10.00,
    // so 10.03 h is the most (a cost rounded down would wrongly offer 10.04).
    { team: 'vision', gpu_type: 'l4-24gb', gpu_count: 1, max_runtime_hours: 12, gpus: 0, hours: '10.03' },
  ];
  const l4 = await world.admin('PUT', '/v1/gpu-types/l4-24gb', { name: 'NVIDIA L4 24GB', price_per_gpu_hour: '0.996016', capacity: 8 });
  assert.ok(l4.status < 300, JSON.stringify(l4.body));
  // The capacity case: another team holds 12 of the 16 H100s.
  const cap = await world.admin('PUT', '/v1/teams/cap', { display_name: 'Cap', budget: { amount: '100000', period: 'monthly' } });
  assert.ok(cap.status < 300, JSON.stringify(cap.body));
  const held = await world.admin('POST', '/v1/allocations', {
    team: 'cap', project: 'hold', gpu_type: 'h100-80gb', gpu_count: 12, max_runtime_hours: 1, purpose: 'capacity', labels: {},
  });
  assert.equal(held.status, 201, JSON.stringify(held.body));
  for (const c of cases) {
    const req = { team: c.team, gpu_type: c.gpu_type ?? 'h100-80gb', gpu_count: c.gpu_count, max_runtime_hours: c.max_runtime_hours };
    const q = (await quote(req)).body;
    assert.equal(q.approved, false, JSON.stringify(q));
    const fit = whatFits(q, c.max_runtime_hours);
    assert.deepEqual(fit, { maxGpus: c.gpus, maxHours: c.hours }, JSON.stringify(c));
    if (fit.maxGpus > 0) assert.equal((await quote({ ...req, gpu_count: fit.maxGpus })).body.approved, true);
    const more = (await quote({ ...req, gpu_count: fit.maxGpus + 1 })).body;
    assert.equal(more.approved, false, `${fit.maxGpus + 1} GPUs: ${JSON.stringify(more)}`);
    if (fit.maxHours !== null) {
      assert.equal((await quote({ ...req, max_runtime_hours: Number(fit.maxHours) })).body.approved, true);
      const longer = Math.round(Number(fit.maxHours) * 100 + 1) / 100;
      assert.equal((await quote({ ...req, max_runtime_hours: longer })).body.approved, false, `${longer} h`);
    }
  }
  assert.equal((await world.admin('POST', `/v1/allocations/${held.body.id}/cancel`, {})).status, 200);
});

test('the field asks again when the answers change, and says what to configure when the route is missing', LIMIT, async () => {
  // Going back to Resources and changing the GPU count: a new quote for the new count.
  await renderForm(answers({ gpuCount: 1 }));
  await screen.findByTestId('plinth-quote', {}, WAIT);
  assert.equal(text('plinth-quote-cost'), 'Estimated cost10.32');
  await go('Back');
  await go('Back');
  assert.equal(activePage(), 'Resources');
  const count = await screen.findByLabelText(/GPUs/, {}, WAIT);
  fireEvent.change(count, { target: { value: '3' } });
  await go('Next');
  await go('Next');
  assert.equal(activePage(), 'Price');
  await waitFor(() => assert.equal(text('plinth-quote-cost'), 'Estimated cost30.96'), WAIT); // 3 x 6.88 x 1.5

  // A backend without the /plinth-quote route: the field says which route to configure.
  const saved = manifest;
  manifest = structuredClone(saved);
  manifest.steps[3].schema.properties.quote['ui:options'] = { proxyPath: '/not-configured' };
  try {
    await renderForm(answers());
    await screen.findByTestId('plinth-quote-error', {}, WAIT);
    assert.match(text('plinth-quote-error'), /POST \/v1\/quotes answered 404/);
    assert.match(text('plinth-quote-error'), /proxy\.endpoints\.\/not-configured/);
    fireEvent.click(screen.getByRole('button', { name: 'Review' }));
    await screen.findAllByText(/Cannot get a quote from Plinth/, {}, WAIT);
    assert.ok(!screen.queryByRole('button', { name: 'Create' }), 'no review page without a quote');
  } finally {
    manifest = saved;
  }
});

/** A raw request (no URL normalisation, as a hostile client could send it). */
function raw(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = request(`${bs.url}${path}`, { method, headers: { 'content-type': 'application/json' } }, res => {
      let data = '';
      res.on('data', d => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.once('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

test('the /plinth-quote proxy route reaches POST /v1/quotes and nothing else', LIMIT, async () => {
  const logged = world.requests().length;
  const job = { team: 'nlp', project: 'p', gpu_type: 'h100-80gb', gpu_count: 1, max_runtime_hours: 1,
    purpose: 'proxy', labels: {}, name: 'x', framework: 'pytorch' };
  const ok = await raw('POST', '/api/proxy/plinth-quote', { team: 'nlp', gpu_type: 'h100-80gb', gpu_count: 1, max_runtime_hours: 1 });
  assert.equal(ok.status, 200, ok.body);
  assert.equal(JSON.parse(ok.body).estimated_cost, '6.88');
  for (const path of ['/api/proxy/plinth-quote/v1/allocations', '/api/proxy/plinth-quote/../../v1/allocations',
    '/api/proxy/plinth-quote/%2e%2e/%2e%2e/v1/jobs', '/api/proxy/plinth-quote?/v1/allocations']) {
    const r = await raw('POST', path, job);
    assert.ok(r.status >= 400, `${path}: ${r.status} ${r.body}`);
  }
  const get = await raw('GET', '/api/proxy/plinth-quote');
  assert.ok(get.status >= 400, `GET: ${get.status}`);
  assert.equal((await world.admin('GET', '/v1/allocations?team=nlp&limit=100')).body.items.length, 0);
  // Of what the route passed on, Plinth answered only the quote (the rest: 404, nothing run).
  const passed = world.requests().slice(logged).filter(l => l.status < 400 && l.method === 'POST').map(l => `${l.method} ${l.path}`);
  assert.deepEqual(passed, ['POST /v1/quotes']);
});
