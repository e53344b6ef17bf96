// burn.mjs NAME MEGABYTES: stands in for a slow compiler in a package's `build` script. Hashes
// MEGABYTES of generated input on one core (a few seconds) and writes dist/index.js, whose content
// depends only on the arguments and on the dependencies' dist/ files, so it is identical everywhere.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const [name, megabytesText, ...deps] = process.argv.slice(2);
const megabytes = Number(megabytesText);
if (!name || !Number.isInteger(megabytes) || megabytes <= 0) {
  console.error('usage: node burn.mjs NAME MEGABYTES [DEPENDENCY_DIST_FILE...]');
  process.exit(2);
}
const hash = createHash('sha256');
const chunk = Buffer.alloc(1_000_000, `${name}\n`);
for (let i = 0; i < megabytes; i += 1) hash.update(chunk);
for (const dep of deps) hash.update(readFileSync(dep));
mkdirSync('dist', { recursive: true });
writeFileSync('dist/index.js', `export const digest = ${JSON.stringify(hash.digest('hex').slice(0, 16))};\n`);
console.log(`built ${name} (${megabytes} MB hashed)`);
