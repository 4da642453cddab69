// test/entities.mjs - the catalog of the test backend: the two templates as
// committed (templates/*/template.yaml), the mock user of
// @backstage/backend-test-utils and the groups it belongs to.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { BACKSTAGE } from './harness.mjs';

const require = createRequire(import.meta.url);
const YAML = require('yaml');

export function template(name) {
  const t = YAML.parse(readFileSync(join(BACKSTAGE, 'templates', name, 'template.yaml'), 'utf8'));
  t.metadata.namespace = 'default';
  return t;
}

/**
 * The gpu-training-job template with a 15 s debug:wait after the submit
 * step: the recovery test kills the backend during that wait, i.e. after
 * Plinth answered and before the task finished.  Test-only; never shipped.
 */
export function crashTestTemplate() {
  const t = template('gpu-training-job');
  t.metadata.name = 'gpu-training-job-crash-test';
  t.spec.steps.push({ id: 'wait', name: 'Wait (test: the backend is killed here)', action: 'debug:wait',
    input: { seconds: 15 } });
  return t;
}

export function catalogEntities(extra = []) {
  const group = (name) => ({
    apiVersion: 'backstage.io/v1alpha1', kind: 'Group',
    metadata: { name, namespace: 'default', annotations: { 'plinth.io/team': name } },
    spec: { type: 'team', children: [], members: ['mock'] },
  });
  return [
    template('gpu-training-job'),
    template('ml-project'),
    crashTestTemplate(),
    ...extra,
    { apiVersion: 'backstage.io/v1alpha1', kind: 'User', metadata: { name: 'mock', namespace: 'default' },
      spec: { memberOf: ['group:default/nlp', 'group:default/vision'] } },
    group('nlp'),
    group('vision'),
  ];
}
