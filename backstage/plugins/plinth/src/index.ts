/* index.ts - the Plinth frontend plugin's exports. */
export { plinthPlugin, EntityPlinthBudgetCard } from './plugin';
export { TEAM_ANNOTATION, PROJECT_ANNOTATION } from './components/EntityPlinthBudgetCard';
export type { EntityPlinthBudgetCardProps } from './components/EntityPlinthBudgetCard';
