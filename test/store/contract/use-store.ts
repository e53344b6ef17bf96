import { afterEach, beforeEach } from 'vitest';
import type { StoreFactory, StoreUnderTest } from './store-contract.js';

/** Opens a fresh store before each test and cleans it up after; returns a getter for the current one. */
export function useStore(factory: StoreFactory): () => StoreUnderTest {
  let current: StoreUnderTest | null = null;
  beforeEach(async () => {
    current = await factory();
  });
  afterEach(async () => {
    await current?.cleanup();
    current = null;
  });
  return () => {
    if (!current) throw new Error('no store: useStore() hooks did not run');
    return current;
  };
}
