/**
 * workerd (Cloudflare's Workers runtime) as a baseline for the gateway
 * benchmark. It is not a dependency of uniwasm: the benchmark fetches the npm
 * package `workerd` (which ships the binary) on first use into a cache folder,
 * $UNIWASM_BENCH_CACHE or ~/.cache/uniwasm-bench, with npm itself.
 *
 * One workerd process serves one worker with the same two C guests uniwasm
 * serves (test/fixtures/reactor/hello.wasm and wagi/hello.wasm), through a
 * minimal WASI host written in the worker (only the four calls the guests
 * import: fd_write to capture stdout, fd_fdstat_get, fd_seek, fd_close):
 *   /reactor  a wasm export call per request: one instance made at start-up,
 *             the request encoded as uniwasm's reactor ABI (CGI variables +
 *             body), uniwasm_http_handle called, stdout's CGI head parsed;
 *   /wagi     a fresh wasm instance per request (new WebAssembly.Instance of
 *             the precompiled module), `_start`, stdout's CGI head parsed.
 * So both runtimes do the same work per request, with workerd's host the
 * smaller of the two (no capability checks, no limits, no accounting).
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export const WORKERD_VERSION = "1.20261117.1";

export function cacheDir(): string {
  return process.env["UNIWASM_BENCH_CACHE"] ?? join(homedir(), ".cache", "uniwasm-bench");
}

/** The workerd binary, installed into the cache with npm on first use; undefined (with why) when that fails. */
export function ensureWorkerd(log: (line: string) => void): { bin?: string; why?: string } {
  const dir = cacheDir();
  const candidates = [join(dir, "node_modules", "@cloudflare", `workerd-${process.platform}-${process.arch === "x64" ? "64" : process.arch}`, "bin", "workerd"), join(dir, "node_modules", "workerd", "bin", "workerd")];
  const found = () => candidates.find((c) => existsSync(c) && spawnSync(c, ["--version"]).status === 0);
  let bin = found();
  if (bin) return { bin };
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, "package.json"))) writeFileSync(join(dir, "package.json"), '{ "private": true }\n');
  log(`fetching workerd@${WORKERD_VERSION} into ${dir} (first run only)`);
  const npm = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--no-save", `workerd@${WORKERD_VERSION}`], { cwd: dir, encoding: "utf8", timeout: 300_000 });
  bin = found();
  if (bin) return { bin };
  return { why: `npm could not install workerd@${WORKERD_VERSION} into ${dir}: ${(npm.stderr || npm.error?.message || "").trim().split("\n").slice(-2).join(" ")}` };
}

const WORKER_JS = `
import reactorModule from "./reactor.wasm";
import wagiModule from "./wagi.wasm";

class Exit { constructor(code) { this.code = code; } }

// The WASI calls the two guests import, and nothing else.
function host(state) {
  return {
    wasi_snapshot_preview1: {
      fd_write(fd, iovs, n, nwritten) {
        const buf = state.memory.buffer;
        const dv = new DataView(buf);
        let total = 0;
        for (let i = 0; i < n; i++) {
          const p = dv.getUint32(iovs + 8 * i, true), len = dv.getUint32(iovs + 8 * i + 4, true);
          if (fd === 1 && len > 0) state.out.push(new Uint8Array(buf.slice(p, p + len)));
          total += len;
        }
        dv.setUint32(nwritten, total, true);
        return 0;
      },
      fd_fdstat_get(fd, p) {
        const dv = new DataView(state.memory.buffer);
        for (let i = 0; i < 24; i += 4) dv.setUint32(p + i, 0, true);
        dv.setUint8(p, 2); // character device
        return 0;
      },
      fd_seek() { return 70; }, // ESPIPE
      fd_close() { return 0; },
      proc_exit(code) { throw new Exit(code); },
    },
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

// The CGI variables a request carries (as uniwasm's gateway sets them).
function cgi(request, url) {
  let meta = "REQUEST_METHOD=" + request.method + "\\0PATH_INFO=" + url.pathname + "\\0QUERY_STRING=" + url.search.slice(1) +
    "\\0SERVER_NAME=" + url.hostname + "\\0SERVER_PROTOCOL=HTTP/1.1\\0GATEWAY_INTERFACE=CGI/1.1\\0";
  for (const [k, v] of request.headers) meta += "HTTP_" + k.toUpperCase().replaceAll("-", "_") + "=" + v + "\\0";
  return meta;
}

// stdout in CGI form: header lines, an empty line, the body.
function respond(out) {
  const all = out.length === 1 ? out[0] : concat(out);
  let end = -1;
  for (let i = 0; i + 1 < all.length; i++) if (all[i] === 10 && all[i + 1] === 10) { end = i; break; }
  if (end < 0) return new Response("bad gateway", { status: 502 });
  const headers = new Headers();
  for (const line of dec.decode(all.subarray(0, end)).split("\\n")) {
    const c = line.indexOf(":");
    if (c > 0) headers.append(line.slice(0, c).trim(), line.slice(c + 1).trim());
  }
  return new Response(all.subarray(end + 2), { status: 200, headers });
}

function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const all = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { all.set(p, o); o += p.length; }
  return all;
}

const warm = { memory: null, out: [] };
const reactor = new WebAssembly.Instance(reactorModule, host(warm));
warm.memory = reactor.exports.memory;
if (reactor.exports._initialize) reactor.exports._initialize();

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/reactor")) {
      const meta = enc.encode(cgi(request, url));
      const body = new Uint8Array(await request.arrayBuffer());
      const len = 4 + meta.length + body.length;
      const ptr = reactor.exports.uniwasm_alloc(len) >>> 0;
      const mem = new Uint8Array(warm.memory.buffer);
      new DataView(warm.memory.buffer).setUint32(ptr, meta.length, true);
      mem.set(meta, ptr + 4);
      mem.set(body, ptr + 4 + meta.length);
      warm.out = [];
      const status = reactor.exports.uniwasm_http_handle(ptr, len);
      reactor.exports.uniwasm_free(ptr);
      if (status !== 0) return new Response("bad gateway", { status: 502 });
      return respond(warm.out);
    }
    const state = { memory: null, out: [] };
    const instance = new WebAssembly.Instance(wagiModule, host(state));
    state.memory = instance.exports.memory;
    try {
      instance.exports._start();
    } catch (e) {
      if (!(e instanceof Exit) || e.code !== 0) return new Response("bad gateway", { status: 502 });
    }
    return respond(state.out);
  },
};
`;

/** Writes the worker, the two guests and a config listening on 127.0.0.1:`port` into `dir`; returns the config path. */
export function writeWorkerdConfig(dir: string, root: string, port: number): string {
  copyFileSync(join(root, "test", "fixtures", "reactor", "hello.wasm"), join(dir, "reactor.wasm"));
  copyFileSync(join(root, "test", "fixtures", "wagi", "hello.wasm"), join(dir, "wagi.wasm"));
  writeFileSync(join(dir, "worker.mjs"), WORKER_JS);
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [ (name = "main", worker = .hello) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const hello :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "worker.mjs"),
    (name = "reactor.wasm", wasm = embed "reactor.wasm"),
    (name = "wagi.wasm", wasm = embed "wagi.wasm"),
  ],
  compatibilityDate = "2024-09-23",
);
`;
  const file = join(dir, "config.capnp");
  writeFileSync(file, config);
  return file;
}
