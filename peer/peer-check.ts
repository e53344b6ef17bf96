import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { closeCodes } from '../shared/close-codes.js';
import { AuthorityLink, type LinkEnd } from './authority-link.js';
import { detectCiEnvironment, type Env } from './ci-environment.js';
import { clientVersion } from './client-version.js';
import { classifyLinkEnd, describeLinkEnd } from './frame-checks.js';
import { readGitFacts } from './git-facts.js';
import { nameOption, parsePeerOptions, type PeerOptions } from './options.js';
import { loadPeerSchema } from './schema-source.js';
import { resolveSource } from './source-resolver.js';

/**
 * `taskshard peer --check`: everything a real run would need, without joining
 * a cohort — the options, the schema, the source state, COMMAND (already
 * resolved by the caller), each listed authority's health and version, and a
 * WebSocket upgrade with the token (closed at once, no hello). One line per
 * check; resolves with 0 when all pass, 2 when any fails. With several
 * authorities, a standby or a dead one is a warning; none accepting is a failure.
 */
export async function runPeerCheck(input: Omit<PeerOptions, 'runner'> & { readonly commandPath: string }): Promise<0 | 2> {
  const out = process.stdout;
  let failed = 0;
  const ok = (what: string): void => void out.write(`taskshard: check ok: ${what}\n`);
  const fail = (what: string): void => {
    failed++;
    out.write(`taskshard: check FAILED: ${what}\n`);
  };
  const { commandPath, ...rest } = input;
  const parsed = parsePeerOptions({ ...rest, runner: async () => ({ ok: true, exitCode: 0 }) }, 'flags');
  if (!parsed.ok) {
    for (const p of parsed.problems) fail(p);
    return 2;
  }
  const o = parsed.options;
  const env: Env = o.env ?? process.env;
  const loaded = loadPeerSchema(o.schema);
  if (loaded.ok) ok(`schema ${loaded.schema.id}: ${loaded.schema.steps.length} steps, ${loaded.digest}`);
  else for (const p of loaded.problems) fail(p);
  const resolved = resolveSource(o, {
    ci: detectCiEnvironment(env),
    git: () => readGitFacts(o.cwd ?? process.cwd()),
    hostName: hostname(),
    processId: process.pid,
    randomSuffix: () => randomBytes(3).toString('hex'),
  });
  if (resolved.ok) {
    const s = resolved.source;
    ok(`source ${s.repo} ${s.baseRef}${s.baseSha === null ? ' (NO base sha: shares only with jobs running now)' : `@${s.baseSha.slice(0, 12)}`}, cache ${o.cacheId}, peer ${s.peerId}`);
  } else {
    for (const p of resolved.problems) fail(`${nameOption([p.option], 'flags')}: ${p.message}`);
  }
  ok(`COMMAND ${commandPath}`);

  const token = o.token ?? (env.TASKSHARD_TOKEN?.trim() || null);
  const timeoutMs = o.connectTimeoutSec * 1000;
  const several = o.server.length > 1;
  // With several authorities, one that is down or on standby is expected (failover); it is a warning.
  // The check fails when none accepts this peer, or when one refuses its token or the upgrade.
  const warn = (what: string): void => void out.write(`taskshard: check WARNING: ${what}\n`);
  const downProblem = several ? warn : fail;
  let accepted = 0;
  for (const server of o.server) {
    const base = new URL(server);
    const httpBase = `${base.protocol === 'wss:' ? 'https:' : 'http:'}//${base.host}`;
    const health = `${httpBase}/healthz`;
    try {
      const res = await fetch(health, { signal: AbortSignal.timeout(timeoutMs) });
      const body = (await res.json().catch(() => ({}))) as { status?: unknown; version?: unknown; active?: unknown };
      const version = typeof body.version === 'string' ? body.version : 'unknown';
      if (res.ok && body.status === 'standby') ok(`authority ${base.host} is on standby (active: ${typeof body.active === 'string' ? body.active : 'none yet'}); peers move to the active one`);
      else if (res.ok) ok(`authority ${base.host} is up (${String(body.status)}), version ${version}`);
      else downProblem(`authority ${health} answered HTTP ${res.status} (${String(body.status ?? 'not ok')})`);
      if (version !== clientVersion() && version !== 'unknown') {
        warn(`this peer is ${clientVersion()}, the authority ${version}; get the matching peer from ${httpBase}/peer.mjs`);
      }
    } catch (err) {
      downProblem(`authority ${health} unreachable: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
    }

    const end = await tryUpgrade(server, token, timeoutMs);
    if (end === 'opened') {
      accepted++;
      ok(`WebSocket ${server} accepted this peer${token === null ? ' (no token sent)' : "'s token"}`);
      continue;
    }
    const verdict = classifyLinkEnd(end);
    const why = describeLinkEnd(end, null);
    if (verdict === 'unauthorized') fail(`WebSocket ${server} REFUSED the token (${why}); check TASKSHARD_TOKEN`);
    else if (verdict === 'refused') fail(`WebSocket ${server} REFUSED the upgrade (${why})`);
    else if (several && end.httpStatus === 503) ok(`WebSocket ${server} answers ${why} (a standby; its token check happens once it is active)`);
    else downProblem(`WebSocket ${server} unreachable (${why})`);
  }
  if (several && accepted === 0) fail(`none of the ${o.server.length} authorities accepted this peer (is one of them active?)`);
  out.write(`taskshard: check ${failed === 0 ? 'passed' : `FAILED (${failed} problem${failed === 1 ? '' : 's'})`}: exit ${failed === 0 ? 0 : 2}\n`);
  return failed === 0 ? 0 : 2;
}

/** Opens the peer WebSocket and closes it at once without a hello. */
function tryUpgrade(url: string, token: string | null, timeoutMs: number): Promise<'opened' | LinkEnd> {
  return new Promise((resolve) => {
    let opened = false;
    const link: AuthorityLink = new AuthorityLink(url, token, timeoutMs, {
      opened: () => {
        opened = true;
        void link.close(closeCodes.normal, 'check');
      },
      frame: () => undefined,
      binaryFrame: () => undefined,
      ended: (end) => resolve(opened ? 'opened' : end),
    });
  });
}
