// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Modules the pure scheduler core must never import (STYLE.md: imports point inward). */
const ioModules = [
  { group: ['node:*'], message: 'server/core is pure: no Node built-ins. Take what you need as an input.' },
  { group: ['fs', 'net', 'http', 'https', 'os', 'path', 'crypto', 'child_process', 'timers', 'timers/*', 'worker_threads'], message: 'server/core is pure: no Node built-ins.' },
  { group: ['ws', 'fastify', '@fastify/*', 'better-sqlite3', 'prom-client', 'pino'], message: 'server/core is pure: no transport, storage or metrics imports.' },
  { group: ['**/store/*', '**/http/*', '../store/*', '../http/*'], message: 'server/core must not import outer layers.' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '**/*.db*'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: 'TSEnumDeclaration', message: 'Use a const object and a derived union type.' },
        {
          // Node 20 (V8 11.3) moves a frozen spread clone to the old generation: only a major GC frees it (docs/performance.md, "A day in service").
          selector: "CallExpression[callee.object.name='Object'][callee.property.name='freeze'] > ObjectExpression > SpreadElement:first-child",
          message: 'Object.freeze({ ...x }) lands in the old generation on Node 20; copy with Object.freeze(Object.assign({}, x)).',
        },
      ],
    },
  },
  {
    // Tests read JSON bodies of our own API; typing every nested field adds nothing there.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['server/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ioModules }],
      'no-restricted-globals': [
        'error',
        { name: 'Date', message: 'Time comes from the injected clock (the `now` argument).' },
        { name: 'setTimeout', message: 'The core returns deadlines; the transport owns timers.' },
        { name: 'setInterval', message: 'The core returns deadlines; the transport owns timers.' },
        { name: 'setImmediate', message: 'The core returns deadlines; the transport owns timers.' },
        { name: 'process', message: 'The core takes its configuration as an argument.' },
        { name: 'performance', message: 'Time comes from the injected clock.' },
      ],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'No randomness in the core: ids come from the injected id source.' }],
    },
  },
  {
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:fs', 'node:fs/*', 'node:net', 'node:http', 'node:child_process', 'fs', 'net', 'http', 'child_process'], message: 'shared/ does no I/O.' },
            { group: ['ws', 'fastify', '@fastify/*', 'better-sqlite3', '**/server/**', '**/peer/**'], message: 'shared/ depends on nothing outside it.' },
          ],
        },
      ],
    },
  },
);
