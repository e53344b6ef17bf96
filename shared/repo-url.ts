/**
 * One spelling per repository, so jobs that name it differently still share:
 * `https://github.com/acme/mono`, `…/mono.git`, `git@github.com:acme/mono.git`,
 * `ssh://git@github.com/acme/mono` and `HTTPS://GitHub.com/acme/mono/` all
 * become `github.com/acme/mono`. Scheme, credentials and user are dropped,
 * the host is lower-cased (a non-default port is kept), and a trailing `/` or
 * `.git` is removed; the path keeps its case (some hosts are case-sensitive).
 * Anything that is not a URL or scp-style address (a local path) only loses
 * its trailing `/` and `.git`. Pure and idempotent.
 */
export function normalizeRepo(raw: string): string {
  const value = raw.trim();
  const defaultPorts: Readonly<Record<string, string>> = { 'https:': '443', 'http:': '80', 'ssh:': '22', 'git:': '9418' };
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? safeUrl(value) : null;
  if (url !== null && url.host !== '') {
    const port = url.port !== '' && url.port !== defaultPorts[url.protocol.toLowerCase()] ? `:${url.port}` : '';
    return `${url.hostname.toLowerCase()}${port}${trimPath(decodeSafe(url.pathname))}`;
  }
  // An already-normalized `host:port/path` stays as it is.
  if (/^[^:/\s@]+:\d+(\/|$)/.test(value)) return `${value.replace(/^[^/]+/, (h) => h.toLowerCase()).replace(/\/+$/, '').replace(/\.git$/i, '')}`;
  // scp-style: [user@]host:path (a single colon before any slash; not a Windows drive letter).
  const scp = /^(?:[^@/\s]+@)?([^:/\s]{2,}):(?!\/\/)(.+)$/.exec(value);
  if (scp) return `${scp[1]!.toLowerCase()}${trimPath(`/${scp[2]!.replace(/^\/+/, '')}`)}`;
  return trimPath(value);
}

function trimPath(path: string): string {
  let p = path.replace(/\/+$/, '');
  if (/\.git$/i.test(p)) p = p.slice(0, -4);
  return p.replace(/\/+$/, '');
}

function safeUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

function decodeSafe(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
