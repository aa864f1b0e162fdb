/** A one-line live progress display on stderr (redrawn in place on a terminal, a line every few seconds otherwise). */
export class Progress {
  private readonly t0 = Date.now();
  private lastPrint = 0;
  private readonly tty = Boolean(process.stderr.isTTY);

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly enabled = true,
  ) {}

  update(done: number, fields: Record<string, string | number> = {}): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!this.tty && now - this.lastPrint < 5000 && done < this.total) return;
    this.lastPrint = now;
    const el = (now - this.t0) / 1000;
    const eta = done > 0 ? (el / done) * (this.total - done) : 0;
    const parts = Object.entries(fields).map(([k, v]) => `${k} ${typeof v === "number" ? fmt(v) : v}`);
    const line = `${this.label} ${done}/${this.total} [${clock(el)}<${clock(eta)}] ${parts.join("  ")}`;
    if (this.tty) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(`${line}\n`);
  }

  /** prints a message above the progress line */
  log(msg: string): void {
    if (this.tty && this.enabled) process.stderr.write("\r\x1b[K");
    process.stderr.write(`${msg}\n`);
  }

  done(): void {
    if (this.tty && this.enabled) process.stderr.write("\n");
  }
}

function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

export function clock(s: number): string {
  const m = Math.floor(s / 60);
  const r = Math.floor(s % 60);
  return `${m}:${String(r).padStart(2, "0")}`;
}
