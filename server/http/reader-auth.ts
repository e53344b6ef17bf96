import type { IncomingHttpHeaders } from 'node:http';
import type { ServerConfig } from '../config.js';
import { bearerToken, tokenMatches } from './auth.js';

/**
 * Who may read (the API, the dashboard, the event stream): anyone when the
 * authority has no tokens (it then binds loopback only), else a request
 * carrying the peer or the admin token, as `Authorization: Bearer` or as the
 * dashboard's cookie (set by its login form).
 */

export const tokenCookieName = 'taskshard_token';

/** The dashboard cookie's token, or null. */
export function cookieToken(headers: IncomingHttpHeaders): string | null {
  const header = headers.cookie;
  if (typeof header !== 'string') return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() !== tokenCookieName) continue;
    try {
      const value = decodeURIComponent(part.slice(eq + 1).trim());
      return value === '' ? null : value;
    } catch {
      return null;
    }
  }
  return null;
}

/** Whether `token` is the peer or the admin token. */
export function isReaderToken(token: string | null, config: Pick<ServerConfig, 'peerToken' | 'adminToken'>): boolean {
  return (config.peerToken !== null && tokenMatches(token, config.peerToken)) || (config.adminToken !== null && tokenMatches(token, config.adminToken));
}

/** Whether the authority asks readers for a token at all. */
export function readsNeedToken(config: Pick<ServerConfig, 'peerToken' | 'adminToken'>): boolean {
  return config.peerToken !== null || config.adminToken !== null;
}

/** Whether a request may read: no tokens configured, or a reader token as Bearer or cookie. */
export function mayRead(headers: IncomingHttpHeaders, config: Pick<ServerConfig, 'peerToken' | 'adminToken'>): boolean {
  if (!readsNeedToken(config)) return true;
  return isReaderToken(bearerToken(headers), config) || isReaderToken(cookieToken(headers), config);
}
