/**
 * Counts open WebSocket connections in all and per remote address, so one
 * client (or a crowd of idle ones) cannot take every file descriptor.
 * `tryAdmit` either counts the connection or says which cap it hit; every
 * admitted connection is released exactly once.
 */
export type LimitHit = 'connections' | 'address-connections';

export class ConnectionLimits {
  private total = 0;
  private readonly perAddress = new Map<string, number>();

  constructor(
    private readonly maxConnections: number,
    private readonly maxPerAddress: number,
  ) {}

  /** Counts a new connection from `address`, or returns the cap it would pass. */
  tryAdmit(address: string): LimitHit | null {
    if (this.total >= this.maxConnections) return 'connections';
    const fromAddress = this.perAddress.get(address) ?? 0;
    if (fromAddress >= this.maxPerAddress) return 'address-connections';
    this.total++;
    this.perAddress.set(address, fromAddress + 1);
    return null;
  }

  release(address: string): void {
    const fromAddress = this.perAddress.get(address);
    if (fromAddress === undefined || this.total === 0) throw new Error(`released a connection from ${address} that was never admitted`);
    this.total--;
    if (fromAddress === 1) this.perAddress.delete(address);
    else this.perAddress.set(address, fromAddress - 1);
  }

  get open(): number {
    return this.total;
  }

  openFrom(address: string): number {
    return this.perAddress.get(address) ?? 0;
  }
}
