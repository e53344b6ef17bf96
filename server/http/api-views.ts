import type { CohortDetailView, CohortView, EventView, LeaseView, PeerView, StepView } from '../core/read-model.js';

/**
 * The JSON the REST API returns for the read model's views: times as ISO
 * strings, a cohort's id as `id`, a peer's pipeline as `{ name, type }`.
 * The dashboard and CLI render the same views through these functions.
 */
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function cohortJson(c: CohortView) {
  return {
    id: c.cohortId,
    schemaId: c.schemaId,
    digest: c.digest,
    repo: c.repo,
    baseRef: c.baseRef,
    baseSha: c.baseSha,
    cohortKey: c.cohortKey,
    cacheId: c.cacheId,
    pipelineType: c.pipelineType,
    pipelineNames: c.pipelineNames,
    isolated: c.isolated,
    patchsets: c.patchsets,
    status: c.status,
    createdAt: iso(c.createdAtMs)!,
    resolvedAt: iso(c.resolvedAtMs),
    secondsSaved: c.secondsSaved,
    steps: c.steps,
    peers: c.peers,
  };
}

export function stepJson(s: StepView) {
  return {
    id: s.stepId,
    target: s.target,
    needs: s.needs,
    estimateSec: s.estimateSec,
    requires: s.requires ?? [],
    status: s.status,
    attempts: s.attempts,
    failures: s.failures,
    lostLeases: s.lostLeases,
    builtBy: s.builtBy,
    fromMemo: s.fromMemo,
    durationMs: s.durationMs,
    failReason: s.failReason,
    failPeerId: s.failPeerId,
    failExitCode: s.failExitCode,
    failLogTail: s.failLogTail,
    failedOn: s.failedOn,
    unsharedReason: s.unsharedReason ?? null,
    unsharedCause: s.unsharedCause ?? null,
    resolvedAt: iso(s.resolvedAtMs),
  };
}

export function leaseJson(l: LeaseView) {
  return {
    leaseId: l.leaseId,
    stepId: l.stepId,
    peerId: l.peerId,
    attempt: l.attempt,
    backup: l.backup,
    startedAt: iso(l.startedAtMs),
    endedAt: iso(l.endedAtMs),
    outcome: l.outcome,
  };
}

export function peerJson(p: PeerView) {
  return {
    peerId: p.peerId,
    cohortId: p.cohortId,
    status: p.status,
    joinedAt: iso(p.joinedAtMs),
    graceEndsAt: iso(p.graceEndsAtMs),
    repo: p.repo,
    baseRef: p.baseRef,
    baseSha: p.baseSha,
    patchsets: p.patchsets,
    changeRef: p.changeRef,
    pipeline: { name: p.pipelineName, type: p.pipelineType },
    isolated: p.isolated,
    cacheId: p.cacheId,
    labels: p.labels ?? [],
    cohortKey: p.cohortKey,
    ciJobUrl: p.ciJobUrl,
  };
}

export function eventJson(e: EventView) {
  return { seq: e.seq, at: iso(e.atMs), kind: e.kind, stepId: e.stepId, peerId: e.peerId, detail: e.detail };
}

export function cohortDetailJson(d: CohortDetailView) {
  return {
    cohort: cohortJson(d.cohort),
    steps: d.steps.map(stepJson),
    leases: d.leases.map(leaseJson),
    peers: d.peers.map(peerJson),
    timeline: d.timeline.map(eventJson),
  };
}
