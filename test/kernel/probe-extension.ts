/**
 * "test:probe": an embedder-defined extension for the mechanism's tests and
 * benchmarks, exported from a module so executors can load it
 * (ExecutorPool's extensionModules). Its guest is test/fixtures/ext/probe.wat.
 */
import { Errno } from "../../src/kernel/abi.js";
import { WasiError } from "../../src/kernel/errors.js";
import { defineExtension } from "../../src/kernel/extensions.js";

/** What the probe's handlers ask of the host. */
export interface ProbeProvider {
  /** Returns the bytes transformed (the tests' providers reverse them). */
  echo(bytes: Uint8Array): Uint8Array;
  /** Throws WasiError(code), or a plain Error (a host fault) when code is 0. */
  fail(code: number): void;
  /** Does nothing: a provider round trip. */
  ping(): void;
}

export const probeExtension = defineExtension<{ notes: number }, ProbeProvider>({
  name: "test:probe",
  summary: "Test extension: echo through the provider, provider failures, no-ops.",
  needsProvider: false,
  state: () => ({ notes: 0 }),
  functions: {
    echo: {
      params: [["buf_ptr", "i32"], ["buf_len", "i32"]],
      result: "errno",
      capability: "test:probe/echo",
      summary: "Replaces the bytes at [ptr, ptr+len) with the provider's answer (same length).",
      handler: (ctx, ptr: number, len: number) => {
        const out = ctx.provider.echo(ctx.memory.bytes(ptr, len).slice());
        if (out.length !== len) throw new WasiError(Errno.INVAL, "the provider changed the length");
        ctx.memory.write(ptr, out);
        return Errno.SUCCESS;
      },
    },
    fail: {
      params: [["code", "i32"]],
      result: "errno",
      summary: "Asks the provider to fail with an errno (0: with a plain Error).",
      handler: (ctx, code: number) => {
        ctx.provider.fail(code);
        return Errno.SUCCESS;
      },
    },
    noop: {
      params: [],
      result: "errno",
      summary: "Returns SUCCESS without leaving the guest's thread.",
      handler: () => Errno.SUCCESS,
    },
    ping: {
      params: [],
      result: "errno",
      summary: "One provider round trip.",
      handler: (ctx) => {
        ctx.provider.ping();
        return Errno.SUCCESS;
      },
    },
    note: {
      params: [["ptr", "i32"], ["len", "i32"]],
      result: "none",
      summary: "Reads [ptr, ptr+len) and counts it; no status, so a bad pointer traps.",
      handler: (ctx, ptr: number, len: number) => {
        ctx.memory.bytes(ptr, len);
        ctx.state.notes++;
      },
    },
  },
});

/** The provider the tests use: echo reverses, fail fails as asked. */
export const reversingProvider: ProbeProvider = {
  echo: (b) => b.slice().reverse(),
  fail: (code) => {
    if (code === 0) throw new Error("the probe provider broke");
    throw new WasiError(code as Errno, `failing with ${Errno[code]} as asked`);
  },
  ping: () => undefined,
};
