import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeCodes } from '../../shared/close-codes.js';
import { errorCodes } from '../../shared/error-codes.js';
import { errorCodeTableRows } from '../../scripts/render-error-table.js';

describe('error-code registry', () => {
  it('is the table in the README (edit shared/error-codes.ts, then paste `npx tsx scripts/print-error-table.ts`)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /<!-- error-codes:start -->\n\| code[^\n]*\n\|---[^\n]*\n([\s\S]*?)<!-- error-codes:end -->/.exec(readme);
    expect(block, 'README has the error-codes block').not.toBeNull();
    expect(block![1]!.trim().split('\n')).toEqual(errorCodeTableRows());
  });

  it('uses only registered close codes', () => {
    const known = new Set<number>(Object.values(closeCodes));
    for (const info of Object.values(errorCodes)) if (info.closeCode !== null) expect(known.has(info.closeCode)).toBe(true);
  });
});
