import { closeCodes, type CloseCode } from './close-codes.js';

/** One entry of the error registry. */
export interface ErrorCodeInfo {
  /** Whether repeating the same request later can succeed. */
  readonly retryable: boolean;
  /** When set, the authority closes the connection with this code after the error frame. */
  readonly closeCode: CloseCode | null;
  /** What the code means, for the README table. */
  readonly meaning: string;
}

/**
 * The registry of error codes sent in `error` frames. Codes are never renamed
 * or reused; `test/unit/error-codes.test.ts` keeps the README table equal to it.
 */
export const errorCodes = Object.freeze({
  BAD_MESSAGE: {
    retryable: false,
    closeCode: null,
    meaning: 'The frame is not valid JSON, not a known message, or a field is wrong; the message names it. Repeated bad frames close the connection with 1008.',
  },
  UNSUPPORTED_PROTOCOL: {
    retryable: false,
    closeCode: closeCodes.protocolError,
    meaning: 'The hello asks for a protocol version this authority does not speak.',
  },
  UNAUTHORIZED: {
    retryable: false,
    closeCode: closeCodes.unauthorized,
    meaning: 'Missing or wrong token, or a resume token that does not match the peer id.',
  },
  SCHEMA_MISMATCH: {
    retryable: false,
    closeCode: closeCodes.policyViolation,
    meaning: 'The schema sent in hello is invalid, its digest (or the hello\'s `schemaDigest`) does not match its content, or a resume names a cohort with another schema.',
  },
  UNKNOWN_STEP: {
    retryable: false,
    closeCode: null,
    meaning: 'The step id is not in the cohort\'s schema, or does not belong to the named lease.',
  },
  STALE_LEASE: {
    retryable: false,
    closeCode: null,
    meaning: 'The lease is unknown, or was lost and its step is already resolved; the completion changed nothing.',
  },
  LEASE_NOT_HELD: {
    retryable: false,
    closeCode: null,
    meaning: 'The lease belongs to another peer; the completion changed nothing.',
  },
  DUPLICATE_PEER: {
    retryable: false,
    closeCode: closeCodes.duplicatePeer,
    meaning: 'Another connection holds this peer id and the hello carried no matching resume token.',
  },
  NOT_JOINED: {
    retryable: false,
    closeCode: null,
    meaning: 'A message other than hello arrived before hello.',
  },
  ALREADY_JOINED: {
    retryable: false,
    closeCode: null,
    meaning: 'A second hello arrived on a connection that already joined.',
  },
  RATE_LIMITED: {
    retryable: true,
    closeCode: null,
    meaning: 'Too many frames per second on this connection; a continued flood closes it with 1008.',
  },
  SHUTTING_DOWN: {
    retryable: true,
    closeCode: closeCodes.goingAway,
    meaning: 'The authority is draining for shutdown; reconnect with your resume token.',
  },
  INTERNAL: {
    retryable: true,
    closeCode: closeCodes.internalError,
    meaning: 'An unexpected error in the authority; details are in its log, never on the wire.',
  },
  HELLO_TIMEOUT: {
    retryable: true,
    closeCode: closeCodes.policyViolation,
    meaning: 'The connection sent no valid hello (or INIT) within the hello deadline (10 s by default); reconnect and say hello at once.',
  },
  QUOTA_EXCEEDED: {
    retryable: true,
    closeCode: closeCodes.policyViolation,
    meaning: 'The hello would create a cohort past its source\'s quota (open cohorts, or steps in them, per repo and cache id); the peer builds alone. Joining an existing cohort is never refused.',
  },
  UNKNOWN_SCHEMA: {
    retryable: true,
    closeCode: null,
    meaning: 'The hello named its schema by `schemaDigest` alone and this authority does not hold that schema (it has not checked it recently); send the hello again, with `schema`, on the same connection.',
  },
} as const satisfies Record<string, ErrorCodeInfo>);

export type ErrorCode = keyof typeof errorCodes;

/** All error codes, in registry order. */
export const errorCodeList = Object.keys(errorCodes) as [ErrorCode, ...ErrorCode[]];
