/*
 * plugin.ts - the Plinth frontend plugin and its card extension.  The card
 * is lazy-loaded like every Backstage entity card.
 */
import { createComponentExtension, createPlugin } from '@backstage/core-plugin-api';

export const plinthPlugin = createPlugin({ id: 'plinth' });

export const EntityPlinthBudgetCard = plinthPlugin.provide(
  createComponentExtension({
    name: 'EntityPlinthBudgetCard',
    component: {
      lazy: () => import('./components/EntityPlinthBudgetCard').then(m => m.EntityPlinthBudgetCard),
    },
  }),
);
