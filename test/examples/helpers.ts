/**
 * Helpers for the scenario examples' end-to-end tests: images built from an
 * example's directory exactly as `uniwasm build` + `uniwasm save` do, uploaded
 * and deployed through a real node's API, and gateway requests by host name.
 */
import { spawn, spawnSync } from "node:child_process";
import { request, type Agent } from "node:http";
import { join } from "node:path";
import { ImageStore, buildImage, saveImagesToTar } from "../../src/image/index.js";
import type { RunningNode } from "../../src/server/index.js";
import { call, tempDataDir, type Reply } from "../server/helpers.js";

export const EXAMPLES = join(process.cwd(), "examples");

let images: ImageStore | undefined;

/** An example's image (`examples/<dir>`, its uniwasm.toml) as an OCI layout tarball. */
export async function imageTar(dir: string): Promise<Uint8Array> {
  images ??= new ImageStore(join(tempDataDir(), "images"));
  const built = await buildImage(images, { dir: join(EXAMPLES, dir) });
  return (await saveImagesToTar(images, [built.digest])).tar;
}

/** Uploads the image of `examples/<dir>` to tenant `t` and deploys it as `app` (with `extra` settings); throws unless both succeed. */
export async function ship(node: RunningNode, t: { name: string; token: string }, dir: string, app: string, extra: Record<string, unknown> = {}): Promise<Reply> {
  const up = await call(node.apiUrl, "POST", `/v1/tenants/${t.name}/images`, t.token, await imageTar(dir), { "content-type": "application/x-tar" });
  if (up.status !== 201) throw new Error(`upload ${dir}: ${up.status} ${up.text}`);
  const d = await call(node.apiUrl, "PUT", `/v1/tenants/${t.name}/apps/${app}`, t.token, { image: up.json.digest, ...extra });
  if (d.status !== 201 && d.status !== 200) throw new Error(`deploy ${app}: ${d.status} ${d.text}`);
  return d;
}

export interface HostReply {
  status: number;
  text: string;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
  ms: number;
}

/** One gateway request for `host` (node:http, a fresh connection unless `agent` is given), timed from send to the last byte. */
export function hostRequest(node: RunningNode, host: string, path: string, opts: { method?: string; body?: string | Uint8Array; agent?: Agent } = {}): Promise<HostReply> {
  const url = new URL(node.gatewayUrl);
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = request({ host: url.hostname, port: url.port, path, method: opts.method ?? (opts.body !== undefined ? "POST" : "GET"), headers: { host }, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, text: body.toString(), body, headers: res.headers, ms: performance.now() - start });
      });
    });
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Runs the CLI asynchronously (the node answering it may live in this process). */
export function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(process.cwd(), "bin", "uniwasm.js"), ...args], { env: { ...process.env, UNIWASM_CONFIG: join(tempDataDir(), "config.json"), ...env } });
    let out = "";
    let err = "";
    p.stdout.on("data", (c) => (out += c));
    p.stderr.on("data", (c) => (err += c));
    p.on("close", (code) => resolve({ code, out, err }));
  });
}

/** Nearest-rank percentile of `xs` (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Whether a command is on PATH (the demos need bash and curl). */
export function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** Runs `bash examples/<name>/demo.sh` to its end; resolves with its exit code and output. */
export function runDemo(name: string, timeoutMs = 380_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn("bash", [join(EXAMPLES, name, "demo.sh")], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => p.kill("SIGTERM"), timeoutMs);
    p.stdout.on("data", (c) => (out += c));
    p.stderr.on("data", (c) => (err += c));
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}
