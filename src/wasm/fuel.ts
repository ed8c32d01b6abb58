/**
 * Host side of fuel metering: reading and setting the fuel global that
 * instrumentFuel adds, and telling a fuel trap from any other trap.
 */
import { FUEL_EXPORT } from "./rewrite.js";

type ExportsLike = WebAssembly.Exports | WebAssembly.Instance;

function exportsOf(target: ExportsLike): WebAssembly.Exports {
  return target instanceof WebAssembly.Instance ? target.exports : target;
}

/** The fuel global of an instrumented instance, or undefined if it has none. */
export function fuelGlobal(target: ExportsLike, exportName = FUEL_EXPORT): WebAssembly.Global | undefined {
  const g = exportsOf(target)[exportName];
  return g instanceof WebAssembly.Global ? g : undefined;
}

function requireFuelGlobal(target: ExportsLike, exportName: string): WebAssembly.Global {
  const g = fuelGlobal(target, exportName);
  if (g === undefined) throw new TypeError(`instance has no "${exportName}" global: instrument the module with instrumentFuel first`);
  return g;
}

/** Sets the fuel available to the next calls into the instance. */
export function setFuel(target: ExportsLike, fuel: bigint | number, exportName = FUEL_EXPORT): void {
  const value = BigInt(fuel);
  if (value < 0n || value >= 1n << 63n) throw new RangeError(`fuel must be in [0, 2^63), got ${value}`);
  requireFuelGlobal(target, exportName).value = value;
}

/**
 * Takes `units` of fuel for work the host did for the guest (the kernel's
 * KernelOptions.hostWork). When less is left, the global is left exhausted
 * (negative, as a failed charge by the guest leaves it) and this returns false.
 */
export function consumeFuel(target: ExportsLike, units: number, exportName = FUEL_EXPORT): boolean {
  const g = requireFuelGlobal(target, exportName);
  const left = (g.value as bigint) - BigInt(units);
  g.value = left < 0n ? -1n : left;
  return left >= 0n;
}

/** Fuel left (never negative: an exhausted instance has 0 left). */
export function remainingFuel(target: ExportsLike, exportName = FUEL_EXPORT): bigint {
  const v = requireFuelGlobal(target, exportName).value as bigint;
  return v < 0n ? 0n : v;
}

/** Fuel spent since the global held `initial`. */
export function fuelConsumed(target: ExportsLike, initial: bigint, exportName = FUEL_EXPORT): bigint {
  return initial - remainingFuel(target, exportName);
}

/**
 * True when the instance ran out of fuel. Only a failed charge leaves the
 * global negative, and it traps at once, so after a trap this tells a fuel
 * trap from every other `unreachable`.
 */
export function isFuelExhausted(target: ExportsLike, exportName = FUEL_EXPORT): boolean {
  const g = fuelGlobal(target, exportName);
  return g !== undefined && (g.value as bigint) < 0n;
}
