/**
 * Size caps shared by the schema-file format and protocol v1. Every string and
 * list that crosses a boundary is bounded by one of these.
 */
export const limits = Object.freeze({
  /** Step ids and schema ids. */
  maxIdLength: 64,
  /** Peer ids (CI job identifiers can be long). */
  maxPeerIdLength: 128,
  /** A build target pattern such as `//my_universe/common/...`. */
  maxTargetLength: 512,
  /** Steps in one schema. */
  maxSteps: 2000,
  /** `needs` entries of one step. */
  maxNeedsPerStep: 64,
  /** One label (`gpu`, `arch:arm64`). */
  maxLabelLength: 64,
  /** Labels a step requires, or a peer has. */
  maxLabels: 32,
  /** Repository URL or name. */
  maxRepoLength: 512,
  /** Git refs (base ref, change refs, patchsets). */
  maxRefLength: 256,
  /** Patchsets in one source state. */
  maxPatchsets: 100,
  /** A link to a CI job's page (`hello.ciJobUrl`). */
  maxUrlLength: 1024,
  /** Cache id, pipeline name. */
  maxNameLength: 128,
  /** Tail of a failing step's log sent to the authority. */
  maxLogTailChars: 4096,
  /** Resume tokens, lease ids, cohort ids. */
  maxTokenLength: 128,
  /** Human-readable messages and reasons. */
  maxMessageLength: 2048,
  /** Running steps listed in one `wait` frame. */
  maxWaitEntries: 50,
  /**
   * Bytes of any frame but a connection's first (the hello or INIT, which may
   * be up to the server's `--max-payload-bytes`). A `step.finished` with a
   * 4096-character log tail, every character escaped, is under 25 KiB.
   */
  maxFrameBytes: 64 * 1024,
  /** A step estimate: one week. */
  maxEstimateSec: 7 * 24 * 3600,
});
