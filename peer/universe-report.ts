import type { UniverseReport } from '../shared/protocol.js';

/**
 * Tells the authority about this peer's universe build (`POST /api/v1/cohorts/:cohortId/universe`,
 * the peer token as Bearer), so the dashboard draws the build as it happened. Resolves to null when
 * accepted, else to what went wrong; never throws (the build's result does not depend on it).
 */
export async function postUniverseReport(serverWsUrl: string, token: string | null, cohortId: string, report: UniverseReport, timeoutMs = 5_000): Promise<string | null> {
  const url = new URL(serverWsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = `/api/v1/cohorts/${encodeURIComponent(cohortId)}/universe`;
  url.search = '';
  url.username = '';
  url.password = '';
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
      body: JSON.stringify(report),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await res.text();
    // 404: an authority from before this report; its dashboard infers the bar.
    return res.ok ? null : `the authority answered ${res.status}: ${body.slice(0, 200)}`;
  } catch (err) {
    return `cannot reach ${url.origin}: ${(err as Error).message}`;
  }
}
