import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:http";
import { startNode, type NodeOptions, type RunningNode } from "../../src/server/index.js";

export const FIXTURES = join(process.cwd(), "test", "fixtures");
export const wasm = (rel: string): Buffer => readFileSync(join(FIXTURES, rel));

export function tempDataDir(): string {
  return mkdtempSync(join(tmpdir(), "uniwasm-node-"));
}

export async function testNode(opts: Partial<NodeOptions> = {}): Promise<RunningNode & { admin: string }> {
  const node = await startNode({ dataDir: opts.dataDir ?? tempDataDir(), apiPort: 0, gatewayPort: 0, logger: false, ...opts });
  const admin = node.bootstrap?.secret ?? "";
  return Object.assign(node, { admin });
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function call(base: string, method: string, path: string, token: string | undefined, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (token) (init.headers as Record<string, string>)["authorization"] = `Bearer ${token}`;
  if (body instanceof Uint8Array) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Creates a tenant and returns its name and first token. */
export async function tenant(node: RunningNode & { admin: string }, name: string, quotas?: Record<string, number>): Promise<{ name: string; token: string }> {
  const r = await call(node.apiUrl, "POST", "/v1/tenants", node.admin, { name, ...(quotas ? { quotas } : {}) });
  if (r.status !== 201) throw new Error(`tenant create: ${r.status} ${r.text}`);
  return { name, token: r.json.token.secret };
}

/** Uploads a fixture and deploys it as `app` (with `deployToken`, e.g. an admin's, when given); returns the deploy reply. */
export async function deploy(node: RunningNode, t: { name: string; token: string }, app: string, fixture: string, extra: Record<string, unknown> = {}, deployToken?: string): Promise<Reply> {
  const up = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images?name=${app}`, t.token, wasm(fixture), { "content-type": "application/wasm" });
  if (up.status !== 201) throw new Error(`upload: ${up.status} ${up.text}`);
  return call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/${app}`, deployToken ?? t.token, { image: up.json.digest, ...extra });
}

export interface GwReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** true when the server reset the connection mid-response */
  aborted: boolean;
}

/** A gateway request to `<app>.<tenant>.localhost` (node:http, since fetch may not set Host). */
export function gw(node: RunningNode, tenantName: string, app: string, path: string, opts: { method?: string; body?: string | Uint8Array; headers?: Record<string, string> } = {}): Promise<GwReply> {
  const url = new URL(node.gatewayUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, method: opts.method ?? "GET", headers: { host: `${app}.${tenantName}.localhost`, ...(opts.headers ?? {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        let aborted = false;
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("aborted", () => (aborted = true));
        res.on("error", () => (aborted = true));
        res.on("close", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString(), aborted: aborted || !res.complete }));
      },
    );
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/**
 * A small authoritative DNS server over UDP on 127.0.0.1 (RFC 1035): it
 * answers TXT queries from `txt` (name -> strings) and NXDOMAIN for anything
 * else. For testing domain verification against a real resolver.
 */
export async function dnsServer(txt: Map<string, string[]>): Promise<{ address: string; close(): Promise<void> }> {
  const { createSocket } = await import("node:dgram");
  const socket = createSocket("udp4");
  socket.on("message", (q, peer) => {
    if (q.length < 12) return;
    let pos = 12;
    const labels: string[] = [];
    while (pos < q.length && q[pos]! > 0) {
      labels.push(q.subarray(pos + 1, pos + 1 + q[pos]!).toString("latin1"));
      pos += 1 + q[pos]!;
    }
    const question = q.subarray(12, pos + 5); // name, its final zero, type and class
    const type = q.readUInt16BE(pos + 1);
    const values = type === 16 ? txt.get(labels.join(".").toLowerCase()) : undefined;
    const answers = (values ?? []).map((v) => {
      const data = Buffer.from(v, "utf8");
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      rr.writeUInt16BE(16, 2); // TXT
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(0, 6); // TTL
      rr.writeUInt16BE(data.length + 1, 10);
      return Buffer.concat([rr, Buffer.from([data.length]), data]);
    });
    const header = Buffer.alloc(12);
    header.writeUInt16BE(q.readUInt16BE(0), 0);
    header.writeUInt16BE(0x8400 | (values ? 0 : 3), 2); // response, authoritative; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    socket.send(Buffer.concat([header, question, ...answers]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  return { address: `127.0.0.1:${socket.address().port}`, close: () => new Promise((resolve) => socket.close(() => resolve())) };
}
