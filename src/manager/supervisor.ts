/**
 * Restart policy for long-running apps (abi "service"): whenever the run
 * ends, start it again after a delay that doubles from `baseMs` to `maxMs`,
 * and falls back to `baseMs` once a run has stayed up for `resetAfterMs`.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ baseMs: 500, maxMs: 30_000, resetAfterMs: 60_000 });

export class Backoff {
  private attempt = 0;

  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {}

  /** Delay before the next start, given how long the last run lasted. */
  next(ranMs: number): number {
    if (ranMs >= this.opts.resetAfterMs) this.attempt = 0;
    const delay = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** this.attempt);
    this.attempt++;
    return delay;
  }

  get restarts(): number {
    return this.attempt;
  }
}

export interface SupervisedRun {
  /** Runs the service once; resolves when it ends, with a line describing how. */
  run(): Promise<string>;
  onRestart(delayMs: number, why: string, restarts: number): void;
}

/** Keeps one service running until stopped. */
export class Supervisor {
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private current: Promise<void> | undefined;

  constructor(private readonly job: SupervisedRun, backoff?: BackoffOptions) {
    this.backoff = new Backoff(backoff);
  }

  start(): void {
    this.loop();
  }

  private loop(): void {
    if (this.stopped) return;
    const started = Date.now();
    this.current = this.job
      .run()
      .catch((err: unknown) => `failed: ${(err as Error).message}`)
      .then((why) => {
        if (this.stopped) return;
        const delay = this.backoff.next(Date.now() - started);
        this.job.onRestart(delay, why, this.backoff.restarts);
        this.timer = setTimeout(() => this.loop(), delay);
        this.timer.unref();
      });
  }

  get restarts(): number {
    return this.backoff.restarts;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
