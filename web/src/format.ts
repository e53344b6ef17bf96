/** Human renderings of durations and times for the dashboard. */

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const neg = ms < 0;
  let rest = Math.abs(ms);
  let out: string;
  if (rest < 1000) out = `${Math.round(rest)} ms`;
  else if (rest < 60_000) out = `${(rest / 1000).toFixed(rest < 10_000 ? 2 : 1)} s`;
  else if (rest < 3_600_000) {
    const m = Math.floor(rest / 60_000);
    rest -= m * 60_000;
    out = `${m} m ${Math.round(rest / 1000)} s`;
  } else {
    const hrs = Math.floor(rest / 3_600_000);
    rest -= hrs * 3_600_000;
    out = `${hrs} h ${Math.round(rest / 60_000)} m`;
  }
  return neg ? `−${out}` : out;
}

export function seconds(sec: number | null | undefined): string {
  return sec === null || sec === undefined ? '—' : duration(sec * 1000);
}

export function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function dateTime(iso: string): string {
  const d = new Date(iso);
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })}`;
}

/** Axis tick spacing: a "nice" step giving about `count` ticks over `spanMs`. */
export function tickStep(spanMs: number, count = 8): number {
  const raw = Math.max(spanMs, 1) / count;
  const steps = [10, 20, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000];
  return steps.find((s) => s >= raw) ?? 3_600_000 * Math.ceil(raw / 3_600_000);
}

/** An axis label for `ms` from the start. */
export function offset(ms: number): string {
  if (ms === 0) return '0';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(2)} s`;
  const m = Math.floor(ms / 60_000);
  const sec = Math.round((ms % 60_000) / 1000);
  return sec === 0 ? `${m} m` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** An http(s) URL (the authority validated it already; a link is drawn only for these). */
export function isWebUrl(value: string): boolean {
  return /^https?:\/\/[^\s]+$/i.test(value);
}
