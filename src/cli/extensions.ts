/**
 * Host extensions for `uniwasm run` and `uniwasm call`: the `--ext` grants
 * and the providers a command line supplies — log lines on stderr, a KV
 * store in memory or in a file (`--kv FILE`), variables given with `--var`,
 * outbound HTTP to `--allow-outbound` hosts (and an image's manifest lists),
 * service calls to local modules named with `--service NAME=FILE` (run as
 * WAGI commands, as a node would run them). A guest granted an extension
 * runs in an executor, where providers may be async.
 */
import { Command, Option } from "commander";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { Errno } from "../kernel/abi.js";
import { WasiError } from "../kernel/errors.js";
import { ExtensionDenied } from "../kernel/extensions.js";
import type { ServiceProvider } from "../kernel/ext/service.js";
import { ExecutorPool } from "../sandbox/executor-pool.js";
import { CgiResponseParser } from "../server/wagi.js";
import { MAX_SERVICE_DEPTH } from "../server/service-calls.js";
import { BUILTIN_EXTENSIONS } from "../kernel/ext/index.js";
import type { LogLevel, LogProvider } from "../kernel/ext/log.js";
import type { ExtensionOptions } from "../kernel/options.js";
import { KV_STORE_RE, outboundHostProblem, SERVICE_NAME_RE, VARIABLE_RE, type ManifestCapabilities } from "../image/manifest.js";
import { KvStore, DEFAULT_KV_QUOTAS } from "../store/kv.js";
import { httpProvider, kvProvider, variablesProvider } from "../manager/extension-providers.js";
import { OutboundHttp } from "../manager/outbound-http.js";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export interface ExtensionFlags {
  ext: string[];
  kv?: string;
  kvStore: string[];
  var: string[];
  allowOutbound: string[];
  service: string[];
}

/** Adds the extension flags to a command. */
export function applyExtensionFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option("--ext <NAME>", `grant a host extension: ${BUILTIN_EXTENSIONS.map((e) => e.name.replace(/^uniwasm:/, "")).join(", ")} (uniwasm:NAME), or NAME/CAPABILITY for one capability (repeatable)`)
        .argParser(collect)
        .default([]),
    )
    .addOption(new Option("--kv <FILE>", "uniwasm:kv data in this SQLite file (default: in memory, gone at exit)"))
    .addOption(new Option("--kv-store <NAME>", "a named (shared) uniwasm:kv store the guest may open (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--var <NAME=VALUE>", "a uniwasm:variables value the guest may read (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--allow-outbound <URL>", "a destination uniwasm:http may reach: scheme://host[:port], * wildcards as Spin (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--service <NAME=FILE>", "an app uniwasm:service may call by NAME: the WAGI module FILE, run per call (repeatable)").argParser(collect).default([]));
}

/** `--ext kv` means the built-in uniwasm:kv; exact names (env, uniwasm:kv, uniwasm:kv/read) are taken as given. */
export function extensionGrant(name: string): string {
  const known = new Set(BUILTIN_EXTENSIONS.map((e) => e.name));
  const base = name.split("/")[0]!;
  if (known.has(base) || name.includes(":")) return name;
  if (known.has(`uniwasm:${base}`)) return `uniwasm:${name}`;
  throw new Error(`--ext ${name}: no such extension (built in: ${[...known].join(", ")})`);
}

/** A log provider printing each guest line on stderr as `[level] line`. */
export function stderrLog(write: (text: string) => void = (t) => process.stderr.write(t)): LogProvider {
  return { log: (level: LogLevel, line: string) => write(`[${level}] ${line}\n`) };
}

export interface CliExtensions {
  options: ExtensionOptions;
  /** Closes the KV file and the executors of service calls. */
  close(): Promise<void>;
}

/**
 * The extensions a command line grants (its `--ext` plus an image's
 * manifest), with the command line's providers; undefined when none is granted.
 * `name` names the KV store of this module (`app:NAME`).
 */
