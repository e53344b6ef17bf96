import { errorCodeTableRows } from './render-error-table.js';

process.stdout.write(`${errorCodeTableRows().join('\n')}\n`);
