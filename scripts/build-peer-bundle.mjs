// Bundles the peer CLI (dist/cli/peer-main.js) into one self-contained file,
// dist/peer.mjs, which the authority serves at GET /peer.mjs. Runs after tsc in
// `npm run build`. Fails when anything of the server (fastify, better-sqlite3,
// ...) or any native module would end up in the bundle.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const outfile = join(root, 'dist', 'peer.mjs');
const forbidden = /node_modules\/(better-sqlite3|fastify|@fastify|pino|prom-client|bindings|file-uri-to-path)\/|\/server\/|\.node$/;

const result = await build({
  entryPoints: [join(root, 'dist', 'cli', 'peer-main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // jsonc-parser's main is a UMD build esbuild cannot follow; its ESM build bundles cleanly.
  mainFields: ['module', 'main'],
  minify: false,
  legalComments: 'inline',
  metafile: true,
  logLevel: 'warning',
  // ws loads these optional native speed-ups in a try/catch; the peer runs without them.
  external: ['bufferutil', 'utf-8-validate'],
  define: { TASKSHARD_BUNDLED_VERSION: JSON.stringify(pkg.version) },
  banner: {
    js: [
      '#!/usr/bin/env node',
      `// taskshard peer ${pkg.version} (${pkg.license}), one file: node peer.mjs peer --help`,
      "import { createRequire as __taskshardCreateRequire } from 'node:module';",
      'const require = __taskshardCreateRequire(import.meta.url);',
    ].join('\n'),
  },
});

const inputs = Object.keys(result.metafile.inputs);
const bad = inputs.filter((p) => forbidden.test(p));
if (bad.length > 0) {
  console.error(`peer bundle: server or native code would be bundled:\n  ${bad.join('\n  ')}`);
  process.exit(1);
}
console.log(`peer bundle: ${outfile} (${Math.round(statSync(outfile).size / 1024)} KiB, ${inputs.length} inputs)`);
