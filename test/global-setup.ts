import { ensureDistBuilt } from './helpers/dist-build.js';

/** e2e tests run the real built CLI, dashboard and peer bundle: build dist/ unless it is current (test/helpers/dist-build.ts). */
export default function setup(): void {
  ensureDistBuilt();
}
