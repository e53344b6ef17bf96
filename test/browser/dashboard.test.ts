import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { killAll, readStepLog, startAuthority, startPeer, untilLog, type Proc } from '../helpers/peer-e2e.js';
import { tempDir } from '../helpers/temp-dir.js';
import { loadPlaywright, type Browser, type Page } from '../helpers/playwright.js';
import { requireTool } from '../helpers/tools.js';

/**
 * The dashboard in Debian's Chromium (never a downloaded browser), against a
 * real `taskshard server` process and three real `taskshard peer` processes:
 * open `/`, follow the cohort's link, and check what a person sees — a lane
 * per peer, each step's bar in its builder's lane, the outcome — and that the
 * page changes by itself when the held step finishes.
 *
 * With TASKSHARD_SCREENSHOT_DIR set, it also saves the cohort page in light
 * and dark (docs/dashboard-*.png come from here).
 */

const chromiumPath = requireTool('chromium', ['/usr/bin/chromium']);
const playwright = await loadPlaywright();
const screenshotDir = process.env['TASKSHARD_SCREENSHOT_DIR'];

let dir: ReturnType<typeof tempDir>;
let browser: Browser | null = null;

beforeEach(() => {
  dir = tempDir('taskshard-browser-');
});
afterEach(async () => {
  await browser?.close();
  browser = null;
  await killAll();
  dir.remove();
});

/** Steps sleep DELAY_<step> seconds; the step named in HOLD waits for the gate file. Log lines: `event phase step peer pid`. */
function writeScript(path: string, log: string, gate: string): void {
  writeFileSync(
    path,
    [
      '#!/bin/sh',
      `log='${log}'`,
      'echo "start $TASKSHARD_PHASE $1 $PEER_NAME $$" >> "$log"',
      'eval "d=\\${DELAY_$1:-0.1}"',
      'sleep "$d"',
      `if [ "$1" = "$HOLD" ]; then while [ ! -e '${gate}' ]; do sleep 0.02; done; fi`,
      'echo "done $TASKSHARD_PHASE $1 $PEER_NAME $$" >> "$log"',
      '',
    ].join('\n'),
  );
}

const steps = ['compile', 'codegen', 'lint', 'unit', 'bundle', 'e2e'];

function writeSchema(path: string): void {
  const needs: Record<string, string[]> = { codegen: ['compile'], bundle: ['codegen'], unit: ['compile'] };
  writeFileSync(path, JSON.stringify({ id: 'webapp', universe: '//...', steps: steps.map((id) => ({ id, target: `//${id}/...`, needs: needs[id] ?? [], estimateSec: 1 })) }, null, 2));
}

async function barKinds(page: Page, step: string): Promise<{ kind: string; peer: string }[]> {
  return page.$$eval(`#gantt g.bar[data-step="${step}"]`, (els) => els.map((e) => ({ kind: e.getAttribute('data-kind') ?? '', peer: e.getAttribute('data-peer') ?? '' })));
}

