import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createJobSlot, openJobSlot, SLOT_DATA_BYTES, SlotReader, SlotWriter } from "../../src/sandbox/job-slot.js";
import { ExecutorPool, WasmImage } from "../../src/sandbox/executor-pool.js";
import { fixture, REPO, text } from "./helpers.js";

function channel(): { writer: SlotWriter; reader: SlotReader; send(v: unknown): unknown } {
  const slot = openJobSlot(createJobSlot());
  const writer = new SlotWriter(slot);
  const reader = new SlotReader(slot);
  return {
    writer,
    reader,
    send(v) {
      const n = writer.write(v);
      assert.ok(n >= 0, "the message should fit the slot");
      return reader.read(n);
    },
  };
}

describe("job slot encoding", () => {
  test("a request or result reads back as structuredClone would give it", () => {
    const c = channel();
    const values: unknown[] = [
      {
        op: "run",
        id: 7,
        module: { key: "ab".repeat(32) + "/m4096" },
        options: { args: ["app", "x y", ""], env: { A: "1", EMPTY: "" }, stdin: new Uint8Array([0, 1, 255]), stdout: "null", strict: true, trace: false },
        limits: { maxMemoryBytes: 268435456, fuel: null, timeoutMs: Infinity, stackSizeMb: 4, stdoutBytes: 1.5, stderrBytes: 2 ** 40, openFiles: 1024 },
      },
      {
        id: 7,
        kind: "done",
        outcome: { reason: "exit", exitCode: -1, message: "exited with code 0", stdout: new Uint8Array(0), memoryBytes: 131072, calls: { fd_write: 3 }, denied: {}, durationUs: 18, fuelConsumed: 12345678901234n },
        value: -(2n ** 63n),
      },
      [undefined, null, NaN, -0, 0, 2 ** 31, -(2 ** 31), 0.1, -Infinity, "", [], {}],
      { nested: { deeper: [{ a: [1, [2, [3]]] }] } },
    ];
    for (const v of values) {
      const got = c.send(v);
      assert.deepStrictEqual(got, structuredClone(v));
    }
    assert.ok(Object.is((c.send([-0]) as number[])[0], -0), "-0 keeps its sign");
  });

  test("text that is not ASCII, and long text, reads back exactly", () => {
    const c = channel();
    for (const s of ["héllo wörld", "日本語", "emoji 🙂 pair", "x".repeat(10_000), "é".repeat(70), "\u0000nul"]) {
      assert.equal(c.send(s), s);
      assert.deepEqual(c.send({ [s]: s }), { [s]: s });
    }
  });

  test("repeated strings are sent once and then by reference", () => {
    const c = channel();
    const msg = { reason: "exit", message: "exited with code 0", calls: { fd_write: 1, proc_exit: 1 } };
    const first = c.writer.write(msg);
    assert.deepEqual(c.reader.read(first), msg);
    const second = c.writer.write(msg);
    assert.ok(second < first, `second message ${second} bytes, first ${first}`);
    assert.deepEqual(c.reader.read(second), msg);
  });

  test("a __proto__ key stays an own property, as with postMessage", () => {
    const c = channel();
    const env = JSON.parse('{"__proto__": "x", "B": "y"}') as Record<string, string>;
    const got = c.send({ env }) as { env: Record<string, string> };
    assert.equal(Object.getPrototypeOf(got.env), Object.prototype);
    assert.deepEqual(Object.keys(got.env), ["__proto__", "B"]);
    assert.equal(Object.getOwnPropertyDescriptor(got.env, "__proto__")?.value, "x");
  });

  test("bytes read back as a copy in unshared memory", () => {
    const c = channel();
    const got = c.send(Uint8Array.from([1, 2, 3])) as Uint8Array;
    assert.ok(got instanceof Uint8Array);
    assert.ok(!(got.buffer instanceof SharedArrayBuffer));
    assert.deepEqual([...got], [1, 2, 3]);
  });

  test("what postMessage must carry does not fit, and leaves nothing behind", () => {
    const c = channel();
    const module = new WebAssembly.Module(Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
    const refused: unknown[] = [
      { module },
      { m: new Map([[1, 2]]) },
      { shared: new Uint8Array(new SharedArrayBuffer(4)) },
      { sab: new SharedArrayBuffer(4) },
      { f64: new Float64Array(2) },
      { big: 2n ** 64n },
      { lone: "a\ud800b" + "é" },
      { holes: [1, , 3] },
      { tooBig: new Uint8Array(SLOT_DATA_BYTES) },
      { date: new Date(0) },
    ];
    for (const v of refused) {
      // Strings interned before the refusal must not be referenced later: the reader never saw them.
      assert.equal(c.writer.write({ fresh: `interned before ${Object.keys(v as object)[0]}`, v }), -1);
      assert.deepEqual(c.send({ fresh: `interned before ${Object.keys(v as object)[0]}` }), { fresh: `interned before ${Object.keys(v as object)[0]}` });
    }
  });
});

describe("executor pool: the job slot", () => {
  const pool = new ExecutorPool({ size: 1 });
  after(() => pool.close());

  test("arguments and environment in any script reach the guest, run after run", async () => {
    const image = new WasmImage(readFileSync(`${REPO}test/fixtures/as/args_env.wasm`));
    const long = "ß".repeat(3000);
    for (const [arg, greeting] of [
      ["ünï", "héllo wörld"],
      ["日本", "héllo wörld"],
      [long, "🙂"],
      ["plain", "plain"],
    ] as const) {
      const r = await pool.run(image, { args: ["p", arg, "b c"], env: { GREETING: greeting, HOME: "/home/x" } });
      assert.equal(r.reason, "exit", r.message);
      assert.equal(text(r.stdout), `args: ${arg},b c\nargc: 3\nGREETING=${greeting}\nHOME=/home/x\n`);
    }
  });

  test("a result too large for the slot arrives whole, and the executor goes on", async () => {
    const out = new WasmImage(fixture("output.wasm"));
    const big = await pool.run(out, { args: ["o", String(SLOT_DATA_BYTES * 2)] });
    assert.equal(big.reason, "exit");
    assert.equal(big.stdout.length, SLOT_DATA_BYTES * 2);
    assert.ok(big.stdout.every((b) => b === 0x78));
    const small = await pool.run(out, { args: ["o", "10"] });
    assert.equal(text(small.stdout), "x".repeat(10));
  });

  test("streamed output arrives before the run's result, every time", async () => {
    const out = new WasmImage(fixture("output.wasm"));
    for (let i = 0; i < 20; i++) {
      let streamed = 0;
      const r = await pool.run(out, { args: ["o", String(100 + i)], stdout: "stream", onOutput: (_s, c) => void (streamed += c.length) });
      assert.equal(r.reason, "exit");
      assert.equal(streamed, 100 + i);
    }
  });

  test("a call on a reactor started with streamed output answers, and only its starter streamed", async () => {
    const meta = new TextEncoder().encode("PATH_INFO=/\0REQUEST_METHOD=GET\0");
    const request = new Uint8Array(4 + meta.length);
    new DataView(request.buffer).setUint32(0, meta.length, true);
    request.set(meta, 4);
    const chunks: string[] = [];
    const reactor = await pool.reactor(readFileSync(`${REPO}test/fixtures/reactor/hello.wasm`), { stdout: "stream", onOutput: (_s, c) => void chunks.push(text(c)) });
    try {
      for (let i = 1; i <= 3; i++) {
        const r = await reactor.call("uniwasm_http_handle", [request]);
        assert.equal(r.outcome.reason, "exit", r.outcome.message);
        assert.equal(r.value, 0);
      }
      // Output of later calls belongs to no request that streams (as before the job slot): it is dropped, never mixed into another run.
      assert.deepEqual(chunks, []);
      const after = await pool.run(new WasmImage(fixture("hello.wasm")));
      assert.equal(text(after.stdout), "hello from the sandbox\n");
    } finally {
      await reactor.close();
    }
  });

  test("an executor parked on its slot between runs can be closed", async () => {
    const one = new ExecutorPool({ size: 1 });
    await one.whenReady();
    await one.run(new WasmImage(fixture("hello.wasm")));
    await one.close();
    assert.equal(one.stats().executors, 0);
  });
});
