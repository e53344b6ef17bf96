import type { Hello } from '../shared/protocol.js';
import type { SessionOutcome } from './session.js';

/**
 * The frames a peer session sends (peer/session.ts) that are more than their fields, pure.
 *
 * The hello is digest-first: each connection's
 * first hello names the schema by `schemaDigest` and leaves `schema` out (53 KB for 1,000 steps,
 * which the authority parsed on every hello); an authority that holds the schema proceeds as with
 * the full hello, one that does not answers `UNKNOWN_SCHEMA` and the session sends the full hello
 * on the same connection. In a fleet the authority has almost always checked the schema already
 * (an earlier peer of the pipeline, or of an earlier run); the first peer after a schema change
 * or an authority restart pays one more round trip. Sending the full hello first and the digest
 * only on reconnects would save nothing on the hello every peer sends.
 */

/** The hello as configured: every field but the resume fields and the schema's digest-first name. */
export type BaseHello = Omit<Hello, 'resumeToken' | 'currentStep' | 'registrationToken' | 'schemaDigest'> & { readonly schema: NonNullable<Hello['schema']> };

/** Which of the two a connection's hello is. */
export type HelloForm = 'digest' | 'full';

/** Who this peer is to the authority right now: before the first welcome, its registration token; after, its resume token and step. */
export type HelloIdentity =
  | { readonly kind: 'registration'; readonly registrationToken: string }
  | { readonly kind: 'resume'; readonly resumeToken: string; readonly currentStep: { readonly stepId: string; readonly leaseId: string } | null };

/** One hello: `digest` leaves the schema out and names it by `schemaDigest` (shared/schema-digest.ts `helloSchemaDigest`). */
export function helloFrame(base: BaseHello, identity: HelloIdentity, form: HelloForm, schemaDigest: string): Hello {
  const { schema, ...fields } = base;
  const named: Hello = form === 'full' ? { ...fields, schema } : { ...fields, schemaDigest };
  // Until a welcome names its resume token, every hello carries the same registration token: if the
  // authority committed the join but died before the welcome reached us, the repeat resumes it.
  if (identity.kind === 'registration') return { ...named, registrationToken: identity.registrationToken };
  return { ...named, resumeToken: identity.resumeToken, currentStep: identity.currentStep };
}

/** The `bye` reason for how the session ended. */
export function byeReason(outcome: SessionOutcome): string {
  switch (outcome.kind) {
    case 'complete':
      return 'cohort complete';
    case 'shared-failure':
      return `step ${outcome.failure.stepId} failed`;
    case 'fail-open':
      return `failing open: ${outcome.detail}`.slice(0, 2000);
    case 'cannot-start':
      return `COMMAND could not start (${outcome.startError}) for step ${outcome.stepId}`;
    case 'interrupted':
      return 'interrupted';
  }
}
