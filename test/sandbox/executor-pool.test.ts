import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as net from "node:net";
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExecutorPool, ReactorStartError, WasmImage } from "../../src/sandbox/executor-pool.js";
import { EXIT_CODES } from "../../src/sandbox/limits.js";
import { fixture, text } from "./helpers.js";

const pool = new ExecutorPool({ size: 2 });
after(() => pool.close());

/** (module (import "env" "f" (func)) (func (export "_start"))) */
const IMPORTS_ENV_F = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x02, 0x09, 0x01, 0x03, 0x65, 0x6e, 0x76, 0x01,
  0x66, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x0a, 0x01, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x01, 0x0a, 0x04, 0x01,
  0x02, 0x00, 0x0b,
]);

describe("executor pool: commands", () => {
  test("a module is compiled once per node and reused by every executor", async () => {
    const image = new WasmImage(fixture("hello.wasm"));
    const before = pool.stats();
    const runs = await Promise.all(Array.from({ length: 8 }, () => pool.run(image)));
    for (const r of runs) assert.equal(text(r.stdout), "hello from the sandbox\n");
    const after = pool.stats();
    assert.equal(after.compiled - before.compiled, 1);
    assert.equal(after.cacheHits - before.cacheHits, 7);
  });
  test("other limits need another rewrite, compiled once too", async () => {
    const image = new WasmImage(fixture("hello.wasm"));
    const before = pool.stats().compiled;
    await pool.run(image, { limits: { maxMemoryBytes: 1 << 20 } });
    await pool.run(image, { limits: { maxMemoryBytes: 1 << 20 } });
    assert.equal(pool.stats().compiled - before, 1);
  });
  test("more runs than executors are queued and all complete", async () => {
    const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => pool.run(fixture("output.wasm"), { args: ["o", String(i)] })));
    runs.forEach((r, i) => assert.equal(r.stdout.length, i));
  });
  test("queued work survives the replacement of a killed executor", async () => {
    const spins = [pool.run(fixture("spin.wasm"), { limits: { timeoutMs: 30 } }), pool.run(fixture("spin.wasm"), { limits: { timeoutMs: 30 } })];
    const queued = Array.from({ length: 10 }, () => pool.run(fixture("hello.wasm")));
    assert.deepEqual((await Promise.all(spins)).map((r) => r.reason), ["deadline_exceeded", "deadline_exceeded"]);
    for (const r of await Promise.all(queued)) assert.equal(r.reason, "exit");
    assert.equal(pool.stats().executors, 2);
  });
  test("instances get memory that looks fresh, even when executors recycle memories", async () => {
    const one = new ExecutorPool({ size: 1 });
    try {
      for (let i = 0; i < 20; i++) {
        const r = await one.run(fixture("dirty.wasm"));
        assert.equal(r.reason, "exit");
        assert.equal(r.exitCode, 0, `run ${i}: exit ${r.exitCode}`);
      }
      // A memory that grew is not reused: the next instance starts at the initial size.
      const grown = await one.reactor(fixture("grow.wasm"));
      await grown.call("grow", [3]);
      await grown.close();
      assert.equal((await one.run(fixture("dirty.wasm"))).exitCode, 0);
    } finally {
      await one.close();
    }
  });
  test("an executor that dies mid-run is replaced: its run ends with executor_lost, queued work goes on", async () => {
    const one = new ExecutorPool({ size: 1 });
    try {
      await one.whenReady();
      const spinning = one.run(fixture("spin.wasm"), { limits: { timeoutMs: 60_000 } });
      const queued = one.run(fixture("hello.wasm"));
      // Once the spinning guest runs (modules are prepared on another thread first).
      while (one.stats().busy === 0) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 20));
      // Simulate a crash of the worker (not a deadline): end its thread from outside.
      const executors = (one as unknown as { executors: { worker: { terminate(): Promise<number> } }[] }).executors;
      await executors[0]!.worker.terminate();
      const lost = await spinning;
      assert.equal(lost.reason, "executor_lost");
      assert.equal(lost.exitCode, EXIT_CODES.executor_lost);
      assert.equal(text((await queued).stdout), "hello from the sandbox\n");
      assert.equal(one.stats().executors, 1);
    } finally {
      await one.close();
    }
  });
  test("an invalid module ends with invalid_module and never reaches an executor", async () => {
    const bad = fixture("hello.wasm").slice(0, 100);
    const r = await pool.run(bad);
    assert.equal(r.reason, "invalid_module");
    assert.equal(r.exitCode, EXIT_CODES.invalid_module);
    const junk = await pool.run(new TextEncoder().encode("#!/bin/sh\necho hi\n"));
    assert.equal(junk.reason, "invalid_module");
  });
  test("a module importing something the kernel does not provide ends with link_error naming it", async () => {
    const r = await pool.run(IMPORTS_ENV_F);
    assert.equal(r.reason, "link_error");
    assert.match(r.message, /env/);
  });
  test("a reactor run as a command is refused with a hint", async () => {
    const r = await pool.run(fixture("values-reactor.wasm"));
    assert.equal(r.reason, "link_error");
    assert.match(r.message, /reactor/);
  });
  test("output can be streamed while the guest runs", async () => {
    const chunks: Uint8Array[] = [];
    const r = await pool.run(fixture("output.wasm"), { args: ["o", "10000"], stdout: "stream", onOutput: (_s, c) => void chunks.push(c) });
    assert.equal(r.reason, "exit");
    assert.equal(r.stdout.length, 0);
    assert.equal(chunks.reduce((n, c) => n + c.length, 0), 10000);
  });
  test("streamed output under holdOutputBytes arrives whole with the result; past it, everything held is sent and the rest streams", async () => {
    for (const total of [10_000, 16_384, 100_000]) {
      const chunks: Uint8Array[] = [];
      const r = await pool.run(fixture("output.wasm"), { args: ["o", String(total)], stdout: "stream", holdOutputBytes: 16_384, onOutput: (_s, c) => void chunks.push(c) });
      assert.equal(r.reason, "exit");
      assert.equal(r.stdout.length, 0);
      assert.equal(chunks.reduce((n, c) => n + c.length, 0), total, `${total} bytes`);
      assert.equal(chunks.length, Math.ceil(total / 4096), "one chunk per 4 KiB write, none lost or doubled");
    }
    const errChunks: Uint8Array[] = [];
    const e = await pool.run(fixture("output.wasm"), { args: ["o", "5000", "err"], stdout: "stream", stderr: "stream", holdOutputBytes: 16_384, onOutput: (s, c) => void (s === "stderr" && errChunks.push(c)) });
    assert.equal(e.reason, "exit");
    assert.equal(errChunks.reduce((n, c) => n + c.length, 0), 5000);
  });
  test("held output still arrives when the run ends on a limit", async () => {
    const chunks: Uint8Array[] = [];
    const r = await pool.run(fixture("output.wasm"), { args: ["o", "12000"], stdout: "stream", holdOutputBytes: 65_536, limits: { stdoutBytes: 9000 }, onOutput: (_s, c) => void chunks.push(c) });
    assert.equal(r.reason, "output_limit");
    assert.equal(chunks.reduce((n, c) => n + c.length, 0), 9000);
  });
  test("stdin bytes reach the guest", async () => {
    const r = await pool.run(fixture("stdin-upper.wasm"), { stdin: "hello, stdin\n" });
    assert.equal(text(r.stdout), "HELLO, STDIN\n");
  });
  test("stdin from a stream blocks the guest's executor, not the serving thread", async () => {
    const dir = mkdtempSync(join(tmpdir(), "uniwasm-fifo-"));
    const fifo = join(dir, "stdin");
    execFileSync("mkfifo", [fifo]);
    // Reader first (non-blocking open), then the writer the test feeds later.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY);
    try {
      const run = pool.run(fixture("stdin-upper.wasm"), { stdin: { fd: reader } });
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      await new Promise((r) => setTimeout(r, 60));
      writeSync(writer, "typed later\n");
      await new Promise((r) => setTimeout(r, 30));
      closeSync(writer);
      const r = await run;
      clearInterval(timer);
      assert.equal(r.reason, "exit", r.message);
      assert.equal(text(r.stdout), "TYPED LATER\n");
      assert.ok(ticks >= 5, `the serving thread stayed free (${ticks} timer ticks while the guest waited)`);
    } finally {
      closeSync(reader);
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test("blocking socket calls park the executor while the pool does the I/O", async () => {
    const l = await pool.io.listen("127.0.0.1:0");
    const run = pool.run(fixture("echo-server.wasm"), { listeners: [{ id: l.handle, address: l.address }] });
    const [host, port] = [l.address.slice(0, l.address.lastIndexOf(":")), Number(l.address.slice(l.address.lastIndexOf(":") + 1))];
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ host, port }, () => s.write("shout this\n"));
      let got = "";
      s.on("data", (d) => (got += d.toString()));
      s.on("end", () => resolve(got));
      s.on("error", reject);
    });
    const r = await run;
    assert.equal(reply, "SHOUT THIS\n");
    assert.equal(r.reason, "exit", r.message);
    assert.equal(text(r.stdout), "echoed 11 bytes\n");
  });
  test("a run with another stack size gets its own executor, and the pool keeps its size", async () => {
    const r = await pool.run(fixture("hello.wasm"), { limits: { stackSizeMb: 2 } });
    assert.equal(r.reason, "exit");
    assert.ok(pool.stats().executors >= 2);
  });
});

