import { Command, Option } from "commander";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { resolveImage } from "../../image/resolve.js";
import { checkModule, WasmError } from "../../wasm/index.js";
import { ReactorStartError } from "../../sandbox/executor-pool.js";
import { applyLimitFlags, cliPool, limitsFromFlags, type LimitFlags } from "../../sandbox/cli-limits.js";
import { CallUsageError, parseParams, planCall } from "../../sandbox/call.js";
import type { Limits } from "../../sandbox/limits.js";
import type { GuestOutcome, ReactorArg, ResultKind } from "../../sandbox/guest.js";
import type { RunOptions } from "../../sandbox/executor-pool.js";
import { applyExtensionFlags, cliExtensions, type CliExtensions, type ExtensionFlags } from "../extensions.js";
import { formatCallStats, parseDirFlag, parseEnvFlags, reportEnd } from "./run.js";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

interface CallFlags extends LimitFlags, ExtensionFlags {
  input?: string;
  result: ResultKind;
  dir: string[];
  dirRo: string[];
  memDir: string[];
  env: string[];
  trace: boolean;
  stats: boolean;
  strict: boolean;
}

export function registerCall(program: Command): void {
  program.enablePositionalOptions();
  applyExtensionFlags(applyLimitFlags(program.command("call")))
    .description("Call one export of a module (or an image): the plugin use, with the same limits and grants as run")
    .argument("<file>", "module (.wasm) or image reference (name:tag, digest)")
    .argument("<export>", "the exported function to call")
    .argument("[args...]", "the export's parameters (after the input's ptr and len), as numbers")
    .addOption(new Option("--input <TEXT|@FILE>", "bytes passed as the export's first two parameters (ptr, len); @FILE reads a file, @- stdin"))
    .addOption(new Option("--result <KIND>", "value: print the returned number; bytes: the export returns i64 (ptr << 32 | len) and those bytes are written to stdout").choices(["value", "bytes"]).default("value"))
    .addOption(new Option("--dir <HOST[::GUEST]>", "grant a host directory, read-write (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--dir-ro <HOST[::GUEST]>", "grant a host directory, read-only (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--mem-dir <GUEST>", "grant an empty in-memory directory (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--env <NAME[=VALUE]>", "set an environment variable; NAME alone passes the host's value (repeatable)").argParser(collect).default([]))
    .option("--trace", "print every host call with its arguments and result to stderr", false)
    .option("--stats", "print a count of host calls (and of denied ones) to stderr when the call ends", false)
    .option("--strict", "refuse a module that imports host calls it is not granted", false)
    // Options may follow the export (`call seed.wasm process --input hello`); a negative number goes after `--`.
    .addHelpText("after", `
The plugin calling convention (docs/extensions.md): with --input, the bytes are copied into the
guest (at uniwasm_alloc(len) when it exports one, else past its static data, growing its memory)
and passed as the export's first two parameters (ptr, len); ARGS fill the rest. _initialize runs
first when exported. The result is printed on stdout; the guest's own output is passed through.

Exit status: 0 when the export returns; when the sandbox ends the call, the codes of run
(134 trap, 137 memory limit, 152 fuel, 124 deadline, ...); 2 for a call that does not fit the export.

Examples:
  uniwasm call seed.wasm process --input hello --ext env
  uniwasm call plugin.wasm add 2 3
  uniwasm call --ext kv --input @request.json app.wasm handle
  uniwasm call --tier process plugin.wasm add 2 3   (the plugin in a sandboxed process)`)
    .action(async (file: string, name: string, args: string[], flags: CallFlags) => {
      process.exitCode = await callCommandLine(file, name, args, flags);
    });
}

async function readInput(spec: string): Promise<Uint8Array> {
  if (!spec.startsWith("@")) return new TextEncoder().encode(spec);
  const path = spec.slice(1);
  if (path === "-") {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  }
  return new Uint8Array(await readFile(path));
}

