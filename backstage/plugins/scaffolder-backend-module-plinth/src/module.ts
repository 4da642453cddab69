/*
 * module.ts - the scaffolder backend module (new backend system) that adds
 * Plinth's actions to the scaffolder plugin.  Install with
 *   backend.add(import('@plinth/scaffolder-backend-module-plinth'))
 * and configure `plinth.baseUrl` and `plinth.token` (see app-config.plinth.yaml).
 */
import { coreServices, createBackendModule } from '@backstage/backend-plugin-api';
import { scaffolderActionsExtensionPoint } from '@backstage/plugin-scaffolder-node';
import { createPlinthJobSubmitAction, createPlinthQuoteAction } from './actions';
import { PlinthClient } from './client';

export const scaffolderModulePlinth = createBackendModule({
  pluginId: 'scaffolder',
  moduleId: 'plinth',
  register(env) {
    env.registerInit({
      deps: { scaffolder: scaffolderActionsExtensionPoint, config: coreServices.rootConfig },
      async init({ scaffolder, config }) {
        const client = PlinthClient.fromConfig(config);
        const dashboardUrl = config.getOptionalString('plinth.dashboardUrl') ?? `${client.baseUrl}/`;
        scaffolder.addActions(
          createPlinthQuoteAction(client),
          createPlinthJobSubmitAction({
            client,
            dashboardUrl,
            argocdUrl: config.getOptionalString('plinth.argocdUrl'),
          }),
        );
      },
    });
  },
});