describe("executor pool: reactors", () => {
  test("scalar arguments and results cross as i32, i64, f32 and f64", async () => {
    const re = await pool.reactor(fixture("values-reactor.wasm"));
    assert.equal((await re.call("add_i32", [2_000_000_000, 2_000_000_000])).value, -294_967_296);
    assert.equal((await re.call("add_i64", [2n ** 62n, 2n ** 62n])).value, -(2n ** 63n));
    assert.equal((await re.call("mul_f32", [1.5, 0.1])).value, Math.fround(Math.fround(1.5) * Math.fround(0.1)));
    assert.equal((await re.call("div_f64", [1, 3])).value, 1 / 3);
    await re.close();
  });
  test("byte buffers cross through the guest's exported allocator", async () => {
    const re = await pool.reactor(fixture("values-reactor.wasm"));
    const input = new TextEncoder().encode("sandbox");
    assert.equal((await re.call("byte_sum", [input])).value, input.reduce((a, b) => a + b, 0));
    const rev = await re.call("reverse", [input], { result: "bytes" });
    assert.equal(text(rev.value as Uint8Array), "xobdnas");
    const big = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
    const back = (await re.call("reverse", [big], { result: "bytes" })).value as Uint8Array;
    assert.equal(back.length, big.length);
    assert.equal(back[0], big[big.length - 1]);
    await re.close();
  });
  test("a reactor keeps its state between calls", async () => {
    const re = await pool.reactor(fixture("values-reactor.wasm"));
    const values = [];
    for (let i = 0; i < 5; i++) values.push((await re.call("incr")).value);
    assert.deepEqual(values, [1n, 2n, 3n, 4n, 5n]);
    await re.close();
  });
  test("a reactor that trapped is replaced by a fresh instance on its next call", async () => {
    const re = await pool.reactor(fixture("values-reactor.wasm"));
    await re.call("incr");
    const crash = await re.call("crash");
    assert.equal(crash.outcome.reason, "trap");
    assert.equal(crash.outcome.trap?.reason, "unreachable");
    assert.equal(crash.outcome.trap?.frames[0]?.name, "crash");
    assert.equal((await re.call("incr")).value, 1n);
    assert.equal(re.restarts, 1);
    await re.close();
  });
  test("calling a missing export says which", async () => {
    const re = await pool.reactor(fixture("values-reactor.wasm"));
    const r = await re.call("nope");
    assert.equal(r.outcome.reason, "link_error");
    assert.match(r.outcome.message, /"nope"/);
    await re.close();
  });
  test("a reactor whose executor was killed by another instance's deadline starts afresh", async () => {
    const small = new ExecutorPool({ size: 1 });
    try {
      const re = await small.reactor(fixture("values-reactor.wasm"));
      await re.call("incr");
      const spinning = small.run(fixture("spin.wasm"), { limits: { timeoutMs: 100 } });
      // The spin holds the only executor now (waiting on the pool's state, not a fixed time: a loaded machine is slow to start it).
      while (small.stats().busy === 0) await new Promise((r) => setTimeout(r, 2));
      const [spin, call] = await Promise.all([spinning, re.call("incr")]);
      assert.equal(spin.reason, "deadline_exceeded");
      // The call was queued behind the spinning run: it had not started, so it ran on a fresh instance.
      assert.equal(call.outcome.reason, "exit");
      assert.equal(call.value, 1n);
      assert.equal(re.restarts, 1);
    } finally {
      await small.close();
    }
  });
  test("a reactor whose initializer fails does not start", async () => {
    await assert.rejects(pool.reactor(fixture("primes-reactor.wasm"), { limits: { fuel: 1000 } }), (e: unknown) => e instanceof ReactorStartError && e.outcome.reason === "fuel_exhausted");
  });
});
