import { errorCodes } from '../shared/error-codes.js';

/** The README's error-code table rows, generated from the registry (a test keeps them equal). */
export function errorCodeTableRows(): string[] {
  return Object.entries(errorCodes).map(
    ([code, info]) => `| \`${code}\` | ${info.retryable ? 'yes' : 'no'} | ${info.closeCode ?? '—'} | ${info.meaning.replace(/\|/g, '\\|')} |`,
  );
}
