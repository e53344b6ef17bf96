import { Writable } from 'node:stream';

/**
 * `--log-format pretty`: pino's JSON lines rendered for people at a terminal,
 * one line each: `HH:MM:SS.mmm LEVEL message key=value ...` (UTC), an error's
 * stack on the lines after. `--log-format json` (the default) leaves pino's
 * output alone, for log shippers.
 */

export const logFormats = ['json', 'pretty'] as const;
export type LogFormat = (typeof logFormats)[number];

const levelNames: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const skipped = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'err']);

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? 'undefined';
}

/** One pino JSON line as a human line; a line that is not a JSON object is passed through unchanged. */
export function prettyLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(json);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return json;
    entry = parsed as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '--:--:--.---';
  const level = (levelNames[Number(entry.level)] ?? String(entry.level)).padEnd(5);
  const fields = Object.entries(entry)
    .filter(([k, v]) => !skipped.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`);
  let line = `${time} ${level} ${String(entry.msg ?? '')}${fields.length ? `  ${fields.join(' ')}` : ''}`;
  const err = entry.err as { type?: string; message?: string; stack?: string } | undefined;
  if (err && typeof err === 'object') line += `\n${err.stack ?? `${err.type ?? 'Error'}: ${err.message ?? ''}`}`;
  return line;
}

/** A stream for pino that writes each JSON line it gets to `out` as a pretty line. */
export function prettyStream(out: NodeJS.WritableStream): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      pending += chunk.toString();
      let end: number;
      let text = '';
      while ((end = pending.indexOf('\n')) !== -1) {
        text += `${prettyLine(pending.slice(0, end))}\n`;
        pending = pending.slice(end + 1);
      }
      if (text) out.write(text);
      done();
    },
  });
}
