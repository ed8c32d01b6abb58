/**
 * Host extensions for `uniwasm run` and `uniwasm call`: the `--ext` grants
 * and the providers a command line supplies (log lines on stderr; the other
 * built-ins add theirs here). A guest granted an extension runs in an
 * executor, where providers may be asynchronous.
 */
import { Command, Option } from "commander";
import { BUILTIN_EXTENSIONS } from "../kernel/ext/index.js";
import type { LogLevel, LogProvider } from "../kernel/ext/log.js";
import type { ExtensionOptions } from "../kernel/options.js";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export interface ExtensionFlags {
  ext: string[];
}

/** Adds the extension flags to a command. */
export function applyExtensionFlags(cmd: Command): Command {
  return cmd.addOption(
    new Option("--ext <NAME>", `grant a host extension: ${BUILTIN_EXTENSIONS.map((e) => e.name.replace(/^uniwasm:/, "")).join(", ")} (uniwasm:NAME), or NAME/CAPABILITY for one capability (repeatable)`)
      .argParser(collect)
      .default([]),
  );
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

/** The extension options a command line grants: the grants, plus the image's, with the CLI's providers. */
export function cliExtensions(flags: ExtensionFlags, fromImage: readonly string[] = []): ExtensionOptions | undefined {
  const grants = [...new Set([...fromImage, ...flags.ext.map(extensionGrant)])];
  if (grants.length === 0) return undefined;
  const log = stderrLog();
  return { grants, providers: { env: log, "uniwasm:log": log } };
}
