import { ClockId, Errno } from "./abi.js";
import { WasiError } from "./errors.js";

type ThreadCpu = () => { user: number; system: number };

/**
 * Clocks: realtime (anchored once to the wall clock, then advanced by the
 * monotonic clock so it has nanosecond resolution), monotonic (hrtime), and
 * CPU time. Node 20 has no per-thread CPU clock, so the thread clock uses
 * process.threadCpuUsage where Node provides it and process CPU time otherwise.
 */
export class Clocks {
  private readonly wallAnchor = BigInt(Date.now()) * 1_000_000n;
  private readonly monoAnchor = process.hrtime.bigint();
  private readonly threadCpu: ThreadCpu | undefined = (process as unknown as { threadCpuUsage?: ThreadCpu }).threadCpuUsage?.bind(process);

  resolution(id: number): bigint {
    switch (id) {
      case ClockId.REALTIME: return 1_000n;
      case ClockId.MONOTONIC: return 1n;
      case ClockId.PROCESS_CPUTIME_ID:
      case ClockId.THREAD_CPUTIME_ID: return 1_000n;
      default: throw new WasiError(Errno.INVAL, `unknown clock ${id}`);
    }
  }

  now(id: number): bigint {
    switch (id) {
      case ClockId.MONOTONIC: return process.hrtime.bigint();
      case ClockId.REALTIME: return this.wallAnchor + (process.hrtime.bigint() - this.monoAnchor);
      case ClockId.PROCESS_CPUTIME_ID: return cpuNs(process.cpuUsage());
      case ClockId.THREAD_CPUTIME_ID: return cpuNs(this.threadCpu ? this.threadCpu() : process.cpuUsage());
      default: throw new WasiError(Errno.INVAL, `unknown clock ${id}`);
    }
  }
}

function cpuNs(u: { user: number; system: number }): bigint {
  return BigInt(u.user + u.system) * 1_000n;
}
