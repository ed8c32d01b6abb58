/**
 * `uniwasm.toml`: the image manifest.
 *
 * The manifest says what a module is (name, version, entry kind) and, more
 * importantly, everything it may touch: it is the image's complete list of
 * grants. It is versioned (`manifest_version = 1`), strict (an unknown field
 * is an error, never ignored: a typo must not silently drop a limit) and
 * bounded (every list and string has a cap, so a manifest cannot be used to
 * exhaust the host). Field names follow Spin's where the idea is the same
 * (`source`, `environment`, `allowed_outbound_hosts`, `files`,
 * `[[trigger.http]] route`).
 *
 * ```toml
 * manifest_version = 1
 *
 * [application]
 * name = "hello"              # [a-z0-9][a-z0-9._-]*, at most 64 characters
 * version = "1.0.0"           # at most 64 characters, [A-Za-z0-9._+-]
 * description = "Says hello"  # optional, at most 1024 characters
 * authors = ["Ada <ada@example.com>"]
 *
 * [module]
 * source = "hello.wasm"       # relative to the manifest's directory
 * entry = "command"           # "command" (_start) or "reactor" (exports called on a warm instance)
 * # exports = ["handle"]      # reactor only: the functions the host may call
 *
 * [capabilities]
 * args = ["--loud"]           # argv after argv[0] (which is the image name)
 * environment = { GREETING = "hi" }
 * clocks = false              # clock_* calls (default false: deny by default)
 * random = false              # random_get (default false)
 * allowed_outbound_hosts = ["https://api.example.com"]  # uniwasm:http destinations
 * listen = ["127.0.0.1:8080"] # listening TCP sockets, preopened after the dirs
 * extensions = ["uniwasm:kv"] # host extension import modules the module may link
 * key_value_stores = ["team"] # uniwasm:kv stores shared by the tenant's apps granted the name
 * allowed_services = ["billing"] # uniwasm:service: apps of the same tenant it may call
 * variables = ["api_url"]     # uniwasm:variables: names it may read (values are set per app)
 *
 * [[capabilities.dirs]]       # a preopened directory; exactly one of files / host
 * guest = "/static"
 * files = "static"            # bundled into the image, served from memory
 * mode = "ro"                 # "ro" (default) or "rw" (a private copy per instance)
 *
 * [[capabilities.dirs]]
 * guest = "/data"
 * host = "/var/lib/hello"     # an absolute host path, granted at run time
 * mode = "rw"
 *
 * [limits]                    # sizes: bytes or "64K"/"16MiB"/"1G" (binary: "16MB" is 16 MiB); durations: ms or "250ms"/"5s"/"2m"/"1h"
 * memory = "64MiB"
 * fuel = 1_000_000_000
 * timeout = "5s"
 * stdout = "1MiB"
 * stderr = "1MiB"
 * open_files = 64
 * tier = "process"            # the wall around its executor: "isolate" (default), "process" or "gvisor"
 *
 * [[trigger.http]]
 * route = "/hello"            # a path prefix; Spin's trailing "/..." is accepted
 * host = "hello.example.com"  # optional
 * abi = "wagi"                # "wagi" (command) or "reactor" (needs handler)
 * # handler = "handle"        # reactor: one of module.exports
 * ```
 */
import { parse, TomlError } from "smol-toml";
import { ManifestError, type ManifestProblem } from "./errors.js";
import { KeyLines } from "./manifest-lines.js";
import { parseDuration, parseSize } from "../units.js";
import { isTier, LIMIT_FIELDS, TIERS, WRITTEN_RANGES as R, type Limits } from "../limits.js";

export const MANIFEST_FILE = "uniwasm.toml";
export const MANIFEST_VERSION = 1;

/** Every cap the schema enforces, in one place (documented in docs/manifest.md). */
export const MANIFEST_BOUNDS = {
  fileBytes: 64 * 1024,
  nameLength: 64,
  versionLength: 64,
  descriptionLength: 1024,
  authors: 16,
  stringLength: 4096,
  args: 256,
  envVars: 256,
  envValueLength: 32 * 1024,
  dirs: 32,
  guestPathLength: 1024,
  outboundHosts: 64,
  listen: 16,
  extensions: 32,
  keyValueStores: 32,
  allowedServices: 32,
  variables: 64,
  exports: 256,
  httpTriggers: 64,
} as const;

