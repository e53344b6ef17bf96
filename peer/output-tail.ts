/**
 * The last `maxChars` characters of a stream of output chunks, kept in bounded
 * memory however much a build prints. Used for the log tail a failing step
 * sends to the authority (protocol cap: 4096 characters).
 */
export class OutputTail {
  private chunks: string[] = [];
  private length = 0;

  constructor(private readonly maxChars: number) {}

  push(chunk: string): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk.length > this.maxChars ? chunk.slice(-this.maxChars) : chunk);
    this.length += Math.min(chunk.length, this.maxChars);
    while (this.chunks.length > 1 && this.length - this.chunks[0]!.length >= this.maxChars) {
      this.length -= this.chunks.shift()!.length;
    }
  }

  /** The tail, at most `maxChars` characters. */
  text(): string {
    const all = this.chunks.join('');
    return all.length > this.maxChars ? all.slice(-this.maxChars) : all;
  }
}
