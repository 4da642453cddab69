/* index.ts - the Plinth frontend plugin's exports. */
export { plinthPlugin, EntityPlinthBudgetCard, PlinthQuoteFieldExtension } from './plugin';
export { TEAM_ANNOTATION, PROJECT_ANNOTATION } from './components/EntityPlinthBudgetCard';
export type { EntityPlinthBudgetCardProps } from './components/EntityPlinthBudgetCard';
export { PlinthQuoteField, validatePlinthQuote } from './components/PlinthQuoteField';
export type { PlinthQuoteValue, PlinthQuoteUiOptions } from './components/PlinthQuoteField';
export { whatFits } from './quote';
