/**
 * A uniwasm node for the gateway benchmark, run as its own process so that it
 * can be pinned to the same cores as the servers it is compared with.
 *
 *   node dist/bench/servers/uniwasm-node.js '{"executors":1}'
 *
 * Starts a node (fresh data dir), creates tenants "hello", "a", "b" and
 * deploys: wagi.hello and reactor.hello (the hello apps), light.a (WAGI hello)
 * and heavy.b (the CPU-bound WAGI handler, for the fairness case). Prints one
 * JSON line { gateway, api, pid } when it serves, and stops when stdin closes.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { startNode, type NodeOptions, type RunningNode } from "../../src/server/node.js";
import type { Tier } from "../../src/limits.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export interface BenchNodeOptions {
  executors?: number;
  inProcess?: boolean;
  /** The node's inline fuel budget (serve --inline-fuel); 0: every guest on executors. Default: the node's. */
  inlineFuel?: number;
  /** Gateway serving threads (serve --serving-threads). Default 1. */
  servingThreads?: number;
  /** The repository whose test/fixtures are deployed (default: the one this file was built from). */
  root?: string;
  /** The apps' tier (limits.tier): their executors are sandboxed processes of that tier (tiers.bench.ts). Default isolate. */
  tier?: Tier;
}

async function api(node: RunningNode, method: string, path: string, token: string, body?: unknown, type = "application/json") {
  const res = await fetch(node.apiUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": type },
    ...(body !== undefined ? { body: body instanceof Uint8Array ? body : JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function deploy(node: RunningNode, root: string, tenant: string, token: string, app: string, file: string, abi: string, tier?: Tier): Promise<void> {
  const bytes = new Uint8Array(readFileSync(join(root, "test", "fixtures", file)));
  const img = await api(node, "POST", `/v1/tenants/${tenant}/images?name=${app}`, token, bytes, "application/wasm");
  await api(node, "PUT", `/v1/tenants/${tenant}/apps/${app}`, token, { image: img.digest, abi, scale: { minInstances: 2, maxInstances: 4, idleTimeoutMs: 600_000 }, limits: { timeoutMs: 30_000, ...(tier ? { tier } : {}) } });
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? "{}") as BenchNodeOptions;
  const dataDir = mkdtempSync(join(tmpdir(), "uniwasm-bench-node-"));
  const opts: NodeOptions = {
    dataDir,
    apiPort: 0,
    gatewayPort: 0,
    logger: false,
    defaultQuotas: { requestsPerSecond: 10_000_000, cpuMsPerMinute: 1_000_000_000, maxQueue: 10_000, maxConcurrency: 64 },
  };
  if (o.executors !== undefined) opts.executors = o.executors;
  if (o.inProcess) opts.inProcess = true;
  if (o.inlineFuel !== undefined) opts.inlineFuel = o.inlineFuel;
  if (o.servingThreads !== undefined) opts.servingThreads = o.servingThreads;
  const node = await startNode(opts);
  const root = o.root ?? ROOT;
  const admin = node.bootstrap!.secret;
  const tokens: Record<string, string> = {};
  for (const t of ["hello", "a", "b"]) tokens[t] = (await api(node, "POST", "/v1/tenants", admin, { name: t })).token.secret;
  await deploy(node, root, "hello", tokens["hello"]!, "wagi", "wagi/hello.wasm", "wagi", o.tier);
  await deploy(node, root, "hello", tokens["hello"]!, "reactor", "reactor/hello.wasm", "reactor", o.tier);
  await deploy(node, root, "a", tokens["a"]!, "light", "wagi/hello.wasm", "wagi");
  await deploy(node, root, "b", tokens["b"]!, "heavy", "wagi/handler.wasm", "wagi");
  process.stdout.write(JSON.stringify({ gateway: node.gatewayUrl, api: node.apiUrl, pid: process.pid, runner: node.manager.runner.name }) + "\n");
  const stop = async () => {
    await node.close();
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  };
  process.stdin.on("end", () => void stop());
  process.stdin.on("close", () => void stop());
  process.on("SIGTERM", () => void stop());
  process.stdin.resume();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`uniwasm-node: ${(err as Error).stack}\n`);
    process.exit(1);
  });
}
