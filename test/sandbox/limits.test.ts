import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ExecutorPool, ReactorStartError } from "../../src/sandbox/executor-pool.js";
import { DEFAULT_LIMITS, EXIT_CODES, LimitOptionError, memoryPages, resolveLimits } from "../../src/sandbox/limits.js";
import { parseSize, parseDuration } from "../../src/units.js";
import { fixture, REPO, text } from "./helpers.js";

const pool = new ExecutorPool({ size: 2 });
after(() => pool.close());

describe("limit options", () => {
  test("every limit has a default", () => {
    const r = resolveLimits();
    assert.deepEqual(r, { ...DEFAULT_LIMITS });
    assert.equal(memoryPages(r) * 65536, r.maxMemoryBytes);
  });
  test("a bad limit is refused naming the option", () => {
    assert.throws(() => resolveLimits({ timeoutMs: -1 }), (e: unknown) => e instanceof LimitOptionError && e.option === "timeoutMs");
    assert.throws(() => resolveLimits({ fuel: -5 }), (e: unknown) => e instanceof LimitOptionError && e.option === "fuel");
    assert.throws(() => resolveLimits({ stackSizeMb: Infinity }), (e: unknown) => e instanceof LimitOptionError && e.option === "stackSizeMb");
  });
  test("memory limits round down to whole pages and cap at 4 GiB", () => {
    assert.equal(memoryPages(resolveLimits({ maxMemoryBytes: 65536 * 3 + 100 })), 3);
    assert.equal(memoryPages(resolveLimits({ maxMemoryBytes: Infinity })), 65536);
  });
  test("sizes and durations parse as people write them", () => {
    assert.equal(parseSize("16M"), 16 << 20);
    assert.equal(parseSize("64KiB"), 64 << 10);
    assert.equal(parseSize("1G"), 1 << 30);
    assert.equal(parseDuration("2s"), 2000);
    assert.equal(parseDuration("250"), 250);
    assert.throws(() => parseSize("lots"), /not a size/);
  });
  test("each limit reason has its own exit code", () => {
    const codes = ["memory_limit", "fuel_exhausted", "deadline_exceeded", "stack_exhausted", "output_limit", "fd_limit"].map((r) => EXIT_CODES[r as keyof typeof EXIT_CODES]);
    assert.equal(new Set(codes).size, codes.length);
  });
});

describe("memory limit", () => {
  test("growth past the memory limit fails and ends the run with memory_limit", async () => {
    const r = await pool.run(fixture("memhog.wasm"), { args: ["memhog", "32"], limits: { maxMemoryBytes: 16 << 20 } });
    assert.equal(r.reason, "memory_limit");
    assert.equal(r.exitCode, EXIT_CODES.memory_limit);
    assert.match(text(r.stdout), /then malloc failed/);
    assert.ok(r.memoryBytes <= 16 << 20);
    assert.match(r.message, /memory limit of 16 MiB/);
  });
  test("the same program runs when granted more memory", async () => {
    const r = await pool.run(fixture("memhog.wasm"), { args: ["memhog", "32"], limits: { maxMemoryBytes: 64 << 20 } });
    assert.equal(r.reason, "exit");
    assert.equal(r.exitCode, 0);
    assert.match(text(r.stdout), /allocated 32 MiB/);
  });
  test("a trap near the memory ceiling that the limit did not cause is a trap, not memory_limit", async () => {
    const r = await pool.run(fixture("memhog.wasm"), { args: ["memhog", "15", "trap"], limits: { maxMemoryBytes: 16 << 20 } });
    assert.match(text(r.stdout), /allocated 15 MiB/);
    assert.ok(r.memoryBytes > (16 << 20) - 17 * 65536, `memory at ${r.memoryBytes}: close enough to the ceiling to fool a guess`);
    assert.equal(r.reason, "trap");
    assert.equal(r.trap?.reason, "unreachable");
  });
  test("memory.grow returns -1 past the limit, as the spec says, and the instance goes on", async () => {
    const re = await pool.reactor(fixture("grow.wasm"), { limits: { maxMemoryBytes: 4 * 65536 } });
    assert.equal((await re.call("grow", [2])).value, 1);
    assert.equal((await re.call("grow", [2])).value, -1);
    assert.equal((await re.call("pages")).value, 3);
    await re.close();
  });
  test("an imported memory is created within the limit", async () => {
    const bytes = readFileSync(`${REPO}test/fixtures/wat/memory-import.wasm`);
    // env.memory is provided by the env extension, so only once it is granted.
    const extensions = { grants: ["env"] };
    const low = await pool.reactor(bytes, { extensions, limits: { maxMemoryBytes: 4 * 65536 } });
    assert.equal((await low.call("grow", [1])).value, 2);
    assert.equal((await low.call("grow", [2])).value, -1);
    await low.close();
    const high = await pool.reactor(bytes, { extensions, limits: { maxMemoryBytes: 64 * 65536 } });
    assert.equal((await high.call("grow", [32])).value, 2);
    await high.close();
  });
  test("a module whose initial memory is above the limit is refused before it starts", async () => {
    const r = await pool.run(fixture("memhog.wasm"), { limits: { maxMemoryBytes: 65536 } });
    assert.equal(r.reason, "memory_limit");
    assert.match(r.message, /needs 2 pages/);
  });
});

