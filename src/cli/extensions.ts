/**
 * Host extensions for `uniwasm run` and `uniwasm call`: the `--ext` grants
 * and the providers a command line supplies — log lines on stderr, a KV
 * store in memory or in a file (`--kv FILE`), variables given with `--var`,
 * outbound HTTP to `--allow-outbound` hosts (and an image's manifest lists).
 * uniwasm:service needs a node (there are no other apps here). A guest
 * granted an extension runs in an executor, where providers may be async.
 */
import { Command, Option } from "commander";
import { basename } from "node:path";
import { BUILTIN_EXTENSIONS } from "../kernel/ext/index.js";
import type { LogLevel, LogProvider } from "../kernel/ext/log.js";
import type { ExtensionOptions } from "../kernel/options.js";
import { KV_STORE_RE, outboundHostProblem, VARIABLE_RE, type ManifestCapabilities } from "../image/manifest.js";
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
    .addOption(new Option("--allow-outbound <URL>", "a destination uniwasm:http may reach: scheme://host[:port], * wildcards as Spin (repeatable)").argParser(collect).default([]));
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
  /** Closes the KV file. */
  close(): void;
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
  let kv: KvStore | undefined;
  if (grants.some((g) => g.startsWith("uniwasm:kv"))) {
    kv = KvStore.open(flags.kv ?? ":memory:");
    providers["uniwasm:kv"] = kvProvider(kv, { tenantId: "local", appId: null, own: `app:${basename(name)}`, shared }, () => DEFAULT_KV_QUOTAS);
  }
  // A value given on the command line is granted; an image also grants the names its manifest lists.
  providers["uniwasm:variables"] = variablesProvider([...(image?.variables ?? []), ...values.keys()], (n) => values.get(n) ?? null);
  providers["uniwasm:http"] = httpProvider(new OutboundHttp(), [...(image?.allowedOutboundHosts ?? []), ...flags.allowOutbound]);
  return { options: { grants, providers }, close: () => kv?.close() };
}
