/**
 * Data and live updates: JSON from the read API (a 401 sends the browser to
 * the login form), and one EventSource per page. The server pushes a message
 * after each commit that touched a cohort; the page then re-reads what it
 * shows (cache evidence arrives whole, in its push). There is no polling:
 * without pushes, nothing is fetched.
 */

import type { CacheEvidenceEntry } from './api-types.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
  if (res.status === 401) {
    location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
    throw new HttpError(401, 'not logged in');
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: { message?: string } };
      if (body.error?.message) message = body.error.message;
    } catch {
      // not JSON: keep the status line
    }
    throw new HttpError(res.status, message);
  }
  return (await res.json()) as T;
}

/** Runs `load` now and again whenever asked; asks during a run coalesce into one more run. */
export function refresher(load: () => Promise<void>, onError: (err: Error) => void): () => void {
  let running = false;
  let again = false;
  const run = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await load();
      } while (again);
    } catch (err) {
      onError(err as Error);
    } finally {
      running = false;
    }
  };
  return () => void run();
}

export interface CohortChange {
  readonly cohortId: string;
  readonly status: string | null;
  readonly kinds: readonly string[];
}

/** Opens the event stream; `onChange` runs for each pushed change and after every reconnect. */
export function subscribe(
  query: string,
  handlers: { cohort?: (c: CohortChange | null) => void; peers?: () => void; cacheEvidence?: (e: { cohortId: string; evidence: CacheEvidenceEntry }) => void },
): EventSource {
  const indicator = document.getElementById('live');
  const source = new EventSource(`/api/v1/events${query}`);
  let wasDown = false;
  source.addEventListener('open', () => {
    indicator?.classList.add('on');
    if (indicator) indicator.textContent = 'live';
    // Missed pushes while the stream was down: re-read everything once.
    if (wasDown) {
      handlers.cohort?.(null);
      handlers.peers?.();
    }
    wasDown = false;
  });
  source.addEventListener('error', () => {
    wasDown = true;
    indicator?.classList.remove('on');
    if (indicator) indicator.textContent = 'reconnecting…';
  });
  source.addEventListener('cohort', (e) => handlers.cohort?.(JSON.parse((e as MessageEvent<string>).data) as CohortChange));
  source.addEventListener('peers', () => handlers.peers?.());
  source.addEventListener('cache-evidence', (e) => handlers.cacheEvidence?.(JSON.parse((e as MessageEvent<string>).data) as { cohortId: string; evidence: CacheEvidenceEntry }));
  return source;
}
