import { describe, expect, it } from 'vitest';
import { runnerTimeOf } from '../../peer/index.js';

/** `runPeer()`'s runner-time fields come from the authority's `complete` summary. */
describe('runnerTimeOf', () => {
  const base = { builtHere: [], builtByOthers: [], fromMemo: [], failed: [], savedSec: 0 };

  it('saved = building alone minus join to complete', () => {
    // Built 10 s itself, 30 s for every step alone, 25 s from join to complete: 5 s saved.
    expect(runnerTimeOf({ ...base, savedSec: 20, builtSec: 10, aloneSec: 30, spentSec: 25 })).toEqual({ builtSec: 10, aloneSec: 30, spentSec: 25, savedSec: 5 });
  });

  it('is negative when waiting cost more than building alone', () => {
    // 9 runners idle behind a chain: 45 s of waiting for 30 s of work alone.
    expect(runnerTimeOf({ ...base, builtSec: 0, aloneSec: 30, spentSec: 45.5 })?.savedSec).toBe(-15.5);
  });

  it('is null when an older authority sent no runner time', () => {
    expect(runnerTimeOf({ ...base, savedSec: 3 })).toBeNull();
    expect(runnerTimeOf({ ...base, builtSec: 1, aloneSec: 2 })).toBeNull();
  });
});
