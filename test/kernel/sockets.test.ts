/**
 * Preopened listening sockets (wasmtime's `--tcplisten`): guest programs from
 * test/fixtures/sockets run with a listener granted after stdio, and a real
 * TCP client (node:net) talks to them.
 *
 * The guest runs on this thread and blocks in host calls while an IoThread
 * does the socket I/O, so the client runs on a worker thread of its own: it
 * follows a short script (send, wait for bytes, half-close, wait for the end)
 * and reports everything it received.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { runBytes, runModule, type RunResult } from "../../src/sandbox/inline.js";
import { IoThread } from "../../src/kernel/io-thread.js";
import { MemoryFs } from "../../src/kernel/fs-memory.js";
import { DEFAULT_CAPABILITIES } from "../../src/kernel/syscalls.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../../..");
const FIXTURES = join(ROOT, "test/fixtures/sockets");
const decoder = new TextDecoder();

/**
 * One client step: `send` bytes, wait until `expect` bytes have arrived in
 * total, `end` (half-close our side), or wait for the server's `end`.
 */
type Step = { send: string | { repeat: string; times: number } } | { expect: number } | { end: true } | { waitEnd: true } | { delayMs: number };

interface ClientReport {
  received: string;
  /** The server closed its sending side (we saw end of stream). */
  ended: boolean;
  error?: string;
}

// Runs in a worker: connects, plays the steps, then reads until the server
// ends (or a deadline), and posts what it saw. allowHalfOpen keeps our side
// open after the server's FIN so that steps after waitEnd can still send.
const CLIENT_SOURCE = `
const net = require("node:net");
const { parentPort, workerData } = require("node:worker_threads");
const { host, port } = workerData;
const steps = [...workerData.steps];
const chunks = [];
let received = 0, ended = false, error, connected = false, reported = false;
let waiter = null;
const poke = () => { if (waiter) { const w = waiter; waiter = null; w(); } };
const until = (cond, ms) => new Promise((resolve) => {
  const deadline = Date.now() + ms;
  const check = () => {
    if (cond() || Date.now() >= deadline || error) return resolve();
    waiter = check;
    setTimeout(poke, Math.max(1, deadline - Date.now()));
  };
  check();
});
const report = () => {
  if (reported) return;
  reported = true;
  parentPort.postMessage({ received: Buffer.concat(chunks).toString("latin1"), ended, error });
};
const delay = steps[0] && steps[0].delayMs !== undefined ? steps.shift().delayMs : 0;
setTimeout(() => {
  const socket = net.connect({ host, port, allowHalfOpen: true });
  socket.on("data", (c) => { chunks.push(c); received += c.length; poke(); });
  socket.on("end", () => { ended = true; poke(); });
  socket.on("error", (e) => { error = String(e.message); poke(); if (!connected) report(); });
  socket.on("connect", async () => {
    connected = true;
    for (const s of steps) {
      if (s.send !== undefined) socket.write(typeof s.send === "string" ? s.send : s.send.repeat.repeat(s.send.times));
      else if (s.expect !== undefined) await until(() => received >= s.expect, 15000);
      else if (s.end) socket.end();
      else if (s.waitEnd) await until(() => ended, 15000);
    }
    await until(() => ended, 15000);
    socket.destroy();
    report();
  });
}, delay);
`;

function startClient(address: string, steps: readonly Step[]): Promise<ClientReport> {
  const m = /^(.*):(\d+)$/.exec(address);
  assert.ok(m, `listener address ${address}`);
  const worker = new Worker(CLIENT_SOURCE, { eval: true, workerData: { host: m[1], port: Number(m[2]), steps } });
  return new Promise((resolve, reject) => {
    worker.once("message", (r: ClientReport) => {
      resolve(r);
      void worker.terminate();
    });
    worker.once("error", reject);
  });
}

function fixture(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(FIXTURES, `${name}.wasm`)));
}

