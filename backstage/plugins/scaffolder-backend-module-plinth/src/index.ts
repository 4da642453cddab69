/*
 * index.ts - the package entry point: the module is the default export, as
 * `backend.add(import(...))` expects; the actions and client are exported
 * for adopters who register them in their own module.
 */
export { scaffolderModulePlinth as default } from './module';
export { createPlinthQuoteAction, createPlinthJobSubmitAction, teamId, ON_BEHALF_HEADER } from './actions';
export { PlinthClient, PlinthProblem } from './client';
