import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createOutputRing, OUTPUT_PIECE_BYTES, OUTPUT_RING_BYTES, OutputRingReader, OutputRingWriter } from "../../src/sandbox/output-ring.js";
import { ExecutorPool } from "../../src/sandbox/executor-pool.js";
import { fixture } from "./helpers.js";

describe("output ring", () => {
  test("pieces stay contiguous: one that would cross the end starts over at 0, its span counting the skipped tail", () => {
    const ring = createOutputRing();
    const writer = new OutputRingWriter(ring);
    const reader = new OutputRingReader(ring);
    const piece = (n: number, byte: number) => new Uint8Array(n).fill(byte);
    const a = writer.put(piece(OUTPUT_PIECE_BYTES, 1));
    const b = writer.put(piece(OUTPUT_PIECE_BYTES, 2));
    const c = writer.put(piece(OUTPUT_PIECE_BYTES, 3));
    assert.deepEqual([a.at, b.at, c.at], [0, OUTPUT_PIECE_BYTES, 2 * OUTPUT_PIECE_BYTES]);
    // 48 KiB more ends at 240 KiB; the next 32 KiB would cross the end: it starts at 0, once a and b are back.
    const d = writer.put(piece(48 * 1024, 4));
    assert.deepEqual(d, { at: 3 * OUTPUT_PIECE_BYTES, length: 48 * 1024, span: 48 * 1024 });
    for (const p of [a, b]) {
      assert.ok(reader.view(p).every((x) => x === (p === a ? 1 : 2)));
      reader.release(p.span);
    }
    const e = writer.put(piece(32 * 1024, 5));
    assert.deepEqual(e, { at: 0, length: 32 * 1024, span: OUTPUT_RING_BYTES - (3 * OUTPUT_PIECE_BYTES + 48 * 1024) + 32 * 1024 });
    assert.ok(reader.view(c).every((x) => x === 3), "a piece not released yet is intact");
    assert.ok(reader.view(d).every((x) => x === 4));
    assert.ok(reader.view(e).every((x) => x === 5));
    assert.equal(reader.outstanding, c.span + d.span + e.span);
  });
});

describe("output through the ring", () => {
  const pool = new ExecutorPool({ size: 1 });
  after(() => pool.close());

  test("a consumer that holds what it is lent parks the guest: never more than a ring's worth out at once, and the output arrives whole", async () => {
    let out = 0;
    let most = 0;
    let bytes = 0;
    let shared = true;
    let allX = true;
    const r = await pool.run(fixture("output.wasm"), {
      args: ["o", String(2 * 1024 * 1024)],
      stdout: "stream",
      lendStdout: true,
      onOutput: (_s, chunk) => {
        shared &&= chunk.buffer instanceof SharedArrayBuffer;
        allX &&= chunk.every((x) => x === 0x78);
        bytes += chunk.length;
        out += chunk.length;
        most = Math.max(most, out);
        // Given back a little later, as a socket would once it wrote the bytes.
        return new Promise((resolve) =>
          setTimeout(() => {
            out -= chunk.length;
            resolve();
          }, 1),
        );
      },
    });
    assert.equal(r.reason, "exit");
    assert.equal(bytes, 2 * 1024 * 1024);
    assert.ok(allX, "every byte as written");
    assert.ok(shared, "stdout was lent in place (the ring is shared memory)");
    assert.ok(most <= OUTPUT_RING_BYTES, `at most a ring's worth lent at once (${most} bytes)`);
    assert.ok(most > OUTPUT_PIECE_BYTES, `the guest ran ahead of the consumer by more than a piece (${most} bytes)`);
  });

  test("views still lent when a run ends keep their bytes: the next run on the executor writes into a new ring", async () => {
    const lent: Uint8Array[] = [];
    const release: (() => void)[] = [];
    // 100 KiB: less than a ring, so the run ends while every view is still out.
    const first = await pool.run(fixture("stdin-upper.wasm"), {
      stdin: "a".repeat(100 * 1024),
      stdout: "stream",
      lendStdout: true,
      onOutput: (_s, chunk) => {
        lent.push(chunk);
        return new Promise((resolve) => release.push(resolve));
      },
    });
    assert.equal(first.reason, "exit");
    let second = "";
    const next = await pool.run(fixture("stdin-upper.wasm"), {
      stdin: "b".repeat(200 * 1024),
      stdout: "stream",
      lendStdout: true,
      onOutput: (_s, chunk) => void (second += Buffer.from(chunk).toString()),
    });
    assert.equal(next.reason, "exit");
    assert.equal(second, "B".repeat(200 * 1024));
    assert.equal(lent.reduce((n, c) => n + c.length, 0), 100 * 1024);
    assert.ok(lent.every((c) => c.every((x) => x === 0x41)), "the first run's lent bytes were not overwritten by the second run");
    for (const r of release) r();
  });

  test("without lendStdout, a consumer gets its own copies", async () => {
    const chunks: Uint8Array[] = [];
    const r = await pool.run(fixture("output.wasm"), { args: ["o", String(300 * 1024)], stdout: "stream", onOutput: (_s, c) => void chunks.push(c) });
    assert.equal(r.reason, "exit");
    assert.ok(chunks.every((c) => c.buffer instanceof ArrayBuffer && !(c.buffer instanceof SharedArrayBuffer)));
    assert.equal(chunks.reduce((n, c) => n + c.length, 0), 300 * 1024);
  });
});
