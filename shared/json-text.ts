import { findNodeAtLocation, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';

/**
 * Parsing JSON text for human-edited files: syntax errors come back with
 * line and column, and JSON paths can be mapped back to where they are in the
 * text. Values come from `JSON.parse` (exact JSON semantics); the location tree
 * comes from jsonc-parser in strict mode.
 */

export type JsonPath = readonly (string | number)[];

export interface TextPosition {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column, in UTF-16 code units. */
  readonly column: number;
}

export interface JsonDocument {
  readonly value: unknown;
  /** Where the value at `path` starts in the text, when it exists. */
  locate(path: JsonPath): TextPosition | null;
  /** Keys of the object at `path`, in the order they appear in the text. */
  keysInDocumentOrder(path: JsonPath): string[] | null;
  /** Every key that appears twice in the same object (JSON.parse silently keeps the last). */
  duplicateKeys(): DuplicateKey[];
}

export interface DuplicateKey {
  readonly path: JsonPath;
  readonly key: string;
  /** Where the second occurrence is. */
  readonly position: TextPosition;
}

export type JsonParseResult =
  | { readonly ok: true; readonly doc: JsonDocument }
  | { readonly ok: false; readonly position: TextPosition | null; readonly message: string };

/** Nesting deeper than this is refused before any recursive walk. */
export const maxJsonNesting = 64;

/**
 * Like {@link parseJsonText}, for files people write by hand and other tools
 * accept the same way (tsconfig.json, turbo.json): comments and trailing
 * commas are allowed. Everything else is strict JSON, located the same way.
 */
export function parseJsoncText(rawText: string): JsonParseResult {
  const text = rawText.startsWith('\uFEFF') ? rawText.slice(1) : rawText;
  const depthAt = firstOffsetDeeperThan(text, maxJsonNesting);
  if (depthAt !== null) {
    return { ok: false, position: positionAt(text, depthAt), message: `nesting deeper than ${maxJsonNesting} levels` };
  }
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { disallowComments: false, allowTrailingComma: true, allowEmptyContent: false });
  const first = errors[0];
  if (first || !tree) {
    return { ok: false, position: first ? positionAt(text, first.offset) : null, message: first ? describeParseError(first) : 'JSON syntax error: no value' };
  }
  return { ok: true, doc: documentOf(text, valueOf(tree), tree) };
}

/** The value of a parse tree, with JSON.parse semantics (`__proto__` is an ordinary own key). */
function valueOf(node: Node): unknown {
  switch (node.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const prop of node.children ?? []) {
        const [keyNode, valueNode] = prop.children ?? [];
        if (!keyNode || !valueNode) continue;
        Object.defineProperty(out, String(keyNode.value), { value: valueOf(valueNode), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    case 'array':
      return (node.children ?? []).map(valueOf);
    default:
      return node.value as unknown;
  }
}

export function parseJsonText(rawText: string): JsonParseResult {
  const text = rawText.startsWith('\uFEFF') ? rawText.slice(1) : rawText;
  const depthAt = firstOffsetDeeperThan(text, maxJsonNesting);
  if (depthAt !== null) {
    return { ok: false, position: positionAt(text, depthAt), message: `nesting deeper than ${maxJsonNesting} levels` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const errors: ParseError[] = [];
    parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
    const first = errors[0];
    if (first) {
      const trailingComma = /,\s*$/.test(text.slice(0, first.offset)) && /^[}\]]/.test(text.slice(first.offset));
      const message = trailingComma ? 'JSON syntax error: trailing comma before a closing bracket' : describeParseError(first);
      return { ok: false, position: positionAt(text, first.offset), message };
    }
    return { ok: false, position: null, message: (err as Error).message };
  }
  const tree = parseTree(text, [], { disallowComments: true, allowTrailingComma: false });
  return { ok: true, doc: documentOf(text, value, tree) };
}

function documentOf(text: string, value: unknown, tree: Node | undefined): JsonDocument {
  return {
    value,
    locate(path) {
      if (!tree) return null;
      const node = findNodeAtLocation(tree, [...path]);
      if (!node) return null;
      // For object members, point at the key rather than the value.
      const at = node.parent?.type === 'property' ? node.parent.offset : node.offset;
      return positionAt(text, at);
    },
    keysInDocumentOrder(path) {
      const node = tree ? (path.length === 0 ? tree : findNodeAtLocation(tree, [...path])) : undefined;
      if (!node || node.type !== 'object') return null;
      return (node.children ?? []).map((prop: Node) => String(prop.children?.[0]?.value));
    },
    duplicateKeys() {
      const found: { path: JsonPath; key: string; offset: number }[] = [];
      if (tree) collectDuplicateKeys(tree, [], found);
      return found.map((d) => ({ path: d.path, key: d.key, position: positionAt(text, d.offset) }));
    },
  };
}

function collectDuplicateKeys(node: Node, path: (string | number)[], found: { path: JsonPath; key: string; offset: number }[]): void {
  if (node.type === 'object') {
    const seen = new Set<string>();
    for (const prop of node.children ?? []) {
      const key = String(prop.children?.[0]?.value);
      if (seen.has(key)) found.push({ path: [...path, key], key, offset: prop.offset });
      seen.add(key);
      const value = prop.children?.[1];
      if (value) collectDuplicateKeys(value, [...path, key], found);
    }
  } else if (node.type === 'array') {
    (node.children ?? []).forEach((child, i) => collectDuplicateKeys(child, [...path, i], found));
  }
}

function describeParseError(error: ParseError): string {
  const names: Record<string, string> = {
    InvalidSymbol: 'unexpected character',
    InvalidNumberFormat: 'invalid number',
    PropertyNameExpected: 'property name expected (a double-quoted string)',
    ValueExpected: 'value expected',
    ColonExpected: 'colon expected',
    CommaExpected: 'comma expected',
    CloseBraceExpected: 'closing } expected',
    CloseBracketExpected: 'closing ] expected',
    EndOfFileExpected: 'end of file expected (extra text after the value)',
    InvalidCommentToken: 'comments are not allowed in JSON',
    UnexpectedEndOfComment: 'unexpected end of comment',
    UnexpectedEndOfString: 'unterminated string',
    UnexpectedEndOfNumber: 'unexpected end of number',
    InvalidUnicode: 'invalid unicode escape',
    InvalidEscapeCharacter: 'invalid escape character',
    InvalidCharacter: 'invalid character in string',
  };
  const name = printParseErrorCode(error.error);
  return `JSON syntax error: ${names[name] ?? name}`;
}

/** 1-based line and column of a UTF-16 offset. */
export function positionAt(text: string, offset: number): TextPosition {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

/** Offset of the first `[` or `{` that opens level `maxDepth + 1`, or null. Strings are skipped. */
function firstOffsetDeeperThan(text: string, maxDepth: number): number | null {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) {
      inString = true;
    } else if (c === 47 && text.charCodeAt(i + 1) === 47) {
      const eol = text.indexOf('\n', i);
      i = eol === -1 ? text.length : eol; // a // comment
    } else if (c === 47 && text.charCodeAt(i + 1) === 42) {
      const close = text.indexOf('*/', i + 2);
      i = close === -1 ? text.length : close + 1; // a /* comment */
    } else if (c === 91 || c === 123) {
      if (++depth > maxDepth) return i;
    } else if (c === 93 || c === 125) {
      depth--;
    }
  }
  return null;
}

/** `steps[1].needs[0]`, `steps["1"]`; `(root)` for the empty path. */
export function formatJsonPath(path: JsonPath): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}
