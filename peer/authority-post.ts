/**
 * POSTs a JSON report about this peer's run to one of its cohort's API routes
 * (`/api/v1/cohorts/:cohortId/<route>`, the peer token as Bearer) on the
 * authority behind `serverWsUrl`. Resolves to null when accepted, else to what
 * went wrong; never throws (the build's result does not depend on it).
 */
export async function postToCohort(serverWsUrl: string, token: string | null, cohortId: string, route: string, report: unknown, timeoutMs: number): Promise<string | null> {
  const url = new URL(serverWsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = `/api/v1/cohorts/${encodeURIComponent(cohortId)}/${route}`;
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
    return res.ok ? null : `the authority answered ${res.status}: ${body.slice(0, 200)}`;
  } catch (err) {
    return `cannot reach ${url.origin}: ${(err as Error).message}`;
  }
}