export type EntryKind = "command" | "reactor";
export type DirMode = "ro" | "rw";

/** A preopened directory: image files served from memory, or a host directory. */
export type DirGrant =
  | { guest: string; mode: DirMode; files: string; host?: undefined }
  | { guest: string; mode: DirMode; host: string; files?: undefined };

export interface HttpTrigger {
  /** Path prefix, always starting with `/`, without Spin's trailing `/...`. */
  route: string;
  host?: string;
  abi: "wagi" | "reactor";
  /** Reactor ABI: the exported function called per request. */
  handler?: string;
}

export interface ManifestCapabilities {
  args: string[];
  env: Record<string, string>;
  dirs: DirGrant[];
  clocks: boolean;
  random: boolean;
  allowedOutboundHosts: string[];
  listen: string[];
  extensions: string[];
  keyValueStores: string[];
  allowedServices: string[];
  variables: string[];
}

/** A validated `uniwasm.toml`. */
export interface Manifest {
  manifestVersion: 1;
  name: string;
  version: string;
  description?: string;
  authors: string[];
  /** Module path relative to the manifest directory (at build time). */
  source: string;
  entry: EntryKind;
  /** Reactor only: the functions the host may call. Empty for commands. */
  exports: string[];
  capabilities: ManifestCapabilities;
  /** `[limits]` in the one limits vocabulary (src/limits.ts); unset ones are left to whoever runs the image. */
  limits: Limits;
  triggers: { http: HttpTrigger[] };
}

type Table = Record<string, unknown>;

/**
 * Parses and validates manifest text. `file` is used in messages only. Throws
 * `ManifestError` listing every problem, each with line and field.
 */
