/**
 * The channel of a sandboxed executor process (src/sandbox/tiers/channel-io.ts):
 * its worker thread and its main thread both write frames to it, each under
 * the shared write lock, so that frames stay whole even when a write is cut
 * short by a full, non-blocking pipe.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { ChannelWriter } from "../../src/sandbox/tiers/channel-io.js";
import { FrameDecoder } from "../../src/sandbox/tiers/wire.js";
import type { ExecutorChannel } from "../../src/sandbox/protocol.js";

const CHANNEL_IO = new URL("../../src/sandbox/tiers/channel-io.js", import.meta.url).href;
const FRAMES = 100;
const BYTES = 256 * 1024;

test("frames written by two threads at once arrive whole and in each thread's order", async () => {
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-channel-"));
  try {
    const file = join(dir, "stream");
    // A pipe the node leaves non-blocking, drained by cat: writes of 256 KiB frames are cut short (EAGAIN) and resumed.
    const cat = spawn("sh", ["-c", `exec cat > ${file}`], { stdio: ["pipe", "ignore", "inherit"] });
    const fd = (cat.stdin as unknown as { _handle: { fd: number } })._handle.fd;
    assert.ok(fd > 2);
    const channel: ExecutorChannel = { in: -1, out: fd, writeLock: new SharedArrayBuffer(4) };
    const worker = new Worker(
      `const { workerData: w } = await import("node:worker_threads");
       const { ChannelWriter } = await import(w.url);
       const out = new ChannelWriter(w.channel);
       for (let i = 0; i < w.frames; i++) out.write({ from: "worker", i, chunk: new Uint8Array(w.bytes).fill(i) });`,
      { eval: true, workerData: { url: CHANNEL_IO, channel, frames: FRAMES, bytes: BYTES } },
    );
    const exited = new Promise((resolve, reject) => {
      worker.once("exit", resolve);
      worker.once("error", reject);
    });
    const main = new ChannelWriter(channel);
    for (let i = 0; i < FRAMES; i++) assert.equal(main.write({ from: "main", i, chunk: new Uint8Array(BYTES).fill(100 + i) }), true);
    await exited;
    cat.stdin.end();
    await new Promise((resolve) => cat.once("exit", resolve));
    const msgs = new FrameDecoder().push(readFileSync(file)) as { from: string; i: number; chunk: Uint8Array }[];
    assert.equal(msgs.length, 2 * FRAMES);
    for (const from of ["main", "worker"]) {
      const mine = msgs.filter((m) => m.from === from);
      assert.deepEqual(mine.map((m) => m.i), [...Array(FRAMES).keys()]);
      for (const m of mine) {
        assert.equal(m.chunk.length, BYTES);
        assert.ok(m.chunk.every((b) => b === (from === "main" ? 100 + m.i : m.i)), `${from} frame ${m.i} is whole`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
