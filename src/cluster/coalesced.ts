/**
 * One pass at a time, and one more if asked meanwhile: the shape of the cluster's reconcile loops
 * (the replica agent, the scheduler), which are poked by every watch event but must never run two
 * passes at once nor lose the last poke.
 */
export class CoalescedPass {
  private running = false;
  private again = false;

  constructor(
    private readonly pass: () => Promise<void>,
    /** Checked on every poke, the deferred one included (a stopped agent, a node no longer leader). */
    private readonly enabled: () => boolean,
    private readonly onError?: (err: Error) => void,
  ) {}

  /** Starts a pass now, or once the running one ends (pokes meanwhile collapse into that one). */
  poke(): void {
    if (!this.enabled()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.pass()
      .catch((err: unknown) => this.onError?.(err as Error))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.poke();
        }
      });
  }
}
