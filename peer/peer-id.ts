import { limits } from '../shared/limits.js';

/**
 * Default peer ids. A peer id must be unique while connected and use the safe
 * id characters (letters, digits, `_ . : @ + -`, no `..`). CI job names can
 * contain anything, so they are folded into that alphabet here.
 */

/** `name` folded into the peer-id alphabet, at most `maxLength` characters. */
export function toPeerId(name: string, maxLength: number = limits.maxPeerIdLength): string {
  let id = name
    .replace(/[^A-Za-z0-9_.:@+-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/-{2,}/g, '-')
    .replace(/^[^A-Za-z0-9_]+/, '')
    .replace(/-+$/, '');
  if (id === '') id = 'peer';
  return id.slice(0, maxLength).replace(/[.-]+$/, '') || 'peer';
}

/** `base-suffix`, truncating `base` so the whole id fits. */
export function withSuffix(base: string, suffix: string): string {
  return `${toPeerId(base, limits.maxPeerIdLength - suffix.length - 1)}-${suffix}`;
}
