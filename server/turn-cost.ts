/**
 * What committing and delivering one input costs the event loop, ms, as recent turns measured it
 * (each turn's commit and delivery time over its inputs). Cautious on purpose, since it bounds the
 * longest block: a turn that cost more per input than the estimate raises it to that at once; one
 * that cost less lowers it by a fifth of the difference. Zero until a turn with inputs is measured.
 */
export class TurnCost {
  private perInput = 0;

  get msPerInput(): number {
    return this.perInput;
  }

  /** One turn committed and delivered `inputs` inputs' work in `ms`. */
  observe(inputs: number, ms: number): void {
    if (inputs <= 0 || !(ms >= 0)) return;
    const sample = ms / inputs;
    this.perInput = sample >= this.perInput ? sample : this.perInput * 0.8 + sample * 0.2;
  }
}