export function parseManifest(text: string, file = MANIFEST_FILE): Manifest {
  if (Buffer.byteLength(text) > MANIFEST_BOUNDS.fileBytes) {
    throw new ManifestError(file, [{ field: "", message: `the file is ${Buffer.byteLength(text)} bytes; a manifest may be at most ${MANIFEST_BOUNDS.fileBytes} bytes` }]);
  }
  let doc: Table;
  try {
    doc = parse(text) as Table;
  } catch (err) {
    if (err instanceof TomlError) {
      const first = err.message.split("\n")[0]!.replace(/^Invalid TOML document: /, "");
      throw new ManifestError(file, [{ line: err.line, column: err.column, field: "", message: `TOML syntax error: ${first}` }]);
    }
    throw err;
  }
  const v = new Validator(new KeyLines(text));
  const m = v.manifest(doc);
  if (v.problems.length > 0) throw new ManifestError(file, v.problems);
  return m!;
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const EXPORT_RE = /^[A-Za-z_$][A-Za-z0-9_$.-]*$/;
/** An extension grant: an import module name ("uniwasm:kv", "env"), optionally "/capability". */
export const EXTENSION_RE = /^[a-z][a-z0-9_-]*(:[a-z][a-z0-9_/-]*)?$/;
/** A uniwasm:kv shared store name. */
export const KV_STORE_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** An app name (a uniwasm:service callee), as the node's API accepts it. */
export const SERVICE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/;
/** A uniwasm:variables name. */
export const VARIABLE_RE = /^[a-z][a-z0-9_]{0,63}$/;
const HOST_RE = /^(\*|[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

class Validator {
  readonly problems: ManifestProblem[] = [];
  constructor(private readonly lines: KeyLines) {}

  problem(field: string, message: string): undefined {
    const line = this.lines.lineOf(field);
    this.problems.push(line === undefined ? { field, message } : { line, field, message });
    return undefined;
  }

  /** Reports keys of `t` that the schema does not define. */
  known(t: Table, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(t)) {
      if (!allowed.includes(k)) {
        const field = path ? `${path}.${k}` : k;
        this.problem(field, `unknown field; allowed here: ${allowed.join(", ")}`);
      }
    }
  }

  table(v: unknown, field: string, required: boolean): Table | undefined {
    if (v === undefined) {
      if (required) this.problem(field, `missing table [${field}]`);
      return undefined;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Date) {
      return this.problem(field, `expected a table, got ${describe(v)}`);
    }
    return v as Table;
  }

  string(v: unknown, field: string, opts: { required?: boolean; max?: number; re?: RegExp; what?: string } = {}): string | undefined {
    if (v === undefined) {
      if (opts.required) this.problem(field, `missing; expected ${opts.what ?? "a string"}`);
      return undefined;
    }
    if (typeof v !== "string") return this.problem(field, `expected ${opts.what ?? "a string"}, got ${describe(v)}`);
    const max = opts.max ?? MANIFEST_BOUNDS.stringLength;
    if (v.length > max) return this.problem(field, `is ${v.length} characters; at most ${max} allowed`);
    if (v.includes("\0")) return this.problem(field, "must not contain NUL characters");
    if (opts.re && !opts.re.test(v)) return this.problem(field, `${JSON.stringify(v)} is not allowed; expected ${opts.what ?? opts.re.source}`);
    return v;
  }

  bool(v: unknown, field: string, dflt: boolean): boolean {
    if (v === undefined) return dflt;
    if (typeof v !== "boolean") {
      this.problem(field, `expected true or false, got ${describe(v)}`);
      return dflt;
    }
    return v;
  }

  oneOf<T extends string>(v: unknown, field: string, allowed: readonly T[], dflt?: T): T | undefined {
    if (v === undefined) {
      if (dflt === undefined) this.problem(field, `missing; expected one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
      return dflt;
    }
    if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
      return this.problem(field, `${typeof v === "string" ? JSON.stringify(v) : describe(v)} is not allowed; expected ${allowed.map((a) => JSON.stringify(a)).join(" or ")}`);
    }
    return v as T;
  }

  list<T>(v: unknown, field: string, max: number, item: (x: unknown, f: string) => T | undefined): T[] {
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      this.problem(field, `expected an array, got ${describe(v)}`);
      return [];
    }
    if (v.length > max) {
      this.problem(field, `has ${v.length} entries; at most ${max} allowed`);
      return [];
    }
    const out: T[] = [];
    v.forEach((x, i) => {
      const r = item(x, `${field}[${i}]`);
      if (r !== undefined) out.push(r);
    });
    return out;
  }

  uniqueStrings(v: unknown, field: string, max: number, opts: { re?: RegExp; what?: string; maxLen?: number } = {}): string[] {
    const out = this.list(v, field, max, (x, f) => this.string(x, f, { required: true, re: opts.re, what: opts.what, max: opts.maxLen }));
    const seen = new Set<string>();
    out.forEach((s) => {
      if (seen.has(s)) this.problem(field, `${JSON.stringify(s)} is listed twice`);
      seen.add(s);
    });
    return out;
  }

  manifest(doc: Table): Manifest | undefined {
    this.known(doc, "", ["manifest_version", "application", "module", "capabilities", "limits", "trigger"]);
    const mv = doc.manifest_version;
    if (mv === undefined) this.problem("manifest_version", `missing; add \`manifest_version = ${MANIFEST_VERSION}\` at the top`);
    else if (typeof mv !== "number" || !Number.isInteger(mv) || mv < 1) this.problem("manifest_version", `expected the integer ${MANIFEST_VERSION}, got ${describe(mv)}`);
    else if (mv !== MANIFEST_VERSION) this.problem("manifest_version", `version ${mv} is not supported; this uniwasm reads manifest_version = ${MANIFEST_VERSION}`);

    const app = this.table(doc.application, "application", true) ?? {};
    this.known(app, "application", ["name", "version", "description", "authors"]);
    const name = this.string(app.name, "application.name", { required: true, max: MANIFEST_BOUNDS.nameLength, re: NAME_RE, what: "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit" });
    const version = this.string(app.version, "application.version", { max: MANIFEST_BOUNDS.versionLength, re: VERSION_RE, what: "letters, digits, '.', '_', '+' or '-' (e.g. \"1.2.0\")" }) ?? "0.0.0";
    const description = this.string(app.description, "application.description", { max: MANIFEST_BOUNDS.descriptionLength });
    const authors = this.uniqueStrings(app.authors, "application.authors", MANIFEST_BOUNDS.authors, { maxLen: 256 });

    const mod = this.table(doc.module, "module", true) ?? {};
    this.known(mod, "module", ["source", "entry", "exports"]);
    const source = this.relativePath(mod.source, "module.source", true);
    const entry = this.oneOf(mod.entry, "module.entry", ["command", "reactor"] as const, "command");
    let exports: string[] = [];
    if (entry === "command" && mod.exports !== undefined) {
      this.problem("module.exports", "only a reactor lists exports; a command is entered through _start (set entry = \"reactor\" or remove exports)");
    } else if (entry === "reactor") {
      exports = this.uniqueStrings(mod.exports, "module.exports", MANIFEST_BOUNDS.exports, { re: EXPORT_RE, what: "an export name", maxLen: 256 });
      if (mod.exports === undefined || (Array.isArray(mod.exports) && mod.exports.length === 0)) {
        this.problem("module.exports", "a reactor must list at least one exported function the host may call");
      }
    }

    const capabilities = this.capabilities(this.table(doc.capabilities, "capabilities", false) ?? {});
    const limits = this.limits(this.table(doc.limits, "limits", false) ?? {}, capabilities);
    const trigger = this.table(doc.trigger, "trigger", false) ?? {};
    this.known(trigger, "trigger", ["http"]);
    const http = this.list(trigger.http, "trigger.http", MANIFEST_BOUNDS.httpTriggers, (x, f) => this.httpTrigger(x, f, entry, exports));
    const routes = new Set<string>();
    http.forEach((t, i) => {
      const key = `${t.host ?? "*"} ${t.route}`;
      if (routes.has(key)) this.problem(`trigger.http[${i}].route`, `route ${t.route}${t.host ? ` on host ${t.host}` : ""} is declared twice`);
      routes.add(key);
    });

    if (name === undefined || source === undefined || entry === undefined) return undefined;
    const m: Manifest = {
      manifestVersion: 1,
      name,
      version,
      authors,
      source,
      entry,
      exports,
      capabilities,
      limits,
      triggers: { http },
    };
    if (description !== undefined) m.description = description;
    return m;
  }

  /** A path inside the build directory: relative, `/`-separated, no `..`. */
  relativePath(v: unknown, field: string, required: boolean): string | undefined {
    const s = this.string(v, field, { required, what: "a path relative to the manifest's directory" });
    if (s === undefined) return undefined;
    if (s.startsWith("/") || /^[A-Za-z]:/.test(s) || s.includes("\\")) return this.problem(field, `${JSON.stringify(s)} must be a relative path using '/' (relative to the manifest's directory)`);
    const segs = s.split("/").filter((x) => x !== "" && x !== ".");
    if (segs.includes("..")) return this.problem(field, `${JSON.stringify(s)} must not contain '..': an image only bundles files under its build directory`);
    return segs.length === 0 ? "." : segs.join("/");
  }

  capabilities(c: Table): ManifestCapabilities {
    this.known(c, "capabilities", ["args", "environment", "clocks", "random", "allowed_outbound_hosts", "listen", "extensions", "key_value_stores", "allowed_services", "variables", "dirs"]);
    const args = this.list(c.args, "capabilities.args", MANIFEST_BOUNDS.args, (x, f) => this.string(x, f, { required: true }));
    const env: Record<string, string> = {};
    const envT = this.table(c.environment, "capabilities.environment", false);
    if (envT) {
      const keys = Object.keys(envT);
      if (keys.length > MANIFEST_BOUNDS.envVars) this.problem("capabilities.environment", `has ${keys.length} variables; at most ${MANIFEST_BOUNDS.envVars} allowed`);
      else {
        for (const k of keys) {
          const f = `capabilities.environment.${k}`;
          if (!ENV_NAME_RE.test(k) || k.length > 256) {
            this.problem(f, "variable names are letters, digits and '_', not starting with a digit");
            continue;
          }
          const val = this.string(envT[k], f, { required: true, max: MANIFEST_BOUNDS.envValueLength, what: "a string value" });
          if (val !== undefined) env[k] = val;
        }
      }
    }
    const clocks = this.bool(c.clocks, "capabilities.clocks", false);
    const random = this.bool(c.random, "capabilities.random", false);
    const allowedOutboundHosts = this.uniqueStrings(c.allowed_outbound_hosts, "capabilities.allowed_outbound_hosts", MANIFEST_BOUNDS.outboundHosts, { maxLen: 512 });
    allowedOutboundHosts.forEach((h, i) => {
      const p = outboundHostProblem(h);
      if (p) this.problem(`capabilities.allowed_outbound_hosts[${i}]`, p);
    });
    const listen = this.uniqueStrings(c.listen, "capabilities.listen", MANIFEST_BOUNDS.listen, { maxLen: 128 });
    listen.forEach((a, i) => {
      const p = listenAddressProblem(a);
      if (p) this.problem(`capabilities.listen[${i}]`, p);
    });
    const extensions = this.uniqueStrings(c.extensions, "capabilities.extensions", MANIFEST_BOUNDS.extensions, {
      re: EXTENSION_RE,
      what: "an import module name such as \"uniwasm:kv\"",
      maxLen: 128,
    });
    extensions.forEach((e, i) => {
      if (e === "wasi_snapshot_preview1" || e === "wasi_unstable") this.problem(`capabilities.extensions[${i}]`, "WASI is granted by the other capability fields, not as an extension");
    });
    const grantsOf = (ext: string): boolean => extensions.some((e) => e === ext || e.startsWith(`${ext}/`));
    const keyValueStores = this.uniqueStrings(c.key_value_stores, "capabilities.key_value_stores", MANIFEST_BOUNDS.keyValueStores, { re: KV_STORE_RE, what: "a store name ([a-z0-9][a-z0-9_-]*)", maxLen: 64 });
    if (keyValueStores.length > 0 && !grantsOf("uniwasm:kv")) this.problem("capabilities.key_value_stores", "shared stores need the kv extension: add \"uniwasm:kv\" to capabilities.extensions");
    const allowedServices = this.uniqueStrings(c.allowed_services, "capabilities.allowed_services", MANIFEST_BOUNDS.allowedServices, { re: SERVICE_NAME_RE, what: "an app name of the same tenant", maxLen: 40 });
    if (allowedServices.length > 0 && !grantsOf("uniwasm:service")) this.problem("capabilities.allowed_services", "service calls need the service extension: add \"uniwasm:service\" to capabilities.extensions");
    const variables = this.uniqueStrings(c.variables, "capabilities.variables", MANIFEST_BOUNDS.variables, { re: VARIABLE_RE, what: "a variable name ([a-z][a-z0-9_]*)", maxLen: 64 });
    if (variables.length > 0 && !grantsOf("uniwasm:variables")) this.problem("capabilities.variables", "variables need the variables extension: add \"uniwasm:variables\" to capabilities.extensions");
    const dirs = this.list(c.dirs, "capabilities.dirs", MANIFEST_BOUNDS.dirs, (x, f) => this.dir(x, f));
    dirs.forEach((d, i) => {
      dirs.forEach((o, j) => {
        if (j >= i) return;
        if (d.guest === o.guest) this.problem(`capabilities.dirs[${i}].guest`, `${d.guest} is already granted by capabilities.dirs[${j}]`);
        else if (isInside(d.guest, o.guest) || isInside(o.guest, d.guest)) {
          this.problem(`capabilities.dirs[${i}].guest`, `${d.guest} overlaps ${o.guest} (capabilities.dirs[${j}]); preopened directories must not nest`);
        }
      });
    });
    return { args, env, dirs, clocks, random, allowedOutboundHosts, listen, extensions, keyValueStores, allowedServices, variables };
  }

  dir(x: unknown, f: string): DirGrant | undefined {
    const t = this.table(x, f, true);
    if (!t) return undefined;
    this.known(t, f, ["guest", "files", "host", "mode"]);
    const guest = this.string(t.guest, `${f}.guest`, { required: true, max: MANIFEST_BOUNDS.guestPathLength, what: "an absolute guest path such as \"/data\"" });
    const mode = this.oneOf(t.mode, `${f}.mode`, ["ro", "rw"] as const, "ro");
    let g: string | undefined;
    if (guest !== undefined) {
      if (!guest.startsWith("/")) this.problem(`${f}.guest`, `${JSON.stringify(guest)} must be an absolute guest path such as "/data"`);
      else if (guest.split("/").some((s) => s === "." || s === "..")) this.problem(`${f}.guest`, `${JSON.stringify(guest)} must not contain '.' or '..' segments`);
      else g = "/" + guest.split("/").filter((s) => s !== "").join("/");
    }
    if ((t.files === undefined) === (t.host === undefined)) {
      return this.problem(f, "set exactly one of files (a directory bundled into the image) or host (an absolute host path)");
    }
    if (t.files !== undefined) {
      const files = this.relativePath(t.files, `${f}.files`, true);
      if (g === undefined || files === undefined || mode === undefined) return undefined;
      return { guest: g, mode, files };
    }
    const host = this.string(t.host, `${f}.host`, { required: true, what: "an absolute host path" });
    if (host !== undefined && !host.startsWith("/")) return this.problem(`${f}.host`, `${JSON.stringify(host)} must be an absolute host path (images are started from anywhere)`);
    if (g === undefined || host === undefined || mode === undefined) return undefined;
    return { guest: g, mode, host };
  }

  limits(l: Table, caps: ManifestCapabilities): Limits {
    // The keys are LIMIT_FIELDS' manifest names: a limit a manifest may set is declared there.
    this.known(l, "limits", Object.values(LIMIT_FIELDS).flatMap((f) => (f.manifest ? [f.manifest] : [])));
    const out: Limits = {};
    const memory = this.size(l.memory, "limits.memory", R.maxMemoryBytes.min, R.maxMemoryBytes.max);
    if (memory !== undefined) {
      if (memory % 65536 !== 0) this.problem("limits.memory", `${memory} bytes is not a whole number of 64 KiB wasm pages`);
      else out.maxMemoryBytes = memory;
    }
    const fuel = this.integer(l.fuel, "limits.fuel", 1, R.fuel.max); // 0 instructions would run nothing
    if (fuel !== undefined) out.fuel = fuel;
    const timeout = this.duration(l.timeout, "limits.timeout");
    if (timeout !== undefined) out.timeoutMs = timeout;
    const stdout = this.size(l.stdout, "limits.stdout", R.stdoutBytes.min, R.stdoutBytes.max);
    if (stdout !== undefined) out.stdoutBytes = stdout;
    const stderr = this.size(l.stderr, "limits.stderr", R.stderrBytes.min, R.stderrBytes.max);
    if (stderr !== undefined) out.stderrBytes = stderr;
    const minFiles = 3 + caps.dirs.length + caps.listen.length;
    const openFiles = this.integer(l.open_files, "limits.open_files", minFiles, R.openFiles.max, `stdio + ${caps.dirs.length} dirs + ${caps.listen.length} listeners need ${minFiles}`);
    if (openFiles !== undefined) out.openFiles = openFiles;
    if (l.tier !== undefined) {
      if (isTier(l.tier)) out.tier = l.tier;
      else this.problem("limits.tier", `expected one of ${TIERS.map((t) => `"${t}"`).join(", ")}, got ${describe(l.tier)}`);
    }
    return out;
  }

  integer(v: unknown, field: string, min: number, max: number, why = ""): number | undefined {
    if (v === undefined) return undefined;
    if (typeof v === "bigint") return this.problem(field, `${v} is too large; at most ${max}`);
    if (typeof v !== "number" || !Number.isInteger(v)) return this.problem(field, `expected an integer, got ${describe(v)}`);
    if (v < min || v > max) return this.problem(field, `${v} is out of range; allowed ${min} to ${max}${why ? ` (${why})` : ""}`);
    return v;
  }

  size(v: unknown, field: string, min: number, max: number): number | undefined {
    if (v === undefined) return undefined;
    let bytes: number | undefined;
    if (typeof v === "number" && Number.isInteger(v)) bytes = v;
    else if (typeof v === "string") bytes = orUndefined(() => parseSize(v));
    if (bytes === undefined) {
      return this.problem(field, `${typeof v === "string" ? JSON.stringify(v) : describe(v)} is not a size; use bytes (65536) or a string with K, M or G (binary: "64M" and "64MiB" are 67108864 bytes)`);
    }
    if (bytes < min || bytes > max) return this.problem(field, `${bytes} bytes is out of range; allowed ${min} to ${max} bytes`);
    return bytes;
  }

  duration(v: unknown, field: string): number | undefined {
    if (v === undefined) return undefined;
    let ms: number | undefined;
    if (typeof v === "number" && Number.isInteger(v)) ms = v;
    else if (typeof v === "string") ms = orUndefined(() => parseDuration(v));
    if (ms === undefined) {
      return this.problem(field, `${typeof v === "string" ? JSON.stringify(v) : describe(v)} is not a duration; use milliseconds (5000) or a string with ms, s, m or h ("5s")`);
    }
    if (ms < R.timeoutMs.min || ms > R.timeoutMs.max) return this.problem(field, `${ms} ms is out of range; allowed 1 ms to 24 h`);
    return ms;
  }

  httpTrigger(x: unknown, f: string, entry: EntryKind | undefined, exports: string[]): HttpTrigger | undefined {
    const t = this.table(x, f, true);
    if (!t) return undefined;
    this.known(t, f, ["route", "host", "abi", "handler"]);
    let route = this.string(t.route, `${f}.route`, { required: true, max: 1024, what: "a path prefix starting with '/'" });
    if (route !== undefined) {
      if (route.endsWith("/...")) route = route.slice(0, -4) || "/";
      if (!route.startsWith("/") || /[\s?#]/.test(route) || route.includes("...") || route.split("/").includes("..")) {
        this.problem(`${f}.route`, `${JSON.stringify(route)} is not allowed; expected a path prefix such as "/api" (no spaces, '?', '#', '..')`);
        route = undefined;
      } else if (route.length > 1 && route.endsWith("/")) route = route.slice(0, -1);
    }
    const host = this.string(t.host, `${f}.host`, { max: 253, re: HOST_RE, what: "a host name such as \"app.example.com\" or \"*.example.com\"" });
    const abi = this.oneOf(t.abi, `${f}.abi`, ["wagi", "reactor"] as const, entry === "reactor" ? "reactor" : "wagi");
    const handler = this.string(t.handler, `${f}.handler`, { max: 256, re: EXPORT_RE, what: "an export name" });
    if (abi === "wagi") {
      if (entry === "reactor") this.problem(`${f}.abi`, "the wagi ABI runs a command's _start per request; this module is a reactor (use abi = \"reactor\")");
      if (handler !== undefined) this.problem(`${f}.handler`, "only the reactor ABI calls a handler; wagi runs _start");
    } else if (abi === "reactor") {
      if (entry !== "reactor") this.problem(`${f}.abi`, "the reactor ABI needs module.entry = \"reactor\"");
      else if (handler === undefined) this.problem(`${f}.handler`, `missing; the reactor ABI needs the export to call, one of: ${exports.join(", ")}`);
      else if (!exports.includes(handler)) this.problem(`${f}.handler`, `${JSON.stringify(handler)} is not in module.exports (${exports.join(", ")})`);
    }
    if (route === undefined || abi === undefined) return undefined;
    const out: HttpTrigger = { route, abi };
    if (host !== undefined) out.host = host;
    if (handler !== undefined) out.handler = handler;
    return out;
  }
}

function orUndefined(parse: () => number): number | undefined {
  try {
    return parse();
  } catch {
    return undefined;
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return "an array";
  if (v instanceof Date) return "a date";
  if (v === null) return "null";
  if (typeof v === "object") return "a table";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v)}`;
  if (typeof v === "bigint") return `the integer ${v}`;
  return `${typeof v === "number" ? (Number.isInteger(v) ? "the integer" : "the number") : `the ${typeof v}`} ${String(v)}`;
}

function isInside(child: string, parent: string): boolean {
  return parent === "/" || child.startsWith(parent + "/");
}

/** Spin's form: `scheme://host[:port]`, `*` allowed as the host's first label or the port. */
/** Why an `allowed_outbound_hosts` entry is not `scheme://host[:port]` (undefined when it is). */
export function outboundHostProblem(h: string): string | undefined {
  const m = /^([a-z][a-z0-9+.-]*|\*):\/\/(\[[0-9a-fA-F:.]+\]|[^/:[\]]+)(:(\d+|\*))?$/.exec(h);
  if (!m) return `${JSON.stringify(h)} is not allowed; expected scheme://host[:port] such as "https://api.example.com" or "https://*.example.com:443"`;
  if (!m[2]!.startsWith("[") && !HOST_RE.test(m[2]!) && !/^\d+\.\d+\.\d+\.\d+$/.test(m[2]!)) return `${JSON.stringify(m[2])} is not a host name`;
  if (m[4] !== undefined && m[4] !== "*" && (Number(m[4]) < 1 || Number(m[4]) > 65535)) return `port ${m[4]} is out of range 1-65535`;
  return undefined;
}

function listenAddressProblem(a: string): string | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]|localhost):(\d+)$/.exec(a);
  if (!m) return `${JSON.stringify(a)} is not allowed; expected IPV4:PORT, [IPV6]:PORT or localhost:PORT such as "127.0.0.1:8080"`;
  const port = Number(m[2]);
  if (port > 65535) return `port ${port} is out of range 0-65535`;
  return undefined;
}