async function callCommandLine(file: string, name: string, args: string[], flags: CallFlags): Promise<number> {
  const fail = (message: string, code: number): number => {
    process.stderr.write(`uniwasm call: ${message}\n`);
    return code;
  };
  let bytes: Uint8Array;
  let options: RunOptions;
  let limits: Limits;
  let label = basename(file);
  let ext: CliExtensions | undefined;
  try {
    limits = limitsFromFlags(flags) ?? {};
    options = {
      args: [file],
      env: parseEnvFlags(flags.env),
      preopens: [
        ...flags.dir.map((d) => parseDirFlag(d, false)),
        ...flags.dirRo.map((d) => parseDirFlag(d, true)),
        ...flags.memDir.map((guest) => ({ guest, memory: {} })),
      ],
      stdout: "buffer",
      stderr: "buffer",
      strict: flags.strict,
    };
    if (flags.trace) {
      options.trace = true;
      options.onTrace = (line) => process.stderr.write(`[trace] ${line}\n`);
    }
    if (existsSync(file)) {
      bytes = new Uint8Array(await readFile(file));
      ext = cliExtensions(flags, file);
    } else {
      const image = await resolveImage(file);
      if (!image) return fail(`${file}: no such file, and no image with that reference (see 'uniwasm images')`, 126);
      const k = image.kernelOptions;
      bytes = image.bytes;
      label = image.manifest.name;
      // The manifest's limits, then the flags over them (as run).
      limits = { ...image.limits, ...limits };
      options = {
        ...options,
        args: [image.manifest.name, ...(k.args ?? []).slice(1)],
        env: { ...k.env, ...options.env },
        preopens: [...(k.preopens ?? []), ...(options.preopens ?? [])],
        capabilities: [...(k.capabilities ?? []), ...(options.preopens?.length ? (["fs"] as const) : [])],
      };
      ext = cliExtensions(flags, image.manifest.name, image.manifest.capabilities);
    }
    if (ext) options.extensions = ext.options;
  } catch (err) {
    return fail((err as Error).message, 2);
  }
  let params: ReactorArg[];
  try {
    const info = checkModule(bytes);
    const input = flags.input !== undefined ? await readInput(flags.input) : undefined;
    const t = planCall(info, name, input !== undefined, args.length);
    const numbers = parseParams(t, input !== undefined, args);
    params = input !== undefined ? [input, ...numbers] : numbers;
  } catch (err) {
    if (err instanceof WasmError) return fail(`${file}: ${err.message}`, 126);
    if (err instanceof CallUsageError) return fail(`${label}: ${err.message}`, 2);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") return fail(`cannot read ${(err as Error).message}`, 126);
    throw err;
  }
  let opened: ReturnType<typeof cliPool>;
  try {
    opened = cliPool({ size: 1, limits }, options.preopens, false);
  } catch (err) {
    return fail((err as Error).message, 126);
  }
  const pool = opened.pool;
  let outcome: GuestOutcome;
  try {
    let reactor;
    try {
      reactor = await pool.reactor(bytes, options);
    } catch (err) {
      if (!(err instanceof ReactorStartError)) throw err;
      outcome = err.outcome;
      return finish(label, outcome, undefined, flags);
    }
    const r = await reactor.call(name, params, { result: flags.result });
    await reactor.close();
    return finish(label, r.outcome, r.value, flags);
  } finally {
    await opened.close();
    await ext?.close();
  }
}

function finish(label: string, outcome: GuestOutcome, value: unknown, flags: CallFlags): number {
  if (outcome.stdout.length > 0) process.stdout.write(outcome.stdout);
  if (outcome.stderr.length > 0) process.stderr.write(outcome.stderr);
  if (outcome.reason === "exit") {
    if (value instanceof Uint8Array) process.stdout.write(value);
    else if (value !== undefined) process.stdout.write(`${String(value)}\n`);
  }
  reportEnd(label, outcome);
  if (flags.stats) process.stderr.write(formatCallStats(outcome));
  return outcome.reason === "exit" ? 0 : Math.min(outcome.exitCode, 255);
}
