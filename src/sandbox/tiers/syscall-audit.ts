/**
 * What a sandboxed executor really asks of the host kernel: `strace -f -ttt`
 * output of a sandbox (SandboxLauncherOptions.strace) reduced to system call
 * counts for the node process and its threads only (bubblewrap's own set-up
 * before it executes node is not the executor's), split at a moment (e.g.
 * when the executor reported ready) into start-up and steady state. This is
 * how the allow-list is checked against use (`strace -f -c`, restricted to
 * the executor).
 */
import { readFileSync } from "node:fs";

export interface SyscallUse {
  /** Calls by name before `splitAt` (node's start-up, the worker's boot). */
  startup: Map<string, number>;
  /** Calls by name from `splitAt` on (serving requests). */
  steady: Map<string, number>;
  /** Calls the kernel refused with EPERM or ENOSYS... by name (a sign of a probe, or of a denied call). */
  failed: Map<string, number>;
}

const LINE = /^(\d+)\s+(\d+\.\d+)\s+(?:<\.\.\.\s+(\w+)\s+resumed>|(\w+)\()(.*)$/;

/**
 * Parses one strace log (`strace -f -ttt -o FILE`). `splitAt` is a Unix time
 * in seconds; calls at or after it count as steady state.
 */
export function auditStrace(path: string, splitAt = Infinity): SyscallUse {
  const use: SyscallUse = { startup: new Map(), steady: new Map(), failed: new Map() };
  // Tasks first seen after node's exec are its threads; the ones seen before are bubblewrap's.
  // (clone's return value cannot be used: it is the pid inside the sandbox's PID namespace.)
  const before = new Set<number>();
  const executor = new Set<number>();
  let execed = false;
  const add = (m: Map<string, number>, name: string): void => void m.set(name, (m.get(name) ?? 0) + 1);
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const time = Number(m[2]);
    const resumed = m[3];
    const name = m[4];
    const rest = m[5]!;
    if (name === "execve" && /^"[^"]*\/node"/.test(rest)) {
      execed = true;
      before.delete(pid);
      executor.add(pid);
      continue; // the exec itself is bubblewrap's last act (it is on the allow-list for that)
    }
    if (!execed || before.has(pid)) {
      if (!executor.has(pid)) before.add(pid);
      if (!execed) continue;
    }
    if (before.has(pid)) continue;
    executor.add(pid);
    const call = name ?? resumed!;
    if (resumed) {
      if (/=\s+-1\s+E(PERM|NOSYS|ACCES)\b/.test(rest)) add(use.failed, call);
      continue; // counted when it started
    }
    add(time >= splitAt ? use.steady : use.startup, call);
    if (/=\s+-1\s+E(PERM|NOSYS|ACCES)\b/.test(rest)) add(use.failed, call);
  }
  return use;
}

/** Merges several sandboxes' use (one strace log each). */
export function mergeUse(all: readonly SyscallUse[]): SyscallUse {
  const out: SyscallUse = { startup: new Map(), steady: new Map(), failed: new Map() };
  for (const u of all) {
    for (const k of ["startup", "steady", "failed"] as const) for (const [n, c] of u[k]) out[k].set(n, (out[k].get(n) ?? 0) + c);
  }
  return out;
}
