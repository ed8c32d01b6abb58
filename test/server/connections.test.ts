import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { call, deploy, tenant, testNode } from "./helpers.js";

type Node = Awaited<ReturnType<typeof testNode>>;

/** A pino logger whose lines the test can read. */
function capturedLog() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level: "warn" }, stream), lines };
}

interface Conn {
  socket: Socket;
  /** Everything received, once the server closed the connection. */
  closed: Promise<string>;
}

/** Opens a connection from `from` (a loopback address) and sends `text` without ending it. */
async function open(url: string, from: string, text: string): Promise<Conn> {
  const u = new URL(url);
  const socket = connect({ host: u.hostname, port: Number(u.port), localAddress: from });
  const chunks: Buffer[] = [];
  socket.on("data", (c) => chunks.push(c));
  socket.on("error", () => undefined); // a reset is a close for these tests
  const closed = new Promise<string>((resolve) => socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1"))));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write(text);
  return { socket, closed };
}

const PARTIAL = "GET / HTTP/1.1\r\nHost: slow.example\r\nX-Slow: ";

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const nodeInfo = async (node: Node) => (await call(node.apiUrl, "GET", "/v1/node", node.admin)).json;

test("over the per-address and total caps a gateway connection is closed at accept, counted in uniwasm_connections_shed_total and logged, while others are served", async () => {
  const { logger, lines } = capturedLog();
  const node = await testNode({ executors: 1, logger, gatewayConnections: { maxConnections: 5, maxConnectionsPerIp: 3, headersTimeoutMs: 60_000 } });
  const held: Conn[] = [];
  try {
    const t = await tenant(node, "conn");
    assert.equal((await deploy(node, t, "app", "wagi/hello.wasm")).status, 201);
    for (let i = 0; i < 3; i++) held.push(await open(node.gatewayUrl, "127.0.0.1", PARTIAL));
    const openNow = async () => (await nodeInfo(node)).connections.gateway.open as number;
    await until(async () => (await openNow()) === 3, "three open connections");
    const shedIp = await open(node.gatewayUrl, "127.0.0.1", "GET / HTTP/1.1\r\nHost: app.conn.localhost\r\n\r\n");
    assert.equal(await shedIp.closed, "", "the fourth connection from one address is closed without an answer");

    // Another address is served meanwhile.
    const other = await open(node.gatewayUrl, "127.0.0.2", "GET / HTTP/1.1\r\nHost: app.conn.localhost\r\nConnection: close\r\n\r\n");
    assert.match(await other.closed, /^HTTP\/1\.1 200 /);
    await until(async () => (await openNow()) === 3, "the served connection's close");
    for (const from of ["127.0.0.3", "127.0.0.3"]) held.push(await open(node.gatewayUrl, from, PARTIAL));
    await until(async () => (await openNow()) === 5, "five open connections");
    const shedTotal = await open(node.gatewayUrl, "127.0.0.4", "GET / HTTP/1.1\r\nHost: app.conn.localhost\r\n\r\n");
    assert.equal(await shedTotal.closed, "", "past the total cap, any address is shed");

    const info = await nodeInfo(node);
    assert.deepEqual(info.connections.gateway.shed, { total: 1, per_ip: 1 });
    const metrics = (await call(node.apiUrl, "GET", "/metrics", node.admin)).text;
    assert.match(metrics, /^uniwasm_connections_shed_total\{server="gateway",reason="per_ip"\} 1$/m);
    assert.match(metrics, /^uniwasm_connections_shed_total\{server="gateway",reason="total"\} 1$/m);
    assert.match(metrics, /^uniwasm_open_connections\{server="gateway"\} 5$/m);
    await until(() => lines.some((l) => /gateway: shed 1 connection\(s\) at the per-address cap of 3 \(last from 127\.0\.0\.1\)/.test(String(l["msg"]))), "the per-address log line");
    assert.ok(lines.some((l) => /gateway: shed 1 connection\(s\) at the total cap of 5/.test(String(l["msg"]))), JSON.stringify(lines));

    // Freed slots are usable again.
    held.splice(0).forEach((c) => c.socket.destroy());
    await until(async () => (await openNow()) === 0, "the closes");
    const again = await open(node.gatewayUrl, "127.0.0.1", "GET / HTTP/1.1\r\nHost: app.conn.localhost\r\nConnection: close\r\n\r\n");
    assert.match(await again.closed, /^HTTP\/1\.1 200 /);
  } finally {
    held.forEach((c) => c.socket.destroy());
    await node.close();
  }
});

test("a client that sends partial headers is cut off at the headers timeout (408), far below the request timeout", async () => {
  const node = await testNode({ executors: 1, gatewayConnections: { headersTimeoutMs: 300 } });
  try {
    const started = Date.now();
    const slow = await open(node.gatewayUrl, "127.0.0.1", PARTIAL);
    const text = await slow.closed;
    const ms = Date.now() - started;
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.ok(ms < 10_000, `closed after ${ms} ms (the request timeout is 30 s)`);
  } finally {
    await node.close();
  }
});

test("the API has its own caps: a flood on the gateway does not take the API's connections, and the API sheds past its per-address cap", async () => {
  const node = await testNode({ executors: 1, gatewayConnections: { maxConnections: 2, headersTimeoutMs: 60_000 }, apiConnections: { maxConnectionsPerIp: 2, headersTimeoutMs: 60_000 } });
  const held: Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) held.push(await open(node.gatewayUrl, "127.0.0.1", PARTIAL));
    assert.equal((await call(node.apiUrl, "GET", "/healthz", undefined)).status, 200, "the API answers while the gateway is full");
    for (let i = 0; i < 2; i++) held.push(await open(node.apiUrl, "127.0.0.5", PARTIAL));
    const shed = await open(node.apiUrl, "127.0.0.5", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.equal(await shed.closed, "");
    assert.deepEqual((await nodeInfo(node)).connections.api.shed, { total: 0, per_ip: 1 });
  } finally {
    held.forEach((c) => c.socket.destroy());
    await node.close();
  }
});
