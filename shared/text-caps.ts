import { limits } from './limits.js';

declare global {
  interface String {
    /** ES2024 (Node 20+): false when the string holds a lone surrogate. */
    isWellFormed(): boolean;
    /** ES2024 (Node 20+): lone surrogates replaced with U+FFFD. */
    toWellFormed(): string;
  }
}

/**
 * Text the authority sends is cut to the protocol's caps, so no input (an
 * unknown 1 MB key, a long header) is ever echoed at length. The cut never
 * splits a surrogate pair and ends with `…`.
 */
export function capText(text: string, maxChars: number = limits.maxMessageLength): string {
  if (text.length <= maxChars) return text;
  let end = Math.max(0, maxChars - 1);
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** A key or path segment from input, as shown in a message. */
export const maxShownKeyChars = 64;
