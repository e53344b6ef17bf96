import { randomBytes } from 'node:crypto';
import type { Hello } from '../../shared/protocol.js';
import { formatJsonPath } from '../../shared/json-text.js';
import { normalizeRepo } from '../../shared/repo-url.js';
import type { SchemaDef } from '../../shared/schema-file.js';
import type { Registration } from '../core/records.js';
import type { CoreInput, TokenPair } from '../core/core-types.js';
import { hashToken } from './auth.js';
import { SchemaCheckCache, type ValidSchema } from './schema-check-cache.js';

/** One per process: a fleet sends the same few schemas, each checked once (schema-check-cache.ts). */
const schemaChecks = new SchemaCheckCache();

/**
 * Turns a validated `hello` into what the core needs, re-checking the schema
 * the peer sent (graph rules and digest): the authority never trusts a digest
 * it did not compute. A digest-first hello (`schemaDigest` without `schema`)
 * gets the schema this authority checked under that digest, or `unknown-schema`
 * when it holds none (the adapter answers `UNKNOWN_SCHEMA`; the peer sends the
 * schema). A hello with both must have a `schemaDigest` that matches its schema.
 */
export type HelloCheck =
  | { readonly ok: true; readonly schema: SchemaDef; readonly digest: string; readonly registration: Registration }
  | { readonly ok: false; readonly refusal: 'schema-mismatch' | 'unknown-schema'; readonly message: string };

/**
 * Lets digest-first hellos name the schemas of cohorts restored at start (each distinct schema
 * object once): after a restart or a failover, a reconnecting fleet is not asked for them again.
 */
export function rememberRestoredSchemas(cohorts: Iterable<{ readonly schema: SchemaDef; readonly digest: string }>): void {
  const seen = new Set<SchemaDef>();
  for (const c of cohorts) {
    if (seen.has(c.schema)) continue;
    seen.add(c.schema);
    schemaChecks.remember(c.schema, c.digest);
  }
}

export function checkHello(hello: Hello): HelloCheck {
  const checked = checkedSchema(hello);
  if (!checked.ok) return checked;
  return { ok: true, schema: checked.schema, digest: checked.digest, registration: registrationOf(hello) };
}

/** The hello's schema: checked (a full hello) or looked up by its hello digest (a digest-first one). */
function checkedSchema(hello: Hello): Extract<HelloCheck, { ok: false }> | ValidSchema {
  const named = hello.schemaDigest;
  if (hello.schema === undefined) {
    // The decoder refuses a hello with neither; a caller that skipped it gets a clear refusal, not a crash.
    if (named === undefined) return { ok: false, refusal: 'schema-mismatch', message: 'schema: required (or schemaDigest)' };
    const known = schemaChecks.known(named);
    if (known !== undefined) return known;
    return { ok: false, refusal: 'unknown-schema', message: `schemaDigest ${named}: this authority does not hold that schema; send the hello again with its schema` };
  }
  const claimed = hello.schema.digest;
  const { result, helloDigest } = schemaChecks.checkSent(hello.schema);
  if (!result.ok) {
    const first = result.problems[0]!;
    return { ok: false, refusal: 'schema-mismatch', message: `schema.${formatJsonPath(first.path)}: ${first.message}` };
  }
  if (result.digest !== claimed) {
    return { ok: false, refusal: 'schema-mismatch', message: `schema digest ${claimed} does not match its content (${result.digest}); is the peer a different taskshard version?` };
  }
  if (named !== undefined && named !== helloDigest) {
    return {
      ok: false,
      refusal: 'schema-mismatch',
      message: `schemaDigest ${named} does not match the schema sent (its digest with estimates is ${helloDigest}); is the peer a different taskshard version?`,
    };
  }
  return result;
}

/** What the core matches cohorts by, from the hello's fields. */
function registrationOf(hello: Hello): Registration {
  // A cohort key (`--cohort-key`) names the group: peers with the same key, repo, cache id and
  // schema share whatever their refs and sha (the real ones are kept: shown, and used for the memo).
  // Matching by key is exact, so a keyed peer is matched as in an independent pipeline.
  const keyed = hello.cohortKey !== undefined;
  return {
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
