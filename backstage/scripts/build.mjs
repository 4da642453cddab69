// scripts/build.mjs - transpiles the plugins' TypeScript (plugins/*/src) to
// CommonJS in dist/<plugin>/ with esbuild, file by file (no bundling: the
// backend packages are resolved from node_modules at run time, as in a
// backend).  The frontend tests (test/*.test.src.mjs: the card, the quote
// field) are bundled instead (dist/<name>.test.mjs): Backstage's frontend
// packages ship only ESM with extension-less imports, meant for a bundler
// (the app's webpack, or Jest), which plain `node` cannot load.
// The tests load dist/; an adopter builds from src/ with backstage-cli.
import { build } from 'esbuild';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function sources(dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.tsx?$/.test(e) && !e.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

rmSync(join(root, 'dist'), { recursive: true, force: true });
for (const plugin of readdirSync(join(root, 'plugins'))) {
  const src = join(root, 'plugins', plugin, 'src');
  await build({
    entryPoints: sources(src),
    outdir: join(root, 'dist', plugin),
    outbase: src,
    format: 'cjs',
    platform: 'node',
    target: 'node22',
    jsx: 'automatic',
    logLevel: 'warning',
  });
}

// Each frontend test with the plugin's source, React and the Backstage
// frontend packages in one ESM file; jsdom and the test harness stay outside.
for (const t of readdirSync(join(root, 'test')).filter(f => f.endsWith('.test.src.mjs'))) await build({
  entryPoints: [join(root, 'test', t)],
  outfile: join(root, 'dist', t.replace('.src.mjs', '.mjs')),
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  jsx: 'automatic',
  logLevel: 'warning',
  external: ['jsdom', 'canvas'],
  loader: { '.css': 'empty', '.svg': 'dataurl', '.png': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl' },
  define: { 'process.env.NODE_ENV': '"test"' },
  // A CommonJS `require` for the bundled CommonJS packages.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  plugins: [{
    name: 'harness-outside',
    setup(b) {
      b.onResolve({ filter: /\/harness\.mjs$/ }, () => ({ path: '../test/harness.mjs', external: true }));
    },
  }],
});