function describe(r: RunResult): string {
  return `exit ${r.exitCode} (${r.reason}${r.message ? `: ${r.message}` : ""})\nstderr: ${decoder.decode(r.stderr)}`;
}

/**
 * Runs a socket program with one listener on 127.0.0.1 (ephemeral port) and
 * any number of clients, each started once the listener is bound.
 */
async function runWithListener(name: string, args: readonly string[], clients: readonly (readonly Step[])[], rescueAfterMs?: number): Promise<{ result: RunResult; reports: ClientReport[] }> {
  const io = IoThread.start();
  try {
    const l = await io.listen("127.0.0.1:0");
    const pending = clients.map((steps) => startClient(l.address, steps));
    // A guest that wrongly blocks in accept would hang the suite: a late client
    // unblocks it, so the test fails on the guest's own check instead.
    const rescue = rescueAfterMs === undefined ? undefined : startClient(l.address, [{ delayMs: rescueAfterMs }, { end: true }]);
    void rescue?.catch(() => undefined);
    const result = await runModule(fixture(name), {
      args: [name, ...args],
      listeners: [{ id: l.handle, address: l.address }],
      io: await io.client(),
      stdout: "buffer",
      stderr: "buffer",
    });
    return { result, reports: await Promise.all(pending) };
  } finally {
    await io.close();
  }
}

test("sock_accept with NONBLOCK and no pending connection returns EAGAIN, and an idle listener does not poll readable", async () => {
  const { result } = await runWithListener("sock_accept__nonblocking_no_pending_eagain", [], [], 3000);
  assert.equal(result.exitCode, 0, describe(result));
  assert.equal(decoder.decode(result.stdout), "no pending connection\n");
  assert.ok((result.calls["poll_oneoff"] ?? 0) >= 1);
});

test("a connecting client makes the listener poll readable; sock_accept returns a nonblocking stream socket", async () => {
  const { result, reports } = await runWithListener("sock_accept__poll_then_accept", [], [[]]);
  assert.equal(result.exitCode, 0, describe(result));
  assert.equal(decoder.decode(result.stdout), "listening\nsent hello\n");
  assert.equal(reports[0]!.received, "hello");
  assert.equal(reports[0]!.ended, true, "closing the accepted fd ends the client's stream");
});

test("sock_recv with RECV_PEEK leaves the data for the next recv; fd_write works on a socket", async () => {
  const { result, reports } = await runWithListener("sock_recv__peek_then_read", [], [[{ send: "ping" }, { expect: 4 }, { end: true }]]);
  assert.equal(result.exitCode, 0, describe(result));
  assert.equal(decoder.decode(result.stdout), "peek ok\n");
  assert.equal(reports[0]!.received, "pong");
});

test("sock_shutdown(WR) ends the guest's stream, later sends are EPIPE, and the guest can still read", async () => {
  const { result, reports } = await runWithListener("sock_shutdown__write_half_then_epipe", [], [[{ expect: 3 }, { waitEnd: true }, { send: "ack" }, { end: true }]]);
  assert.equal(result.exitCode, 0, describe(result));
  assert.equal(decoder.decode(result.stdout), "shutdown ok\n");
  assert.equal(reports[0]!.received, "bye");
  assert.equal(reports[0]!.ended, true);
});

