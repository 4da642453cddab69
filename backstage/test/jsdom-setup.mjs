// test/jsdom-setup.mjs - a browser-like global scope for rendering React
// under plain node (what Jest's jsdom environment does): a jsdom window whose
// properties, and its EventTarget methods, become globals.  Node's own fetch,
// URL, AbortController etc. are kept (the card talks to a real backend).
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><head></head><body></body></html>', {
  url: 'http://localhost/',
  pretendToBeVisual: true,
});
const w = dom.window;
for (const key of Object.getOwnPropertyNames(w)) {
  if (key in globalThis) continue;
  try {
    globalThis[key] = w[key];
  } catch {
    /* read-only on the Node side: keep Node's */
  }
}
// The scaffolder's Stepper scrolls to the top on each page; jsdom has no layout.
w.scrollTo = () => {};
globalThis.window = w;
globalThis.document = w.document;
for (const m of ['addEventListener', 'removeEventListener', 'dispatchEvent']) globalThis[m] = w[m].bind(w);
globalThis.IS_REACT_ACT_ENVIRONMENT = true;