describe.skipIf(chromiumPath === null || playwright === null)('the dashboard in Chromium', () => {
  it('shows the run from the cohorts list: a lane per peer, each step built by its builder, the outcome, live', { timeout: 90_000 }, async () => {
    const log = dir.file('steps.log');
    const gate = dir.file('gate');
    const script = dir.file('step.sh');
    const schema = dir.file('schema.json');
    writeScript(script, log, gate);
    writeSchema(schema);
    const auth = await startAuthority({ db: dir.file('a.db') });
    const env = { DELAY_compile: '0.6', DELAY_codegen: '0.5', DELAY_lint: '0.3', DELAY_unit: '0.9', DELAY_bundle: '0.4', DELAY_e2e: '0.2', HOLD: 'e2e' };
    // ci-linux-1 has a GPU (issue 19): the Peers page shows its labels. It also runs "in GitLab CI":
    // its job page is linked on the Peers page and its lane.
    const jobUrl = 'https://gitlab.example.com/acme/mono/-/jobs/4242';
    const ciEnv = (name: string) => (name === 'ci-linux-1' ? { ...env, GITLAB_CI: 'true', CI_JOB_URL: jobUrl } : env);
    // They name their group explicitly (--cohort-key): the run page and the list show the key by the refs.
    const cohortKey = 'webapp-nightly-2026-11-29';
    const peerArgs = (i: number): string[] => ['--cohort-key', cohortKey, ...(i === 0 ? ['--label', 'gpu'] : [])];
    const peers: Proc[] = ['ci-linux-1', 'ci-linux-2', 'ci-linux-3'].map((name, i) => startPeer({ name, server: auth.wsUrl, schema, script, env: ciEnv(name), args: peerArgs(i) }));
    const joinedLines = await Promise.all(peers.map((p) => p.line(/joined cohort (\S+) as peer/)));
    const cohortId = joinedLines[0]![1]!;
    expect(new Set(joinedLines.map((m) => m[1])).size).toBe(1);
    // Hold until every other step is done and the held one runs.
    await untilLog(log, 'all but e2e done, e2e running', (lines) => lines.filter((l) => l.event === 'done' && l.phase === 'step').length === steps.length - 1 && lines.some((l) => l.event === 'start' && l.step === 'e2e'));

    browser = await playwright!.chromium.launch({ executablePath: chromiumPath!, args: ['--no-sandbox'] });
    const peersPage = await browser.newPage();
    await peersPage.goto(`${auth.httpUrl}/peers`);
    await peersPage.locator('tr[data-peer="ci-linux-1"] td.labels').waitFor();
    expect(await peersPage.locator('tr[data-peer="ci-linux-1"] td.labels').textContent()).toBe(`arch:${process.arch} ci:gitlab gpu os:${process.platform}`); // ci: from its (GitLab) CI environment
    expect(await peersPage.locator('tr[data-peer="ci-linux-2"] td.labels').textContent()).toBe(`arch:${process.arch} os:${process.platform}`);
    // The Peers page links each connected peer's CI job (ci-linux-1 only: the others run outside CI).
    expect(await peersPage.locator('#peers tr[data-peer="ci-linux-1"] a[data-ci-job]').getAttribute('href')).toBe(jobUrl);
    expect(await peersPage.locator('#peers tr[data-peer="ci-linux-2"] a[data-ci-job]').count()).toBe(0);
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${auth.httpUrl}/`);
    const link = page.locator(`#cohorts a[href="/cohorts/${cohortId}"]`);
    await link.waitFor();
    expect(await page.locator(`tr[data-cohort="${cohortId}"] [data-outcome]`).textContent()).toBe('running');
    expect(await page.locator(`tr[data-cohort="${cohortId}"] [data-cohort-key]`).textContent()).toBe(`key ${cohortKey}`);
    await link.click();
    await page.waitForURL(`${auth.httpUrl}/cohorts/${cohortId}`);
    // Every peer printed this page's URL when it joined.
    for (const p of peers) expect(p.stdout).toContain(`taskshard: cohort page: ${auth.httpUrl}/cohorts/${cohortId}\n`);
    await page.locator('#gantt g.lane').first().waitFor();
    await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));

    // Every peer has a lane; the held step is running; nothing is finished yet.
    const lanes = await page.$$eval('#gantt g.lane', (els) => els.map((e) => e.getAttribute('data-lane')));
    expect(lanes.sort()).toEqual(['ci-linux-1', 'ci-linux-2', 'ci-linux-3']);
    expect(await page.locator('h1 [data-outcome]').textContent()).toBe('running');
    // By the repo and refs: the key the peers named their group with.
    expect(await page.locator('.meta [data-cohort-key]').textContent()).toBe(`cohort key ${cohortKey}`);
    const e2eRunner = readStepLog(log).find((l) => l.event === 'start' && l.step === 'e2e')!.peer;
    expect(await barKinds(page, 'e2e')).toEqual([{ kind: 'running', peer: e2eRunner }]);
    expect(await page.locator('#gantt g.lane[data-lane="ci-linux-1"] a[data-ci-job]').getAttribute('data-ci-job')).toBe(jobUrl);
    expect(await page.locator('#gantt g.lane[data-lane="ci-linux-2"] a[data-ci-job]').count()).toBe(0);

    // Release the held step: the page updates itself (pushed over SSE, no reload).
    writeFileSync(gate, '');
    await page.locator('h1 [data-outcome="succeeded"]').waitFor({ timeout: 20_000 });
    await page.locator('#gantt g.bar[data-kind="built"][data-step="e2e"]').waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await Promise.all(peers.map((p) => p.exit()))).toEqual([0, 0, 0]);

    // Each step's bar is in the lane of the peer that ran it, and the steps table names that builder.
    const builders = new Map(readStepLog(log).filter((l) => l.event === 'done' && l.phase === 'step').map((l) => [l.step, l.peer]));
    expect(builders.size).toBe(steps.length);
    await page.locator('#gantt g.bar[data-kind="universe"]').nth(2).waitFor();
    for (const step of steps) {
      expect((await barKinds(page, step)).filter((b) => b.kind === 'built')).toEqual([{ kind: 'built', peer: builders.get(step) }]);
      expect(await page.locator(`#steps tr[data-step="${step}"] [data-builder]`).getAttribute('data-builder')).toBe(builders.get(step));
    }
    expect(await page.locator('#gantt g.bar[data-kind="universe"]').count()).toBe(3);
    // Every peer reported its universe build: the bars are the real builds, none inferred.
    await page.locator('#gantt g.bar[data-kind="universe"][data-inferred="false"]').nth(2).waitFor();
    expect(await page.locator('#gantt g.bar[data-kind="universe"][data-inferred="true"]').count()).toBe(0);
    const critical = await page.$$eval('#gantt g.bar[data-critical="true"]', (els) => els.map((e) => e.getAttribute('data-step')));
    expect(critical.length).toBeGreaterThan(0);
    expect(errors).toEqual([]);

    if (screenshotDir) {
      await page.screenshot({ path: join(screenshotDir, 'dashboard-cohort-light.png'), fullPage: true });
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.screenshot({ path: join(screenshotDir, 'dashboard-cohort-dark.png'), fullPage: true });
    }

    // Cache evidence a peer reports after its universe build arrives live, without a reload: the run
    // is complete (no more cohort pushes), so only the stream's cache-evidence event can bring it.
    expect(await page.locator('#cache-evidence').count()).toBe(0);
    const posted = await fetch(`${auth.httpUrl}/api/v1/cohorts/${cohortId}/cache-evidence`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ peerId: 'ci-linux-1', evidence: { tool: 'bazel', hits: 41, misses: 2, missedSteps: ['lint'] } }),
    });
    expect(posted.status).toBe(201);
    await page.locator('#cache-evidence tr[data-evidence="ci-linux-1"]').waitFor();
    expect(await page.locator('#cache-evidence tr[data-evidence="ci-linux-1"]').textContent()).toBe('ci-linux-1bazel412lint');
    // Totals read from the tool's summary line name no steps: the page says so instead of "none".
    const fromOutput = await fetch(`${auth.httpUrl}/api/v1/cohorts/${cohortId}/cache-evidence`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ peerId: 'ci-linux-2', evidence: { tool: 'bazel', hits: 30, misses: 0, missedSteps: [], source: 'output' } }),
    });
    expect(fromOutput.status).toBe(201);
    await page.locator('#cache-evidence tr[data-evidence="ci-linux-2"]').waitFor();
    expect(await page.locator('#cache-evidence tr[data-evidence="ci-linux-2"]').textContent()).toBe('ci-linux-2bazel300unknown (summary line only)');

    // Back on the list, the cohort shows its outcome too.
    await page.goto(`${auth.httpUrl}/`);
    await page.locator(`tr[data-cohort="${cohortId}"] [data-outcome="succeeded"]`).waitFor();
    // Filters go to the server: another outcome finds nothing, another spelling of the repo finds the run.
    await page.goto(`${auth.httpUrl}/?outcome=failed`);
    await page.locator('.panel.empty').waitFor();
    await page.goto(`${auth.httpUrl}/?outcome=succeeded&repo=${encodeURIComponent('git@example.com:acme/mono.git')}`);
    await page.locator(`tr[data-cohort="${cohortId}"]`).waitFor();
  });
});
