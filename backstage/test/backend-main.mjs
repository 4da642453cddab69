// test/backend-main.mjs - one Backstage backend for the tests, in its own
// process so a test can kill it mid-task like a crash: startTestBackend from
// @backstage/backend-test-utils with the real scaffolder backend, the real
// proxy backend and Plinth's scaffolder module (dist/, from plugins/), a
// catalog holding the two templates, a user and their groups.  Settings come
// as JSON in PLINTH_TEST_BACKEND; prints "PORT <n>" when it listens.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BACKSTAGE } from './harness.mjs';
import { catalogEntities } from './entities.mjs';

const require = createRequire(import.meta.url);
const { startTestBackend, mockServices } = require('@backstage/backend-test-utils');
const { catalogServiceMock } = require('@backstage/plugin-catalog-node/testUtils');

const cfg = JSON.parse(process.env.PLINTH_TEST_BACKEND);
const backend = await startTestBackend({
  features: [
    import('@backstage/plugin-scaffolder-backend'),
    import('@backstage/plugin-proxy-backend'),
    require(join(BACKSTAGE, 'dist/scaffolder-backend-module-plinth/index.js')).default,
    catalogServiceMock.factory({ entities: catalogEntities() }),
    mockServices.rootConfig.factory({
      data: {
        backend: { database: { client: 'better-sqlite3', connection: { directory: cfg.dbDir } } },
        scaffolder: { taskRecovery: { enabled: cfg.recover, staleTimeout: { seconds: 2 } } },
        proxy: {
          endpoints: {
            '/plinth': {
              target: cfg.plinthBaseUrl,
              headers: { Authorization: `Bearer ${cfg.plinthToken}` },
              allowedMethods: ['GET'],
            },
            // The PlinthQuote form field: exactly POST /v1/quotes, nothing else.
            '/plinth-quote': {
              target: cfg.plinthBaseUrl,
              pathRewrite: { '^/api/proxy/plinth-quote/?$': '/v1/quotes' },
              headers: { Authorization: `Bearer ${cfg.plinthToken}` },
              allowedMethods: ['POST'],
            },
          },
        },
        plinth: { baseUrl: cfg.plinthBaseUrl, token: cfg.plinthToken, argocdUrl: cfg.argocdUrl },
      },
    }),
  ],
});
process.stdout.write(`PORT ${backend.server.port()}\n`);
const stop = async () => { await backend.stop(); process.exit(0); };
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
