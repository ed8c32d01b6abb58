import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

/**
 * A file time to set: exact nanoseconds since the epoch, `null` to leave it
 * as it is, or `"now"` for the host's clock (fstflags ATIM_NOW / MTIM_NOW).
 */
export type TimeSpec = bigint | null | "now";

/** The N-API addon in native/file-times: utimensat(2)/futimens(2) with UTIME_OMIT and UTIME_NOW. */
export interface NativeFileTimes {
  futimens(fd: number, atime: bigint | null | true, mtime: bigint | null | true): void;
  utimensat(path: string, atime: bigint | null | true, mtime: bigint | null | true, nofollow: boolean): void;
}

export interface FileTimesSupport {
  /** The addon, or null when it is not built or cannot load. */
  native: NativeFileTimes | null;
  /** Which way file times are set, and why, for people (docs/kernel.md, "File times"). */
  reason: string;
}

const ADDON = fileURLToPath(new URL("../../../native/file-times/build/Release/file_times.node", import.meta.url));

/** Loaded once per thread: an immutable handle to native code, not instance state. */
let support: FileTimesSupport | undefined;

/**
 * How this process sets file times on host directories. Node's utimes takes
 * seconds as a double and cannot leave one time untouched, so uniwasm ships a
 * tiny addon (built by `npm install` when a C toolchain is there, see
 * scripts/build-native.js). Without it, HostFs falls back to Node's utimes and
 * remembers the exact nanoseconds a guest set (exact inside the instance,
 * microseconds on disk); `reason` says which, and `uniwasm` states it.
 */
export function fileTimesSupport(): FileTimesSupport {
  if (support) return support;
  if (process.env["UNIWASM_NATIVE_FILE_TIMES"] === "0") {
    support = { native: null, reason: "the ns-precise file times addon is disabled (UNIWASM_NATIVE_FILE_TIMES=0): times are stored to the microsecond on disk" };
  } else if (!existsSync(ADDON)) {
    support = { native: null, reason: "the ns-precise file times addon is not built (npm install builds it with a C toolchain; see scripts/build-native.js): times are stored to the microsecond on disk" };
  } else {
    try {
      const native = createRequire(import.meta.url)(ADDON) as NativeFileTimes;
      support = { native, reason: "file times are set to the nanosecond with utimensat/futimens (native/file-times)" };
    } catch (err) {
      support = { native: null, reason: `the ns-precise file times addon did not load (${(err as Error).message.split("\n")[0]}): times are stored to the microsecond on disk` };
    }
  }
  return support;
}

/** A TimeSpec as the addon takes it. */
export function nativeTime(t: TimeSpec): bigint | null | true {
  return t === "now" ? true : t;
}
