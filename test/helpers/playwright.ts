import { toolsRequired } from './tools.js';

/**
 * playwright-core, loaded like an external tool: a checkout whose node_modules
 * predates the dev dependency (run `npm install`) skips the browser test with
 * a reason instead of failing to compile or import; CI
 * (`TASKSHARD_REQUIRE_TOOLS=1`, after `npm ci`) fails instead of skipping.
 * The few types the tests use are declared here so `npm run check` does not
 * need the package either.
 */

export interface Locator {
  waitFor(options?: { timeout?: number }): Promise<void>;
  click(): Promise<void>;
  textContent(): Promise<string | null>;
  getAttribute(name: string): Promise<string | null>;
  count(): Promise<number>;
  first(): Locator;
  nth(index: number): Locator;
}

export interface Page {
  goto(url: string): Promise<unknown>;
  reload(): Promise<unknown>;
  waitForURL(url: string): Promise<void>;
  locator(selector: string): Locator;
  /** `fn` runs in the page; its elements are DOM elements (typed loosely: the tests compile without the DOM lib). */
  $$eval<R>(selector: string, fn: (elements: { getAttribute(name: string): string | null }[]) => R): Promise<R>;
  evaluate<R>(fn: () => R): Promise<R>;
  on(event: 'pageerror', listener: (err: Error) => void): void;
  screenshot(options: { path: string; fullPage?: boolean }): Promise<unknown>;
  emulateMedia(options: { colorScheme: 'light' | 'dark' }): Promise<void>;
  close(): Promise<void>;
}

export interface Browser {
  newPage(options?: { viewport?: { width: number; height: number }; colorScheme?: 'light' | 'dark' }): Promise<Page>;
  close(): Promise<void>;
}

export interface Playwright {
  chromium: { launch(options: { executablePath: string; args?: string[] }): Promise<Browser> };
}

/** The playwright-core module, or null (with a warning) when it is not installed and skipping is allowed. */
export async function loadPlaywright(): Promise<Playwright | null> {
  const name = 'playwright-core';
  try {
    return (await import(name)) as Playwright;
  } catch (err) {
    const why = `playwright-core is not installed (${(err as Error).message.split('\n')[0]}); run npm install`;
    if (toolsRequired) throw new Error(`${why}; TASKSHARD_REQUIRE_TOOLS=1 forbids skipping`);
    console.warn(`skipping: ${why}`);
    return null;
  }
}
