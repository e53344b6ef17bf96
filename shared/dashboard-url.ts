/**
 * The dashboard page of a cohort, from the URL a peer connects to:
 * `ws://host:8080/v1/peer` -> `http://host:8080/cohorts/ID` (`wss` -> `https`;
 * a path prefix before `/v1/peer`, as behind a reverse proxy, is kept).
 */
export function cohortPageUrl(peerSocketUrl: string, cohortId: string): string {
  const url = new URL(peerSocketUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  const prefix = url.pathname.replace(/\/v1\/peer\/?$/, '').replace(/\/$/, '');
  url.pathname = `${prefix}/cohorts/${encodeURIComponent(cohortId)}`;
  url.search = '';
  url.hash = '';
  url.username = '';
  url.password = '';
  return url.toString();
}
