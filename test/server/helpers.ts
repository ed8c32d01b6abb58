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

/** Uploads a fixture and deploys it as `app`; returns the deploy reply. */
export async function deploy(node: RunningNode, t: { name: string; token: string }, app: string, fixture: string, extra: Record<string, unknown> = {}): Promise<Reply> {
  const up = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images?name=${app}`, t.token, wasm(fixture), { "content-type": "application/wasm" });
  if (up.status !== 201) throw new Error(`upload: ${up.status} ${up.text}`);
  return call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/${app}`, t.token, { image: up.json.digest, ...extra });
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
