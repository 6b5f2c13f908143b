import { formatTime } from "./format.js";

/** One status line on stderr, rewritten in place; silent unless stderr is a terminal (and not for --json). */
export class Progress {
  private step = 0;
  private readonly start = performance.now();
  constructor(
    private readonly enabled: boolean,
    private total: number,
  ) {}

  static forTerminal(json: boolean, total: number): Progress {
    return new Progress(!json && process.stderr.isTTY === true, total);
  }

  addWork(n: number): void {
    this.total += n;
  }

  private label = "";

  /** Shows `label` as the next step. */
  next(label: string): void {
    this.step++;
    this.label = label;
    this.show(label);
  }

  /** Adds a detail (which run) to the current step without counting a new one. */
  detail(text: string): void {
    this.show(`${this.label} · ${text}`);
  }

  private show(label: string): void {
    if (!this.enabled) return;
    const elapsed = formatTime(performance.now() - this.start);
    const line = `[${this.step}/${this.total}] ${label}  (${elapsed})`;
    const width = (process.stderr.columns ?? 100) - 1;
    process.stderr.write(`\r\x1b[2K${line.length > width ? line.slice(0, width) : line}`);
  }

  done(): void {
    if (this.enabled) process.stderr.write("\r\x1b[2K");
  }
}
