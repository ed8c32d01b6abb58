/**
 * The deadline of the request an executor is running, wherever the executor
 * lives (a worker thread: executor.ts; a sandboxed process:
 * tiers/process-executor.ts). A guest spinning in a loop can only be stopped
 * from outside, by ending its executor: this says when.
 *
 * One timer per executor, left armed between jobs and re-armed only when a
 * deadline comes sooner than it fires (a setTimeout and clearTimeout per job
 * cost ~0.5 µs of a ~40 µs run). It never keeps the process alive.
 */

/** setTimeout takes at most 2^31-1 ms (a longer delay would fire at once); a longer deadline re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class DeadlineTimer {
  /** When the running job's deadline falls (performance.now() ms); Infinity when it has none. */
  private deadlineAt = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  /** `onDeadline` runs once per start() whose deadline is reached before clear(). */
  constructor(private readonly onDeadline: () => void) {}

  /** A job starts with `timeoutMs` to run (Infinity: none). */
  start(timeoutMs: number, now = performance.now()): void {
    this.deadlineAt = Number.isFinite(timeoutMs) ? now + timeoutMs : Infinity;
    if (this.deadlineAt < this.timerAt) this.arm(this.deadlineAt);
  }

  /** The job ended in time. The timer stays armed: when it fires with no deadline, it disarms. */
  clear(): void {
    this.deadlineAt = Infinity;
  }

  /** The executor is gone: nothing fires any more. */
  stop(): void {
    this.deadlineAt = Infinity;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.onTimer(), Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(at - performance.now()))));
    // An executor (thread or child) keeps the process alive; a timer left armed between jobs must not add to that.
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (!Number.isFinite(this.deadlineAt)) return;
    // Timers run on the loop's cached clock and may fire up to a tick early: within 1 ms counts as reached.
    if (this.deadlineAt - performance.now() > 1) return this.arm(this.deadlineAt);
    this.deadlineAt = Infinity;
    this.onDeadline();
  }
}
