import { describe, expectTypeOf, it } from 'vitest';
import type { RunTimeline } from '../../server/http/run-timeline.js';
import type { TrendRow } from '../../server/http/run-trends.js';
import type { RunTimeline as WebRunTimeline, TrendRow as WebTrendRow } from '../../web/src/api-types.js';

/** The dashboard's copy of the API types must equal the server's (checked by `npm run check`, which typechecks tests). */
describe('web/src/api-types.ts', () => {
  it('matches the server types', () => {
    expectTypeOf<WebRunTimeline>().toEqualTypeOf<RunTimeline>();
    expectTypeOf<WebTrendRow>().toEqualTypeOf<TrendRow>();
  });
});
