/** A one-line progress bar redrawn in place on a terminal stream; silent elsewhere. */
export class ProgressBar {
  private lastDraw = 0;
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly width = 24) {}

  get enabled(): boolean {
    return Boolean(this.stream.isTTY);
  }

  update(current: number, total: number, label: string, suffix = ''): void {
    this.draw(total > 0 ? current / total : 0, `${label} ${current}/${total} ${suffix}`, current >= total);
  }

  /** Draws `text` after a bar filled to `fraction`; `force` draws even within the frame limit. */
  draw(fraction: number, text: string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    // Redrawing on every step would cost more than the step on fast runs: at most ~20 frames/s.
    if (!force && now - this.lastDraw < 50) return;
    this.lastDraw = now;
    const full = Math.round(Math.max(0, Math.min(1, fraction)) * this.width);
    const bar = '█'.repeat(full) + '░'.repeat(this.width - full);
    const cols = this.stream.columns ?? 100;
    this.stream.write(`\r\x1b[2K${`${bar} ${text}`.slice(0, cols - 1)}`);
    this.drawn = true;
  }

  /** Clears the bar so that ordinary output can be written on a clean line. */
  clear(): void {
    if (this.drawn && this.enabled) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}
