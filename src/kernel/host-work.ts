/**
 * Host work a guest causes, charged against its fuel as Wasmtime's
 * `hostcall_fuel` charges data a host call copies: fuel otherwise bounds
 * only the guest's own instructions, and one host call can do far more work
 * than one instruction (a path of 80,000 components, 1024 iovecs of 256 MiB).
 *
 * A unit is about one wasm instruction's worth (what instrumentFuel charges
 * per instruction). The kernel calls `HostWork` before the work it measures;
 * the sandbox sets it (KernelOptions.hostWork) to draw from the instance's
 * fuel global when the run is metered, and it throws
 * InstanceLimitError("fuel_exhausted") to end the instance when none is left.
 * Unmetered runs pass nothing and pay nothing.
 */
export type HostWork = (units: number) => void;

export const HOST_FUEL = {
  /** One directory lookup during path resolution: a host syscall (or a map lookup in memory). */
  lookup: 2000,
  /** Any path component consumed ("." and ".." included). */
  step: 20,
  /** Bytes moved by a read or write call per unit (memcpy-speed work). */
  bytesPerUnit: 16,
  /** One poll_oneoff subscription. */
  subscription: 200,
  /** One directory entry listed by fd_readdir. */
  dirEntry: 200,
} as const;

/** Units for moving `bytes` bytes (rounded up, so no non-empty transfer is free). */
export function byteUnits(bytes: number): number {
  return Math.ceil(bytes / HOST_FUEL.bytesPerUnit);
}
