import { afterAll, beforeAll, expect } from 'vitest';

/**
 * Fails a test file that leaks a socket, a server or a child process: after
 * all its tests, no more may be open than before them (the test worker's own
 * pipes are there from the start). Closing ones get a moment to finish.
 */
const watched = new Set(['TCPSocketWrap', 'TCPServerWrap', 'ProcessWrap', 'PipeWrap']);

function openCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) if (watched.has(r)) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

let before = new Map<string, number>();
beforeAll(() => {
  before = openCounts();
});

afterAll(async () => {
  let leaked: string[] = [];
  for (let i = 0; i < 100; i++) {
    leaked = [...openCounts()].filter(([r, n]) => n > (before.get(r) ?? 0)).map(([r, n]) => `${r} x${n - (before.get(r) ?? 0)}`);
    if (leaked.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  expect(leaked, 'sockets, servers or processes left open by this test file').toEqual([]);
});
