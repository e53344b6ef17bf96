import type { Refusal } from '../core/effects.js';

/**
 * The human message of a refusal (both wire protocols). Code never tests
 * these strings; tests and people read them.
 */
export function describeRefusal(r: Refusal): string {
  switch (r.kind) {
    case 'duplicate-peer':
      return `peer id "${r.peerId}" is held by another ${r.heldBy === 'connection' ? 'connection' : 'peer in its grace period'}; resume with its token or use another peer id`;
    case 'schema-mismatch':
      return `cohort ${r.cohortId} runs schema ${r.schemaId} ${r.digest}; this hello has ${r.presented}`;
    case 'stale-lease':
      if (r.why === 'unknown') return `lease ${r.leaseId} is unknown to the authority; the result was not recorded`;
      if (r.why === 'cohort-closed') return `the cohort of lease ${r.leaseId} is closed; the result was not recorded`;
      return r.ok
        ? `lease ${r.leaseId} already ended (${r.end?.kind ?? 'ended'}) and step "${r.stepId}" is ${r.stepStatus ?? 'resolved'}; this completion changed nothing`
        : `lease ${r.leaseId} already ended (${r.end?.kind ?? 'ended'}); its failure is not counted`;
    case 'no-lease-held':
      return `this connection holds no task (task ${r.stepId} was already reported, was aborted, or was never given to it); nothing changed`;
    case 'lease-not-held':
      return `lease ${r.leaseId} belongs to another peer; the result was not recorded`;
    case 'wrong-step':
      return r.leaseId === null
        ? `this connection holds task ${r.leaseStepId}, not task ${r.stepId}; nothing changed`
        : `lease ${r.leaseId} is for step "${r.leaseStepId}", not "${r.stepId}"`;
    case 'not-joined':
      return 'send hello before step.finished';
    case 'already-joined':
      return `this connection already joined as ${r.peerId}`;
    case 'shutting-down':
      return 'the authority is shutting down; reconnect with your resume token';
    case 'quota-exceeded':
      return r.quota === 'cohorts'
        ? `repo ${r.repo} with cache ${r.cacheId} already has ${r.held} open cohorts, the most one source may have; join one or wait for one to finish`
        : `repo ${r.repo} with cache ${r.cacheId} already holds ${r.held} steps in open cohorts; ${r.requested} more would pass the limit of ${r.limit} per source`;
    case 'internal':
      return 'internal error; see the authority log';
    case 'frame':
      return r.message;
  }
}
