import { limits } from './limits.js';

/**
 * A CI job's page, as a peer reports it in `hello.ciJobUrl` and the dashboard links it: an absolute
 * http(s) URL, at most `limits.maxUrlLength` characters, printable, with no user or password
 * (a token must never end up on a dashboard). Pure: no I/O.
 */
export function isJobUrl(value: string): boolean {
  // eslint-disable-next-line no-control-regex
  if (value.length === 0 || value.length > limits.maxUrlLength || /[\u0000-\u0020\u007f]/.test(value)) return false;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '' && url.hostname !== '';
}

/** `value` when it is a {@link isJobUrl job URL}, else null. */
export function jobUrlOrNull(value: string | null | undefined): string | null {
  const trimmed = value?.trim();
  return trimmed !== undefined && isJobUrl(trimmed) ? trimmed : null;
}
