// test/card.test.mjs - EntityPlinthBudgetCard rendered with
// @backstage/test-utils (renderInTestApp, in jsdom) against the real daemon
// through the real Backstage proxy backend: the numbers equal the API's, the
// running allocation shows its accrued cost, and the empty (no annotation)
// and error (unknown team, missing proxy endpoint) states say what to
// configure.  The rendered card is also saved as HTML with its styles and
// screenshotted in Debian's Chromium (playwright-core from tests/e2e) to
// $PLINTH_CARD_SCREENSHOT (default: the test's temp dir).  scripts/build.mjs
// bundles this file into dist/card.test.mjs, which is what runs.
import './jsdom-setup.mjs';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { World, savePage } from './harness.mjs';

import React from 'react';
import { renderInTestApp, TestApiProvider } from '@backstage/test-utils';
import { screen, cleanup } from '@testing-library/react';
import { discoveryApiRef, fetchApiRef } from '@backstage/core-plugin-api';
import { EntityProvider } from '@backstage/plugin-catalog-react';
import { EntityPlinthBudgetCard } from '../plugins/plinth/src/index.ts';

const h = React.createElement;

let world;
let bs;
let running;

before(async () => {
  world = await new World().start({ mlflow: false });
  bs = await world.backend();
  const a = await world.admin('POST', '/v1/allocations', {
    team: 'nlp', project: 'llm', gpu_type: 'h100-80gb', gpu_count: 2, max_runtime_hours: 3, purpose: 'card', labels: {},
  });
  assert.equal(a.status, 201, JSON.stringify(a.body));
  running = a.body.id;
  assert.equal((await world.admin('POST', `/v1/allocations/${running}/start`, {})).status, 200);
  const b = await world.admin('POST', '/v1/allocations', {
    team: 'nlp', project: 'other', gpu_type: 'h100-80gb', gpu_count: 1, max_runtime_hours: 2, purpose: 'card', labels: {},
  });
  assert.equal(b.status, 201);
});
after(async () => {
  cleanup();
  if (world) await world.stop();
  // The rendered app leaves MessagePorts open (the loop would never end, as
  // Jest's forceExit hides): end the process once everything is stopped.
  setTimeout(() => process.exit(), 1000).unref();
});

const entity = (annotations) => ({
  apiVersion: 'backstage.io/v1alpha1', kind: 'Group',
  metadata: { name: 'nlp', namespace: 'default', annotations }, spec: { type: 'team', children: [] },
});

async function render(annotations, props = {}) {
  cleanup();
  const apis = [
    [discoveryApiRef, { getBaseUrl: async id => `${bs.url}/api/${id}` }],
    [fetchApiRef, { fetch: (input, init) => globalThis.fetch(input, init) }],
  ];
  return renderInTestApp(
    h(TestApiProvider, { apis }, h(EntityProvider, { entity: entity(annotations) },
      h(EntityPlinthBudgetCard, { refreshMs: 0, ...props }))),
  );
}

const text = id => screen.getByTestId(id).textContent;
/** "12.345" -> 12345000n micro-units: compared as integers, never floats. */
const micro = s => {
  const [i, f = ''] = s.split('.');
  return BigInt(i) * 1000000n + BigInt((f + '000000').slice(0, 6));
};

test('the card shows the team\'s numbers exactly as Plinth\'s API answers them', async () => {
  const apiBefore = (await world.admin('GET', '/v1/teams/nlp')).body;
  const accBefore = (await world.admin('GET', `/v1/allocations/${running}`)).body.accrued_cost;
  await render({ 'plinth.io/team': 'nlp' }, { dashboardUrl: world.base + '/' });
  await screen.findByTestId('plinth-numbers', {}, { timeout: 30000 });
  const api = (await world.admin('GET', '/v1/teams/nlp')).body;
  const accAfter = (await world.admin('GET', `/v1/allocations/${running}`)).body.accrued_cost;
  assert.equal(api.budget.amount, '10000.00');
  assert.equal(text('plinth-budget'), `Budget (monthly)${api.budget.amount}`);
  assert.equal(text('plinth-spent'), `Spent${api.spent}`);
  assert.equal(text('plinth-reserved'), `Reserved${api.reserved}`);
  assert.equal(api.reserved, '55.04'); // 2 x 6.88 x 3 + 1 x 6.88 x 2
  assert.equal(text('plinth-available'), `Available${api.available}`);
  // The forecast grows while a job runs: the card's value lies between two API reads.
  const forecast = text('plinth-forecast').replace('Forecast for the period', '');
  assert.ok(micro(apiBefore.forecast_period_end) <= micro(forecast) && micro(forecast) <= micro(api.forecast_period_end),
    `${apiBefore.forecast_period_end} <= ${forecast} <= ${api.forecast_period_end}`);
  assert.equal(text('plinth-runs-out'), `Runs out on${api.budget_exhausted_at ? api.budget_exhausted_at.slice(0, 10) : 'not at the current rate'}`);
  // The running allocation (and only it: the other one is approved, not running).
  const row = screen.getByTestId(`plinth-alloc-${running}`).textContent;
  const acc = row.match(/h100-80gb([0-9.]+)41\.28$/);
  assert.ok(acc, row);
  assert.ok(micro(accBefore) <= micro(acc[1]) && micro(acc[1]) <= micro(accAfter), `${accBefore} <= ${acc[1]} <= ${accAfter}`);
  assert.match(screen.getByText('Running allocations (1)').textContent, /\(1\)/);
  const link = screen.getByText('Open the Plinth dashboard').closest('a');
  assert.equal(link.getAttribute('href'), world.base + '/');
  await screenshot('card');
});

test('plinth.io/project narrows the running allocations to that project', async () => {
  await render({ 'plinth.io/team': 'nlp', 'plinth.io/project': 'vision-x' });
  await screen.findByTestId('plinth-no-running', {}, { timeout: 30000 });
  assert.equal(text('plinth-reserved'), 'Reserved55.04'); // the budget is the team's
});

test('empty state: without the annotation the card says what to add', async () => {
  await render({});
  assert.match(text('plinth-empty'), /plinth\.io\/team: <team id>/);
  await screenshot('card-empty');
});

test('error state: an unknown team and a missing proxy endpoint say what to check', async () => {
  await render({ 'plinth.io/team': 'ghost' });
  await screen.findByTestId('plinth-error', {}, { timeout: 30000 });
  assert.match(text('plinth-error'), /Cannot read team ghost from Plinth: GET \/v1\/teams\/ghost answered 404/);
  assert.match(text('plinth-error'), /proxy\.endpoints\.\/plinth/);
  await screenshot('card-error');
  await render({ 'plinth.io/team': 'nlp' }, { proxyPath: '/not-configured' });
  await screen.findByTestId('plinth-error', {}, { timeout: 30000 });
  assert.match(text('plinth-error'), /answered 404/);
});

/** The rendered page (markup + the MUI styles JSS put in <head>) as HTML and a Chromium PNG. */
const screenshot = name => savePage(process.env.PLINTH_CARD_SCREENSHOT || world.dir, name, document);