test("the echo server serves several clients in turn, waiting in poll_oneoff, and echoes every byte", async () => {
  const big = { repeat: "0123456789abcdef", times: 16384 }; // 256 KiB, more than one recv
  const { result, reports } = await runWithListener("echo_server", ["3"], [
    [{ send: "first" }, { expect: 5 }, { end: true }],
    [{ send: big }, { expect: 16 * 16384 }, { end: true }],
    [{ send: "third\n" }, { expect: 6 }, { end: true }],
  ]);
  assert.equal(result.exitCode, 0, describe(result));
  const lines = decoder.decode(result.stdout).trim().split("\n");
  assert.equal(lines.length, 3);
  const echoed = lines.map((l) => Number(/echoed (\d+) bytes/.exec(l)?.[1])).sort((a, b) => a - b);
  assert.deepEqual(echoed, [5, 6, 16 * 16384]);
  const received = reports.map((r) => r.received);
  assert.equal(received[0], "first");
  assert.equal(received[1], "0123456789abcdef".repeat(16384));
  assert.equal(received[2], "third\n");
  for (const r of reports) assert.equal(r.ended, true, "the server shut down its side after the client finished");
  assert.ok((result.calls["poll_oneoff"] ?? 0) >= 1, "nonblocking waits go through poll_oneoff");
  assert.equal(result.calls["sock_accept"] !== undefined && result.calls["sock_accept"] >= 3, true);
});

test("the echo server still answers a client that half-closes right after sending (shutdown write, then read)", async () => {
  const { result, reports } = await runWithListener("echo_server", ["1"], [[{ send: { repeat: "x", times: 70000 } }, { end: true }]]);
  assert.equal(result.exitCode, 0, describe(result));
  assert.equal(reports[0]!.error, undefined);
  assert.equal(reports[0]!.received.length, 70000, "every byte comes back after the client's FIN");
  assert.equal(reports[0]!.ended, true);
});

test("runBytes with tcpListen (what `uniwasm run --tcplisten` does) grants the listener and reports its bound address", async () => {
  let client: Promise<ClientReport> | undefined;
  const result = await runBytes(fixture("echo_server"), {
    args: ["echo_server", "1"],
    tcpListen: ["127.0.0.1:0"],
    onListening: (address) => {
      client = startClient(address, [{ send: "via runBytes" }, { expect: 12 }, { end: true }]);
    },
    stdout: "buffer",
    stderr: "buffer",
  });
  assert.ok(client, "onListening was called");
  const report = await client;
  assert.equal(result.exitCode, 0, describe(result));
  assert.equal(report.received, "via runBytes");
  assert.equal(decoder.decode(result.stdout), "connection 0: echoed 12 bytes\n");
});

// The conformance programs for sock_* error cases, run with the `sockets`
// capability granted but no listener: what Wasmtime answers on descriptors
// that are not sockets (ENOTSOCK) or not open (EBADF). (Without the grant the
// linker answers every sock_* call with ENOTCAPABLE instead.)
const SOCK_ERROR_PROGRAMS = [
  "sock_accept__bad_fd_ebadf",
  "sock_accept__non_socket_enotsock",
  "sock_recv__bad_fd_ebadf",
  "sock_recv__non_socket_enotsock",
  "sock_send__bad_fd_ebadf",
  "sock_send__non_socket_enotsock",
  "sock_shutdown__bad_fd_ebadf",
  "sock_shutdown__non_socket_enotsock",
];

for (const name of SOCK_ERROR_PROGRAMS) {
  test(`with sockets granted, ${name.slice(0, name.indexOf("__"))}: ${name.slice(name.indexOf("__") + 2).replace(/_/g, " ")}`, async () => {
    const source = readFileSync(join(ROOT, "test/fixtures/conformance", `${name}.c`), "utf8");
    const wantsDir = !source.includes("uniwasm-test: dir=none");
    const stdin = /uniwasm-test: stdin=(.*)/.exec(source)?.[1]?.replace(/\\n/g, "\n") ?? "";
    const result = await runModule(readFileSync(join(ROOT, "test/fixtures/conformance", `${name}.wasm`)), {
      args: [name],
      preopens: wantsDir ? [{ guest: "/sandbox", memory: new MemoryFs() }] : [],
      capabilities: [...DEFAULT_CAPABILITIES, "fs", "sockets"],
      stdin,
      stdout: "buffer",
      stderr: "buffer",
    });
    assert.equal(result.exitCode, 0, describe(result));
    assert.deepEqual(result.denied, {});
  });
}
