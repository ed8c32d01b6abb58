import { ClockId, Errno } from "./abi.js";
import { WasiError } from "./errors.js";

type ThreadCpu = () => { user: number; system: number };

const THREAD_CPU: ThreadCpu | undefined = (process as unknown as { threadCpuUsage?: ThreadCpu }).threadCpuUsage?.bind(process);

/** How long a realtime anchor is trusted before the wall clock is read again (NTP may slew it). */
const REANCHOR_NS = 1_000_000_000n;

/**
 * Clocks: realtime (anchored to the wall clock every second, then advanced by the
 * monotonic clock so it has nanosecond resolution), monotonic (hrtime), and
 * CPU time. Node 20 has no per-thread CPU clock, so the thread clock uses
 * process.threadCpuUsage where Node provides it and process CPU time otherwise.
 */
export class Clocks {
  // Taken lazily: most guests never read the realtime clock, and a kernel should cost little to create.
  private wallAnchor = 0n;
  private monoAnchor = -REANCHOR_NS;

  resolution(id: number): bigint {
    switch (id) {
      case ClockId.REALTIME: return 1_000n;
      case ClockId.MONOTONIC: return 1n;
      case ClockId.PROCESS_CPUTIME_ID:
      case ClockId.THREAD_CPUTIME_ID: return 1_000n;
      default: throw new WasiError(Errno.INVAL, `unknown clock ${id}`);
    }
  }

  /** Wall-clock ns with ns resolution: Date.now() anchors it, the monotonic clock interpolates, re-anchored every second. */
  private realtime(): bigint {
    const mono = process.hrtime.bigint();
    if (mono - this.monoAnchor >= REANCHOR_NS) {
      this.wallAnchor = BigInt(Date.now()) * 1_000_000n;
      this.monoAnchor = mono;
    }
    return this.wallAnchor + (mono - this.monoAnchor);
  }

  now(id: number): bigint {
    switch (id) {
      case ClockId.MONOTONIC: return process.hrtime.bigint();
      case ClockId.REALTIME: return this.realtime();
      case ClockId.PROCESS_CPUTIME_ID: return cpuNs(process.cpuUsage());
      case ClockId.THREAD_CPUTIME_ID: return cpuNs(THREAD_CPU ? THREAD_CPU() : process.cpuUsage());
      default: throw new WasiError(Errno.INVAL, `unknown clock ${id}`);
    }
  }
}

function cpuNs(u: { user: number; system: number }): bigint {
  return BigInt(u.user + u.system) * 1_000n;
}
