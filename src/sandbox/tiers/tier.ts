/**
 * Tiers: where an executor lives, from the weakest wall to the strongest.
 *
 * | tier      | an executor is                                  | a V8 or kernel-layer bug reaches      |
 * | --------- | ----------------------------------------------- | ------------------------------------- |
 * | isolate   | a worker thread of the node (the default)       | the node and every tenant in it       |
 * | process   | a child process under bubblewrap: new user,     | its own sandbox: node + dist read-only,|
 * |           | PID, IPC, UTS, network and mount namespaces,    | the dirs granted to it; the host      |
 * |           | rlimits, a seccomp allow-list                   | kernel through the allow-list only     |
 * | gvisor    | a child process in a gVisor sandbox (runsc)     | gVisor's user-space kernel first      |
 *
 * The same image runs unchanged on each: the kernel (WASI) runs next to the
 * guest inside the wall, and the node speaks the same executor protocol to
 * every tier (protocol.ts).
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

// The tier names are a limit's values (`tier` in the one limits vocabulary), so they live with it.
import { isTier, TIERS, type Tier } from "../../limits.js";
export { isTier, TIERS, type Tier };

/** Parses a tier name; throws naming the choices. */
export function parseTier(s: string): Tier {
  if (!isTier(s)) throw new RangeError(`unknown tier "${s}" (choose one of: ${TIERS.join(", ")})`);
  return s;
}

/** -1, 0 or 1 as `a` is a weaker, the same or a stronger wall than `b`. */
export function compareTiers(a: Tier, b: Tier): number {
  return Math.sign(TIERS.indexOf(a) - TIERS.indexOf(b));
}

/** The stronger of two tiers (a tenant's minimum raises what an app asks for, never lowers it). */
export function strongerTier(a: Tier, b: Tier): Tier {
  return compareTiers(a, b) >= 0 ? a : b;
}

/** The path of an executable on PATH (or the given absolute path), or undefined. */
export function findExecutable(name: string, path = process.env.PATH ?? "/usr/bin:/bin"): string | undefined {
  const candidates = name.includes("/") ? [name] : path.split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why a tier cannot run on this machine, or undefined when it can. */
export function tierUnavailable(tier: Tier): string | undefined {
  switch (tier) {
    case "isolate":
      return undefined;
    case "process":
      if (process.platform !== "linux") return `the process tier needs Linux namespaces and seccomp (this is ${process.platform})`;
      if (process.arch !== "x64") return `the process tier's seccomp allow-list is compiled for x86_64 only (this is ${process.arch})`;
      if (!findExecutable("bwrap")) return "bubblewrap (bwrap) is not installed (Debian: apt-get install bubblewrap)";
      if (!findExecutable("prlimit")) return "prlimit (util-linux) is not installed";
      return undefined;
    case "gvisor":
      if (process.platform !== "linux") return `gVisor runs on Linux only (this is ${process.platform})`;
      if (!findExecutable("runsc")) return "gVisor (runsc) is not installed (Debian: apt-get install runsc)";
      return undefined;
  }
}
