// Builds the dashboard into dist/web: compiles web/src (tsconfig.web.json) and copies the
// static files next to it. Run by `npm run build` (and so by `npm ci` through `prepare`).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/web');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.web.json')], { cwd: root, stdio: 'inherit' });
for (const file of ['index.html', 'login.html', 'style.css']) copyFileSync(join(root, 'web', file), join(out, file));
