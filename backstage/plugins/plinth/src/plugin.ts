/*
 * plugin.ts - the Plinth frontend plugin: the budget card (lazy-loaded like
 * every Backstage entity card) and the scaffolder form field `PlinthQuote`
 * (registered inside <ScaffolderFieldExtensions> on the scaffolder route).
 */
import { createComponentExtension, createPlugin } from '@backstage/core-plugin-api';
import { createScaffolderFieldExtension } from '@backstage/plugin-scaffolder-react';
import { PlinthQuoteField, PlinthQuoteUiOptions, PlinthQuoteValue, validatePlinthQuote } from './components/PlinthQuoteField';

export const plinthPlugin = createPlugin({ id: 'plinth' });

export const EntityPlinthBudgetCard = plinthPlugin.provide(
  createComponentExtension({
    name: 'EntityPlinthBudgetCard',
    component: {
      lazy: () => import('./components/EntityPlinthBudgetCard').then(m => m.EntityPlinthBudgetCard),
    },
  }),
);

/** `ui:field: PlinthQuote` in a template: Plinth's price and verdict before the review. */
export const PlinthQuoteFieldExtension = plinthPlugin.provide(
  createScaffolderFieldExtension<PlinthQuoteValue, PlinthQuoteUiOptions>({
    name: 'PlinthQuote',
    component: PlinthQuoteField,
    validation: validatePlinthQuote,
  }),
);
