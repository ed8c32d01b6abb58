/**
 * One engine, two placements: the same guest with the same limits ends the
 * same way inline on this thread and in an executor — same reason, exit
 * code, output, fuel — and reactors answer through the same ABI.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { InlineEngine } from "../../src/sandbox/inline.js";
import type { Engine } from "../../src/sandbox/engine.js";
import { ReactorStartError } from "../../src/sandbox/engine.js";
import type { Limits } from "../../src/limits.js";
import { EXIT_CODES } from "../../src/sandbox/limits.js";
import { fixture, text } from "./helpers.js";

const pool = new ExecutorPool({ size: 2 });
const inline = new InlineEngine();
after(() => Promise.all([pool.close(), inline.close()]));
const placements: [string, Engine][] = [
  ["inline", inline],
  ["executor", pool],
];

const cases: { name: string; file: string; args?: string[]; limits?: Limits; reason: string; exitCode?: number }[] = [
  { name: "a normal exit", file: "hello.wasm", reason: "exit", exitCode: 0 },
  { name: "the memory limit", file: "memhog.wasm", args: ["memhog", "32"], limits: { maxMemoryBytes: 8 << 20 }, reason: "memory_limit" },
  { name: "fuel", file: "sha256.wasm", limits: { fuel: 10_000 }, reason: "fuel_exhausted" },
  { name: "a trap", file: "memhog.wasm", args: ["memhog", "1", "trap"], reason: "trap" },
  { name: "the output limit", file: "output.wasm", args: ["output", "100000"], limits: { stdoutBytes: 1000 }, reason: "output_limit" },
  { name: "a link error", file: "primes-reactor.wasm", reason: "link_error" },
];

describe("one engine, two placements", () => {
  for (const c of cases) {
    test(`${c.name} ends the same way inline and in an executor`, async () => {
      const results = [];
      for (const [, engine] of placements) {
        results.push(await engine.run(fixture(c.file), { args: c.args ?? [c.file], ...(c.limits ? { limits: c.limits } : {}) }));
      }
      const [a, b] = results as [Awaited<ReturnType<Engine["run"]>>, Awaited<ReturnType<Engine["run"]>>];
      assert.equal(a.reason, c.reason, a.message);
      assert.equal(b.reason, a.reason);
      assert.equal(b.exitCode, a.exitCode);
      if (c.exitCode !== undefined) assert.equal(a.exitCode, c.exitCode);
      assert.equal(text(b.stdout), text(a.stdout));
      assert.equal(b.fuelConsumed, a.fuelConsumed);
      assert.equal(b.message, a.message);
      assert.equal(b.trap?.reason, a.trap?.reason);
    });
  }

  for (const [where, engine] of placements) {
    test(`a spinning guest is stopped at its deadline (${where})`, async () => {
      const t0 = performance.now();
      const r = await engine.run(fixture("spin.wasm"), { limits: { timeoutMs: 200 } });
      assert.equal(r.reason, "deadline_exceeded");
      assert.equal(r.exitCode, EXIT_CODES.deadline_exceeded);
      assert.ok(performance.now() - t0 >= 190);
    });

    test(`a guest that breaks the call ABI ends with a trap, not a host fault (${where})`, async () => {
      const reactor = await engine.reactor(fixture("bad-alloc-reactor.wasm"));
      const zero = await reactor.call("len", [new Uint8Array(100)]);
      assert.equal(zero.outcome.reason, "trap");
      assert.equal(zero.outcome.trap?.reason, "abi_violation");
      assert.match(zero.outcome.message, /uniwasm_alloc\(100\) returned 0/);
      const outside = await reactor.call("len", [new Uint8Array(8)]);
      assert.equal(outside.outcome.reason, "trap");
      assert.match(outside.outcome.message, /returned 70000, outside its memory/);
      const fine = await reactor.call("len", [new Uint8Array(4)]);
      assert.equal(fine.value, 4);
      assert.equal(reactor.restarts, 2, "each broken call ended its instance");
      await reactor.close();
    });

    test(`reactor calls keep state and take per-call fuel (${where})`, async () => {
      const reactor = await engine.reactor(fixture("values-reactor.wasm"), { limits: { fuel: 1_000_000 } });
      const r = await reactor.call("add_i32", [2, 3]);
      assert.equal(r.value, 5);
      assert.ok(r.outcome.fuelConsumed! > 0n);
      await reactor.close();
    });

    test(`a reactor whose module cannot start reports why (${where})`, async () => {
      await assert.rejects(engine.reactor(fixture("hello.wasm").slice(0, 50)), (err: unknown) => err instanceof ReactorStartError && err.outcome.reason === "invalid_module");
    });
  }
});