describe("fuel", () => {
  test("a run out of fuel ends with fuel_exhausted and reports the fuel consumed", async () => {
    const r = await pool.run(fixture("sha256.wasm"), { args: ["sha256", "1"], limits: { fuel: 1_000_000 } });
    assert.equal(r.reason, "fuel_exhausted");
    assert.equal(r.exitCode, EXIT_CODES.fuel_exhausted);
    assert.equal(r.fuelConsumed, 1_000_000n);
  });
  test("the same program finishes when granted more fuel, and fuel is deterministic", async () => {
    const a = await pool.run(fixture("sha256.wasm"), { args: ["sha256", "1"], limits: { fuel: 10n ** 12n } });
    const b = await pool.run(fixture("sha256.wasm"), { args: ["sha256", "1"], limits: { fuel: 10n ** 12n } });
    assert.equal(a.reason, "exit");
    assert.equal(text(a.stdout), "b8a9d093211a8931889f1bc4510c24e5431dc34fd3bf866bb4a5f02ef819a45f\n");
    assert.ok(a.fuelConsumed! > 1_000_000n);
    assert.equal(a.fuelConsumed, b.fuelConsumed);
  });
  test("a run stopped by fuel stops at the same point every time", async () => {
    const full = await pool.run(fixture("output.wasm"), { args: ["o", "1000000"], limits: { fuel: 10n ** 12n } });
    assert.equal(full.reason, "exit");
    const budget = full.fuelConsumed! / 2n;
    const a = await pool.run(fixture("output.wasm"), { args: ["o", "1000000"], limits: { fuel: budget } });
    const b = await pool.run(fixture("output.wasm"), { args: ["o", "1000000"], limits: { fuel: budget } });
    assert.equal(a.reason, "fuel_exhausted");
    assert.ok(a.stdout.length > 0 && a.stdout.length < 1_000_000);
    assert.equal(a.stdout.length, b.stdout.length);
    assert.deepEqual(a.trap?.frames, b.trap?.frames);
  });
  test("a start function runs on the run's fuel: stopped when it has too little, run when granted more", async () => {
    const start = readFileSync(`${REPO}test/fixtures/wat/start.wasm`);
    await assert.rejects(pool.reactor(start, { limits: { fuel: 5 } }), (e: unknown) => e instanceof ReactorStartError && e.outcome.reason === "fuel_exhausted");
    const r = await pool.reactor(start, { limits: { fuel: 10_000 } });
    assert.equal(r.live, true);
    await r.close();
  });
  test("fuel is per reactor call", async () => {
    const re = await pool.reactor(fixture("grow.wasm"), { limits: { fuel: 1000 } });
    const ok = await re.call("spin", [10n]);
    assert.equal(ok.outcome.reason, "exit");
    assert.equal(ok.value, 10n);
    const out = await re.call("spin", [1_000_000n]);
    assert.equal(out.outcome.reason, "fuel_exhausted");
    const more = await re.call("spin", [1_000_000n], { limits: { fuel: 100_000_000 } });
    assert.equal(more.outcome.reason, "exit");
    assert.equal(more.value, 1_000_000n);
    await re.close();
  });
});

describe("deadline", () => {
  test("a spinning guest is stopped at its deadline and its executor replaced", async () => {
    const before = pool.stats().deadlineKills;
    const r = await pool.run(fixture("spin.wasm"), { limits: { timeoutMs: 50 } });
    assert.equal(r.reason, "deadline_exceeded");
    assert.equal(r.exitCode, EXIT_CODES.deadline_exceeded);
    assert.equal(pool.stats().deadlineKills, before + 1);
    assert.equal(pool.stats().executors, 2);
    const next = await pool.run(fixture("hello.wasm"));
    assert.equal(text(next.stdout), "hello from the sandbox\n");
  });
  test("a guest that finishes before its deadline is not stopped", async () => {
    const r = await pool.run(fixture("sha256.wasm"), { args: ["sha256", "1"], limits: { timeoutMs: 60_000 } });
    assert.equal(r.reason, "exit");
  });
});

