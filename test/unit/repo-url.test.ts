import { describe, expect, it } from 'vitest';
import { normalizeRepo } from '../../shared/repo-url.js';

describe('normalizeRepo: one spelling per repository', () => {
  it('every way of naming one GitHub repository becomes host/owner/name', () => {
    const spellings = [
      'https://github.com/acme/mono',
      'https://github.com/acme/mono.git',
      'git@github.com:acme/mono.git',
      'HTTPS://GitHub.com/acme/mono/',
      'ssh://git@github.com/acme/mono.git',
      'ssh://git@github.com:22/acme/mono',
      'https://token:x-oauth@github.com/acme/mono.git',
      'github.com/acme/mono',
    ];
    expect(new Set(spellings.map(normalizeRepo))).toEqual(new Set(['github.com/acme/mono']));
  });

  it('keeps what tells repositories apart: path case, a non-default port, subgroups, local paths', () => {
    expect(normalizeRepo('https://gitlab.example.com:8443/group/sub/Proj.git')).toBe('gitlab.example.com:8443/group/sub/Proj');
    expect(normalizeRepo('https://github.com/Acme/Mono')).not.toBe(normalizeRepo('https://github.com/acme/mono-two'));
    expect(normalizeRepo('/srv/git/mono.git/')).toBe('/srv/git/mono');
  });

  it('is idempotent', () => {
    for (const u of ['git@github.com:acme/mono.git', 'https://gitlab.example.com:8443/g/p', '/srv/git/mono']) expect(normalizeRepo(normalizeRepo(u))).toBe(normalizeRepo(u));
  });
});
