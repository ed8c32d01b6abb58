/**
 * `uniwasm dev`: one app, served as a node serves it, rebuilt on every change.
 *
 * It starts a real node in-process (the same gateway, manager and executors
 * as `uniwasm serve`) on a throw-away data directory, creates a tenant for
 * the app, and deploys the app through the node's own API (in-process
 * requests, no tokens for the user to handle) with a catch-all route, so the
 * gateway answers `/` on 127.0.0.1:PORT whatever the Host. Each change under
 * the app's directory runs its build script again, builds the image, and
 * redeploys it (the node's zero-downtime update); a failed build keeps the last
 * good revision serving. Requests, guest stderr and traps are reported through
 * `onEvent`.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, watch, type FSWatcher } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ImageStore, buildImage, saveImagesToTar, parseManifest, ImageError, type Manifest } from "../image/index.js";
import { startNode, type RunningNode } from "./node.js";
import type { RequestFinished } from "./gateway.js";

export type DevEvent =
  | { kind: "build"; reason: string; command: string | undefined }
  | { kind: "build-output"; text: string }
  | { kind: "build-failed"; message: string }
  | { kind: "ready"; url: string; app: string; revision: number; buildMs: number; first: boolean }
  | { kind: "request"; request: RequestFinished }
  | { kind: "stderr"; line: string };

export interface DevOptions {
  /** The app's directory (uniwasm.toml, sources, build.sh). */
  dir: string;
  /** Gateway port on `host`; 0 picks a free one. Default 8080. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Executor threads. Default 2. */
  executors?: number;
  /** Quiet time after the last change before rebuilding, ms. Default 150. */
  debounceMs?: number;
  onEvent(e: DevEvent): void;
}

export class DevError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DevError";
  }
}

const TENANT = "dev";
const BUILD_SCRIPT = "build.sh";

/** Paths whose changes are the build's own output or tool noise, not edits. */
function ignored(rel: string, module: string): boolean {
  const parts = rel.split(/[\\/]/);
  const base = parts[parts.length - 1]!;
  return (
    rel === module ||
    parts.some((p) => p === "node_modules" || p === "target" || p === "build" || (p.startsWith(".") && p !== ".")) ||
    /\.(wasm|o|a|tar|swp|swx)$/.test(base) ||
    /\.tmp\w*$/.test(base) || // linkers write OUT.tmpXXXX, then rename it
    base.endsWith("~") ||
    base.startsWith(".#") ||
    /^\d+$/.test(base) // editors' atomic-save temp files (vim's 4913)
  );
}

/** App names on a node are stricter than image names: lower-case letters, digits and inner dashes. */
export function devAppName(imageName: string): string {
  const n = imageName.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40).replace(/-+$/, "");
  return n || "app";
}

export class DevServer {
  url = "";
  private node!: RunningNode;
  private admin = "";
  private readonly dir: string;
  private readonly work: string;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private building: Promise<void> | undefined;
  private again: string | undefined;
  private closed = false;
  private revision = 0;
  private appName = "";
  private moduleSource = "";
  private unsubscribe: (() => void) | undefined;

  private constructor(private readonly opts: DevOptions) {
    this.dir = resolve(opts.dir);
    this.work = mkdtempSync(join(tmpdir(), "uniwasm-dev-"));
  }

  /** Starts the node, builds and deploys once, then watches the directory. Throws DevError for what the user must fix first. */
  static async start(opts: DevOptions): Promise<DevServer> {
    const manifestPath = join(resolve(opts.dir), "uniwasm.toml");
    if (!existsSync(manifestPath)) throw new DevError(`no uniwasm.toml in ${resolve(opts.dir)}; create an app with \`uniwasm new NAME\``);
    let manifest: Manifest;
    try {
      manifest = parseManifest(readFileSync(manifestPath, "utf8"), manifestPath);
    } catch (err) {
      throw new DevError((err as Error).message);
    }
    const dev = new DevServer(opts);
    try {
      await dev.startNode(manifest);
    } catch (err) {
      await dev.close();
      const e = err as NodeJS.ErrnoException;
      if (e.code === "EADDRINUSE") throw new DevError(`port ${opts.port ?? 8080} is in use; pick another with --port N (0 picks a free one)`);
      throw err;
    }
    await dev.rebuild("start");
    dev.watch();
    return dev;
  }

