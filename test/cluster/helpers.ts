/**
 * Cluster nodes as child processes (`uniwasm serve --cluster ...`), as an
 * operator runs them: each with its own data dir and ports, all on one
 * nats-server. A node can be stopped cleanly, killed with SIGKILL, and
 * started again with the same name and data.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "node:http";
import type { NatsHandle } from "./nats.js";

const BIN = join(process.cwd(), "bin", "uniwasm.js");

export interface ClusterNode {
  name: string;
  dataDir: string;
  apiUrl: string;
  gatewayUrl: string;
  /** The admin token, when this node created the cluster's first one. */
  bootstrap?: string;
  proc: ChildProcess;
  /** stderr so far (JSON logs), for diagnosing a failure. */
  log(): string;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export interface NodeSpawnOptions {
  zone?: string;
  memoryMiB?: number;
  dataDir?: string;
  extraArgs?: string[];
  /** Flags for node itself (e.g. --cpu-prof), before the script. */
  nodeArgs?: string[];
}

export async function startClusterNode(nats: NatsHandle, name: string, o: NodeSpawnOptions = {}): Promise<ClusterNode> {
  const dataDir = o.dataDir ?? mkdtempSync(join(tmpdir(), `uniwasm-${name}-`));
  const pw = join(mkdtempSync(join(tmpdir(), "uniwasm-secret-")), "nats-password");
  writeFileSync(pw, nats.password, { mode: 0o600 });
  const args = [
    ...(o.nodeArgs ?? []),
    BIN,
    "serve",
    "--data",
    dataDir,
    "--port",
    "0",
    "--gateway-port",
    "0",
    "--executors",
    "1",
    "--memory-mib",
    String(o.memoryMiB ?? 1024),
    "--log-level",
    "info",
    "--cluster",
    nats.url,
    "--node-name",
    name,
    "--nats-user",
    nats.user,
    "--nats-password-file",
    pw,
    ...(o.zone ? ["--zone", o.zone] : []),
    ...(o.extraArgs ?? []),
  ];
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
  const ready = await new Promise<{ apiUrl: string; gatewayUrl: string; bootstrap?: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${name} did not start in 60 s:\n${out}\n${err.slice(-4000)}`)), 60_000);
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const api = /API\s+(http:\/\/\S+)/.exec(out);
      const gw = /gateway\s+(http:\/\/\S+)/.exec(out);
      const done = /Admin token:|First start: an admin token was created/.test(out);
      if (!api || !gw || !done) return;
      const first = /First start[^\n]*\n\n\s+(uw_\S+)/.exec(out);
      if (/First start/.test(out) && !first) return; // the token line is still coming
      clearTimeout(timer);
      resolve({ apiUrl: api[1]!, gatewayUrl: gw[1]!, ...(first ? { bootstrap: first[1]! } : {}) });
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`node ${name} exited with ${code}:\n${out}\n${err.slice(-4000)}`));
    });
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  return {
    name,
    dataDir,
    ...ready,
    proc,
    log: () => err,
    kill: async () => {
      proc.kill("SIGKILL");
      await exited;
    },
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      await exited;
    },
  };
}

export interface Reply {
  status: number;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTP request with node:http (fetch cannot set Host); a fresh connection each time. */
export function http(base: string, method: string, path: string, opts: { token?: string; body?: unknown; host?: string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<Reply> {
  const url = new URL(base);
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let data: Buffer | undefined;
  if (opts.body instanceof Uint8Array) data = Buffer.from(opts.body);
  else if (typeof opts.body === "string") data = Buffer.from(opts.body);
  else if (opts.body !== undefined) {
    data = Buffer.from(JSON.stringify(opts.body));
    headers["content-type"] ??= "application/json";
  }
  if (data) headers["content-length"] = String(data.length);
  if (opts.token) headers["authorization"] = `Bearer ${opts.token}`;
  if (opts.host) headers["host"] = opts.host;
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method, headers, agent: false, timeout: opts.timeoutMs ?? 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json, headers: res.headers });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on("error", reject);
    req.end(data);
  });
}

export async function waitUntil(what: string, cond: () => Promise<boolean> | boolean, ms = 30_000, every = 100): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await cond()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
