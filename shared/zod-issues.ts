import type { z } from 'zod';
import { formatJsonPath, type JsonPath } from './json-text.js';

/** A validation problem at one place: the JSON path, a stable rule name, and a message. */
export interface LocatedProblem {
  readonly path: JsonPath;
  readonly rule: string;
  readonly message: string;
}

/**
 * Turns zod issues into located problems with short, stable rule names
 * (`type`, `required`, `unknown-field`, `max`, `min`, `pattern`, `value`, ...)
 * and messages that read well after a path: `steps[1].target: must not be empty`.
 */
export function problemsFromZod(error: z.ZodError, prefix: JsonPath = []): LocatedProblem[] {
  const out: LocatedProblem[] = [];
  for (const issue of error.issues) collect(issue, prefix, out);
  return out;
}

function collect(issue: z.core.$ZodIssue, prefix: JsonPath, out: LocatedProblem[]): void {
  const path: JsonPath = [...prefix, ...issue.path.map((p) => (typeof p === 'number' ? p : String(p)))];
  switch (issue.code) {
    case 'invalid_type': {
      // Parse with `{ reportInput: true }` for the received value; fall back to zod's message.
      const missing = 'input' in issue ? issue.input === undefined : /received undefined$/.test(issue.message);
      const received = 'input' in issue ? describeValue(issue.input) : issue.message.replace(/^.*received /, '');
      if (missing) out.push({ path, rule: 'required', message: 'is required' });
      else out.push({ path, rule: 'type', message: `expected ${issue.expected}, got ${received}` });
      return;
    }
    case 'unrecognized_keys':
      for (const key of issue.keys) out.push({ path: [...path, key], rule: 'unknown-field', message: `unknown field "${key}"` });
      return;
    case 'too_big':
      out.push({ path, rule: 'max', message: issue.message.startsWith('Too big') ? boundMessage('at most', issue.origin, Number(issue.maximum), issue.inclusive) : issue.message });
      return;
    case 'too_small':
      out.push({ path, rule: 'min', message: issue.message.startsWith('Too small') ? boundMessage('at least', issue.origin, Number(issue.minimum), issue.inclusive) : issue.message });
      return;
    case 'invalid_format':
      out.push({ path, rule: 'pattern', message: cleanMessage(issue.message) });
      return;
    case 'invalid_value':
      out.push({
        path,
        rule: 'value',
        message: `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(issue.input)}`,
      });
      return;
    case 'invalid_key':
      for (const inner of issue.issues) {
        out.push({ path, rule: 'key', message: `key ${cleanMessage(inner.message)}` });
      }
      return;
    case 'invalid_union':
      if (issue.discriminator !== undefined) {
        // zod already points the path at the discriminator field.
        const at = path[path.length - 1] === issue.discriminator ? path : [...path, issue.discriminator];
        const options = 'options' in issue ? (issue.options ?? []) : [];
        const allowed = options.length > 0 ? ` (one of ${options.map((o) => JSON.stringify(o)).join(', ')})` : '';
        out.push({
          path: at,
          rule: 'value',
          message: `unknown ${issue.discriminator} ${describeValue((issue.input as Record<string, unknown> | undefined)?.[issue.discriminator])}${allowed}`,
        });
      } else {
        out.push({ path, rule: 'type', message: `does not match any allowed form, got ${describeValue(issue.input)}` });
      }
      return;
    default:
      out.push({ path, rule: issue.code === 'custom' ? 'value' : issue.code, message: cleanMessage(issue.message) });
  }
}

function boundMessage(side: 'at most' | 'at least', origin: string, bound: number, inclusive: boolean | undefined): string {
  if (origin === 'string') return `must be ${side} ${bound} characters`;
  if (origin === 'array' || origin === 'set') return `must have ${side} ${bound} items`;
  if (inclusive === false) return `must be ${side === 'at most' ? 'less' : 'greater'} than ${bound}`;
  return `must be ${side} ${bound}`;
}

function cleanMessage(message: string): string {
  return message.replace(/^Invalid input: /, '').replace(/^Too (big|small): /, '');
}

/** A short description of a received value for messages: `number 3`, `an array`, `null`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    return `string ${JSON.stringify(shown)}`;
  }
  return `${typeof value} ${String(value)}`;
}

/** `path: message` for one problem. */
export function formatProblem(problem: LocatedProblem): string {
  return `${formatJsonPath(problem.path)}: ${problem.message}`;
}
