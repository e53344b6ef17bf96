import type { LivePeerEntry } from './api-types.js';
import { h, mount } from './dom.js';
import { dateTime, isWebUrl } from './format.js';
import { getJson, refresher, subscribe } from './live.js';

/** Peers: every connected peer (and those in their grace period), what each is doing. Live. */
export function peersPage(root: HTMLElement): void {
  const draw = (peers: LivePeerEntry[]): void => {
    mount(
      root,
      h('h1', {}, 'Peers'),
      h('p', { class: 'muted' }, 'Connected peers and peers in their grace period. Updates live.'),
      peers.length === 0
        ? h('div', { class: 'panel empty' }, 'No peer is connected.')
        : h(
            'table',
            { id: 'peers' },
            h('thead', {}, h('tr', {}, ...['peer', 'doing', 'cohort', 'repo', 'change', 'pipeline', 'labels', 'CI job', 'status', 'joined'].map((c) => h('th', {}, c)))),
            h(
              'tbody',
              {},
              ...peers.map((p) =>
                h(
                  'tr',
                  { 'data-peer': p.peerId },
                  h('td', { class: 'mono' }, p.peerId),
                  h('td', {}, p.doing, p.stepId ? h('span', { class: 'mono' }, ` ${p.stepId}`) : null),
                  h('td', {}, h('a', { class: 'mono', href: `/cohorts/${encodeURIComponent(p.cohortId)}` }, p.cohortId)),
                  h('td', {}, p.repo),
                  h('td', { class: 'mono' }, p.changeRef ?? p.baseRef),
                  h('td', {}, p.pipelineName),
                  h('td', { class: 'mono labels' }, p.labels.length === 0 ? '-' : p.labels.join(' ')),
                  h('td', {}, jobLink(p.ciJobUrl)),
                  h('td', {}, p.status),
                  h('td', { class: 'muted' }, dateTime(p.joinedAt)),
                ),
              ),
            ),
          ),
    );
  };
  const refresh = refresher(
    async () => draw((await getJson<{ peers: LivePeerEntry[] }>('/api/v1/peers/live')).peers),
    (err) => mount(root, h('p', { class: 'error' }, `Could not load peers: ${err.message}`)),
  );
  refresh();
  subscribe('', { cohort: refresh, peers: refresh });
}

/** The peer's CI job page (from its CI environment), or a dash when it reported none. */
function jobLink(url: string | null): HTMLElement | string {
  if (url === null || !isWebUrl(url)) return '—';
  return h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', 'data-ci-job': url }, 'job ↗');
}
