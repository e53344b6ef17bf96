import type { UniverseReport } from '../shared/protocol.js';
import { postToCohort } from './authority-post.js';

/**
 * Tells the authority about this peer's universe build (`POST /api/v1/cohorts/:cohortId/universe`,
 * the peer token as Bearer), so the dashboard draws the build as it happened. Resolves to null when
 * accepted, else to what went wrong; never throws (the build's result does not depend on it).
 */
export function postUniverseReport(serverWsUrl: string, token: string | null, cohortId: string, report: UniverseReport, timeoutMs = 5_000): Promise<string | null> {
  // A 404 comes from an authority older than this report; its dashboard infers the bar.
  return postToCohort(serverWsUrl, token, cohortId, 'universe', report, timeoutMs);
}
