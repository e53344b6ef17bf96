import { randomBytes } from 'node:crypto';
import type { Hello } from '../../shared/protocol.js';
import { formatJsonPath } from '../../shared/json-text.js';
import { normalizeRepo } from '../../shared/repo-url.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import type { Registration } from '../core/records.js';
import type { CoreInput, TokenPair } from '../core/core-types.js';
import { hashToken } from './auth.js';
import { SchemaCheckCache } from './schema-check-cache.js';

/** One per process: a fleet sends the same few schemas, each checked once (schema-check-cache.ts). */
const schemaChecks = new SchemaCheckCache();

/**
 * Turns a validated `hello` into what the core needs, re-checking the schema
 * the peer sent (graph rules and digest): the authority never trusts a digest
 * it did not compute.
 */
export type HelloCheck =
  | { readonly ok: true; readonly schema: SchemaDef; readonly digest: string; readonly registration: Registration }
  | { readonly ok: false; readonly message: string };

export function checkHello(hello: Hello): HelloCheck {
  const claimed = hello.schema.digest;
  const result = schemaChecks.check(hello.schema);
  if (!result.ok) {
    const first = result.problems[0]!;
    return { ok: false, message: `schema.${formatJsonPath(first.path)}: ${first.message}` };
  }
  if (result.digest !== claimed) {
    return { ok: false, message: `schema digest ${claimed} does not match its content (${result.digest}); is the peer a different taskshard version?` };
  }
  // A cohort key (`--cohort-key`) names the group: peers with the same key, repo, cache id and
  // schema share whatever their refs and sha (the real ones are kept: shown, and used for the memo).
  // Matching by key is exact, so a keyed peer is matched as in an independent pipeline.
  const keyed = hello.cohortKey !== undefined;
  return {
    ok: true,
    schema: result.schema,
    digest: result.digest,
    registration: {
      // Every spelling of a repository matches (old peers send it unnormalized).
      repo: normalizeRepo(hello.repo),
      baseRef: hello.baseRef,
      baseSha: hello.baseSha ?? null,
      patchsets: hello.patchsets,
      changeRef: hello.changeRef ?? null,
      pipelineName: hello.pipeline.name,
      pipelineType: keyed ? 'independent' : hello.pipeline.type,
      isolated: hello.isolated,
      cacheId: hello.cacheId,
      ...(hello.labels === undefined || hello.labels.length === 0 ? {} : { labels: [...hello.labels].sort() }),
      cohortKey: hello.cohortKey ?? null,
      ...(hello.ciJobUrl === undefined ? {} : { ciJobUrl: hello.ciJobUrl }),
    },
  };
}

/** A fresh random resume token and its hash. */
export function freshToken(): TokenPair {
  const token = `rt_${randomBytes(24).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

/**
 * The tokens of a hello, for the core: the resume token it presented, and the token a new registration
 * gets. A peer that sent a `registrationToken` (validated by the hello schema: 43 to 128 base64url
 * characters) gets that one as its resume token, so repeating the hello after a lost welcome resumes the
 * registration it made; older peers get a fresh random one.
 */
export function helloTokens(hello: Hello): Pick<HelloTokens, 'presentedToken' | 'freshToken' | 'registrationToken'> {
  const registrationToken = hello.registrationToken === undefined ? null : { token: hello.registrationToken, hash: hashToken(hello.registrationToken) };
  return {
    presentedToken: hello.resumeToken === undefined ? null : { token: hello.resumeToken, hash: hashToken(hello.resumeToken) },
    freshToken: registrationToken ?? freshToken(),
    registrationToken,
  };
}

type HelloTokens = Extract<CoreInput, { kind: 'hello' }>;