export function cliExtensions(flags: ExtensionFlags, name: string, image?: ManifestCapabilities): CliExtensions | undefined {
  const grants = [...new Set([...(image?.extensions ?? []), ...flags.ext.map(extensionGrant)])];
  if (grants.length === 0) return undefined;
  const log = stderrLog();
  const providers: Record<string, object> = { env: log, "uniwasm:log": log };
  const shared = [...(image?.keyValueStores ?? []), ...flags.kvStore];
  for (const s of flags.kvStore) if (!KV_STORE_RE.test(s)) throw new Error(`--kv-store ${s}: not a store name ([a-z0-9][a-z0-9_-]*)`);
  const values = new Map<string, string>();
  for (const v of flags.var) {
    const i = v.indexOf("=");
    const n = i < 0 ? v : v.slice(0, i);
    if (i < 0 || !VARIABLE_RE.test(n)) throw new Error(`--var ${v}: expected NAME=VALUE with NAME [a-z][a-z0-9_]*`);
    values.set(n, v.slice(i + 1));
  }
  for (const h of flags.allowOutbound) {
    const p = outboundHostProblem(h);
    if (p) throw new Error(`--allow-outbound ${h}: ${p}`);
  }
  const services = new Map<string, string>();
  for (const s of flags.service) {
    const i = s.indexOf("=");
    const n = i < 0 ? s : s.slice(0, i);
    if (i < 0 || !SERVICE_NAME_RE.test(n)) throw new Error(`--service ${s}: expected NAME=FILE with NAME an app name`);
    services.set(n, s.slice(i + 1));
  }
  let kv: KvStore | undefined;
  if (grants.some((g) => g.startsWith("uniwasm:kv"))) {
    kv = KvStore.open(flags.kv ?? ":memory:");
    providers["uniwasm:kv"] = kvProvider(kv, { tenantId: "local", appId: null, own: `app:${basename(name)}`, shared }, () => DEFAULT_KV_QUOTAS);
  }
  // A value given on the command line is granted; an image also grants the names its manifest lists.
  providers["uniwasm:variables"] = variablesProvider([...(image?.variables ?? []), ...values.keys()], (n) => values.get(n) ?? null);
  providers["uniwasm:http"] = httpProvider(new OutboundHttp(), [...(image?.allowedOutboundHosts ?? []), ...flags.allowOutbound]);
  const calls = new LocalServices(services, [...(image?.allowedServices ?? []), ...services.keys()], grants, providers);
  providers["uniwasm:service"] = calls.provider([basename(name)]);
  return {
    options: { grants, providers },
    close: async () => {
      await calls.close();
      kv?.close();
    },
  };
}

/**
 * uniwasm:service on the command line: a callee is a local WAGI module,
 * run once per call in an executor of its own (a POST to "/" with the input
 * as its body, as a node would run it), granted what the caller is granted;
 * its CGI answer is the response. Names, cycles and depth are checked as on
 * a node (server/service-calls.ts).
 */
class LocalServices {
  private pool: ExecutorPool | undefined;

  constructor(
    private readonly files: ReadonlyMap<string, string>,
    private readonly allowed: readonly string[],
    private readonly grants: readonly string[],
    private readonly providers: Record<string, object>,
  ) {}

  provider(chain: readonly string[]): ServiceProvider {
    return { call: (name, input) => this.call(chain, name, input) };
  }

  private async call(chain: readonly string[], name: string, input: Uint8Array): Promise<{ status: number; body: Uint8Array }> {
    if (!SERVICE_NAME_RE.test(name)) throw new ExtensionDenied(Errno.ACCES, `${JSON.stringify(name.slice(0, 80))} is not an app name`);
    if (!this.allowed.includes(name)) throw new ExtensionDenied(Errno.ACCES, `app ${name} is not granted (--service ${name}=FILE, or allowed_services)`);
    const file = this.files.get(name);
    if (!file) throw new WasiError(Errno.NOENT, `no module for app ${name} (--service ${name}=FILE)`);
    if (chain.includes(name)) throw new WasiError(Errno.LOOP, `calling ${name} would make a cycle (it is already in the call chain)`);
    if (chain.length >= MAX_SERVICE_DEPTH) throw new WasiError(Errno.LOOP, `service calls nest at most ${MAX_SERVICE_DEPTH} apps deep`);
    const bytes = readFileSync(file);
    this.pool ??= new ExecutorPool({ size: 1 });
    const r = await this.pool.run(bytes, {
      args: [`/${name}`],
      env: { REQUEST_METHOD: "POST", PATH_INFO: "/", SCRIPT_NAME: "", QUERY_STRING: "", CONTENT_LENGTH: String(input.length), CONTENT_TYPE: "application/octet-stream", GATEWAY_INTERFACE: "CGI/1.1", SERVER_PROTOCOL: "HTTP/1.1", X_UNIWASM_CALLER: chain[chain.length - 1] ?? "" },
      stdin: input,
      stdout: "buffer",
      stderr: "buffer",
      nested: true,
      extensions: { grants: [...this.grants], providers: { ...this.providers, "uniwasm:service": this.provider([...chain, name]) } },
    });
    if (r.stderr.length > 0) process.stderr.write(r.stderr);
    const text = (m: string): { status: number; body: Uint8Array } => ({ status: r.reason === "deadline_exceeded" ? 504 : 502, body: new TextEncoder().encode(JSON.stringify({ error: { message: m } })) });
    if (r.reason !== "exit" || r.exitCode !== 0) return text(`${name} failed: ${r.reason}${r.message ? `: ${r.message}` : ""}`);
    let status = 200;
    const body: Uint8Array[] = [];
    const parser = new CgiResponseParser((h) => (status = h.status), (c) => void body.push(c));
    try {
      parser.push(r.stdout);
    } catch (err) {
      return text(`${name} answered without a valid CGI response: ${(err as Error).message}`);
    }
    if (!parser.done) return text(`${name} answered without a valid CGI response`);
    return { status, body: new Uint8Array(Buffer.concat(body)) };
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}