describe("stack depth", () => {
  test("deep recursion on a small stack ends with stack_exhausted", async () => {
    const re = await pool.reactor(fixture("recurse.wasm"), { limits: { stackSizeMb: 1 } });
    const r = await re.call("depth", [200_000]);
    assert.equal(r.outcome.reason, "stack_exhausted");
    assert.equal(r.outcome.exitCode, EXIT_CODES.stack_exhausted);
    assert.equal(r.outcome.trap?.reason, "stack_exhausted");
    await re.close();
  });
  test("the same recursion completes when granted a bigger stack", async () => {
    const re = await pool.reactor(fixture("recurse.wasm"), { limits: { stackSizeMb: 64 } });
    const r = await re.call("depth", [200_000]);
    assert.equal(r.outcome.reason, "exit");
    assert.equal(r.value, 200_000);
    await re.close();
  });
});

describe("output limit", () => {
  test("stdout past its limit ends the run with output_limit, keeping what fit", async () => {
    const r = await pool.run(fixture("output.wasm"), { args: ["o", "100000"], limits: { stdoutBytes: 5000 } });
    assert.equal(r.reason, "output_limit");
    assert.equal(r.exitCode, EXIT_CODES.output_limit);
    assert.equal(r.stdout.length, 5000);
  });
  test("stderr has its own limit", async () => {
    const r = await pool.run(fixture("output.wasm"), { args: ["o", "100000", "err"], limits: { stderrBytes: 1000 } });
    assert.equal(r.reason, "output_limit");
    assert.equal(r.stderr.length, 1000);
  });
  test("output within the limit is all delivered", async () => {
    const r = await pool.run(fixture("output.wasm"), { args: ["o", "100000"], limits: { stdoutBytes: 100_000 } });
    assert.equal(r.reason, "exit");
    assert.equal(r.stdout.length, 100_000);
  });
});

describe("open files", () => {
  const data = [{ guest: "/data", memory: { file: "contents" } }];
  test("opening past the descriptor limit ends the run with fd_limit", async () => {
    const r = await pool.run(fixture("fds.wasm"), { args: ["fds", "100"], preopens: data, limits: { openFiles: 20 } });
    assert.equal(r.reason, "fd_limit");
    assert.equal(r.exitCode, EXIT_CODES.fd_limit);
  });
  test("the same program holds its files when granted more descriptors", async () => {
    const r = await pool.run(fixture("fds.wasm"), { args: ["fds", "100"], preopens: data, limits: { openFiles: 200 } });
    assert.equal(r.reason, "exit");
    assert.equal(text(r.stdout), "held 100\n");
  });
});

describe("neighbours", () => {
  test("limits hit by some instances leave the others on the same pool unaffected", async () => {
    const reactor = await pool.reactor(fixture("values-reactor.wasm"));
    await reactor.call("incr");
    const runs = await Promise.all([
      pool.run(fixture("spin.wasm"), { limits: { timeoutMs: 100 } }),
      pool.run(fixture("memhog.wasm"), { args: ["m", "32"], limits: { maxMemoryBytes: 8 << 20 } }),
      pool.run(fixture("sha256.wasm"), { args: ["s", "1"], limits: { fuel: 5000 } }),
      pool.run(fixture("output.wasm"), { args: ["o", "10000"], limits: { stdoutBytes: 10 } }),
      ...Array.from({ length: 6 }, () => pool.run(fixture("hello.wasm"))),
      pool.run(fixture("sha256.wasm"), { args: ["s", "1"] }),
    ]);
    assert.deepEqual(
      runs.map((r) => r.reason),
      ["deadline_exceeded", "memory_limit", "fuel_exhausted", "output_limit", "exit", "exit", "exit", "exit", "exit", "exit", "exit"],
    );
    for (const r of runs.slice(4, 10)) assert.equal(text(r.stdout), "hello from the sandbox\n");
    assert.equal(text(runs[10]!.stdout), "b8a9d093211a8931889f1bc4510c24e5431dc34fd3bf866bb4a5f02ef819a45f\n");
    // The reactor still answers (on a fresh instance if the deadline took its executor).
    const r = await reactor.call("add_i32", [2, 3]);
    assert.equal(r.value, 5);
    await reactor.close();
  });
});
