import { InvalidArgumentError } from 'commander';
import type { z } from 'zod';

/** The HTTP client of the CLI commands that read the authority's API (`cohorts`, `cohort`, `durations export`). */

/** http(s) as given; ws(s) becomes http(s), so the peer's --server value works too. */
export function apiBase(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new InvalidArgumentError(`expected an http(s):// or ws(s):// URL, got "${server}"`);
  }
  const protocol = { 'http:': 'http:', 'https:': 'https:', 'ws:': 'http:', 'wss:': 'https:' }[url.protocol];
  if (!protocol) throw new InvalidArgumentError(`expected an http(s):// or ws(s):// URL, got "${server}"`);
  return `${protocol}//${url.host}`;
}

/** GETs `base + path` with the token, and checks the answer with `schema`; every failure names the URL. */
export async function getJson<T>(base: string, path: string, token: string | undefined, schema: z.ZodType<T>): Promise<T> {
  const url = `${base}${path}`;
  let response: Response;
  try {
    response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`GET ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}${text ? `: ${text.slice(0, 300)}` : ''}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`GET ${url}: the answer is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`GET ${url}: unexpected answer: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}