  private async startNode(manifest: Manifest): Promise<void> {
    this.appName = devAppName(manifest.name);
    this.moduleSource = manifest.source;
    this.node = await startNode({
      dataDir: join(this.work, "node"),
      host: this.opts.host ?? "127.0.0.1",
      apiPort: 0,
      gatewayPort: this.opts.port ?? 8080,
      executors: this.opts.executors ?? 2,
      logger: false,
      onRequest: (request) => this.opts.onEvent({ kind: "request", request }),
    });
    this.admin = this.node.bootstrap!.secret;
    this.url = `${this.node.gatewayUrl}/`;
    await this.api("POST", "/v1/tenants", { name: TENANT });
    // Guest stderr, as the node logs it, line by line.
    this.unsubscribe = this.node.store.logs.subscribe((entries) => {
      for (const e of entries) if (e.stream === "stderr") this.opts.onEvent({ kind: "stderr", line: e.line });
    });
  }

  /** An in-process call to the node's API as its admin. */
  private async api(method: "POST" | "PUT", url: string, body: unknown, contentType?: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const payload = body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body);
    const res = await this.node.api.inject({ method, url, payload, headers: { authorization: `Bearer ${this.admin}`, "content-type": contentType ?? "application/json" } });
    const json = res.body ? JSON.parse(res.body) : undefined;
    if (res.statusCode >= 400) throw new DevError(json?.error?.message ?? `${method} ${url}: HTTP ${res.statusCode}`);
    return json;
  }

  /** Runs the build script (when there is one), then builds and deploys the image. Serialized: a change during a build runs one more. */
  rebuild(reason: string): Promise<void> {
    if (this.building) {
      this.again = reason;
      return this.building;
    }
    this.building = (async () => {
      let next: string | undefined = reason;
      while (next !== undefined && !this.closed) {
        this.again = undefined;
        await this.buildOnce(next);
        next = this.again;
      }
    })().finally(() => (this.building = undefined));
    return this.building;
  }

  private async buildOnce(reason: string): Promise<void> {
    const started = performance.now();
    const script = existsSync(join(this.dir, BUILD_SCRIPT)) ? BUILD_SCRIPT : undefined;
    this.opts.onEvent({ kind: "build", reason, command: script ? `sh ${script}` : undefined });
    if (script) {
      const code = await this.runScript(script);
      if (code !== 0) {
        this.opts.onEvent({ kind: "build-failed", message: `sh ${script} exited with ${code}${this.revision ? `; still serving revision ${this.revision}` : ""}` });
        return;
      }
    }
    try {
      const store = new ImageStore(join(this.work, "images"));
      const built = await buildImage(store, { dir: this.dir });
      for (const w of built.warnings) this.opts.onEvent({ kind: "build-output", text: `warning: ${w}\n` });
      const { tar } = await saveImagesToTar(store, [built.digest]);
      const up = await this.api("POST", `/v1/tenants/${TENANT}/images`, tar, "application/x-tar");
      const routes = (up.config?.routes ?? []) as { host: string; path: string }[];
      if (!routes.some((r) => r.host === "*" && r.path === "/")) routes.push({ host: "*", path: "/" });
      const app = await this.api("PUT", `/v1/tenants/${TENANT}/apps/${this.appName}`, { image: up.digest, routes });
      const first = this.revision === 0;
      this.revision = app.revision;
      this.moduleSource = built.manifest.source;
      this.opts.onEvent({ kind: "ready", url: this.url, app: this.appName, revision: app.revision, buildMs: performance.now() - started, first });
    } catch (err) {
      if (err instanceof ImageError || err instanceof DevError) {
        this.opts.onEvent({ kind: "build-failed", message: `${err.message}${this.revision ? `; still serving revision ${this.revision}` : ""}` });
        return;
      }
      throw err;
    }
  }

  private runScript(script: string): Promise<number> {
    return new Promise((resolve) => {
      const child = spawn("sh", [script], { cwd: this.dir, stdio: ["ignore", "pipe", "pipe"] });
      const forward = (d: Buffer) => this.opts.onEvent({ kind: "build-output", text: d.toString() });
      child.stdout.on("data", forward);
      child.stderr.on("data", forward);
      child.on("error", (err) => {
        forward(Buffer.from(`${err.message}\n`));
        resolve(127);
      });
      child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
  }

  private watch(): void {
    this.watcher = watch(this.dir, { recursive: true }, (_event, filename) => {
      const rel = filename ? filename.toString() : "";
      if (!rel || ignored(rel, this.moduleSource)) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.rebuild(`${rel} changed`), this.opts.debounceMs ?? 150);
    });
  }

  /** Module bytes of the app as built last (for source lines of a trap). */
  moduleBytes(): Uint8Array | undefined {
    const p = join(this.dir, this.moduleSource);
    return existsSync(p) ? new Uint8Array(readFileSync(p)) : undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.close();
    clearTimeout(this.timer);
    await this.building?.catch(() => {});
    this.unsubscribe?.();
    await this.node?.close();
    rmSync(this.work, { recursive: true, force: true });
  }
}
