import { Command, Option } from "commander";
import { existsSync, statSync } from "node:fs";
import { basename } from "node:path";
import { LinkError } from "../../kernel/errors.js";
import type { PreopenSpec } from "../../kernel/options.js";
import type { RunFileOptions, RunResult } from "../../sandbox/inline.js";
import { resolveImage } from "../../image/resolve.js";
import { WasmError } from "../../wasm/index.js";
import { applyLimitFlags, limitsFromFlags, runFileLimited, runLimited, TierUnavailableError, type LimitFlags } from "../../sandbox/cli-limits.js";
import { applyExtensionFlags, cliExtensions, type CliExtensions, type ExtensionFlags } from "../extensions.js";
import type { Limits } from "../../sandbox/limits.js";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `--dir HOST[::GUEST]` as wasmtime: without a guest path, the host path is used as given. */
export function parseDirFlag(value: string, readonly: boolean): PreopenSpec {
  const i = value.indexOf("::");
  const host = i < 0 ? value : value.slice(0, i);
  const guest = i < 0 ? value : value.slice(i + 2);
  if (!host || !guest) throw new Error(`--dir ${value}: expected HOST[::GUEST]`);
  let isDir = false;
  try {
    isDir = statSync(host).isDirectory();
  } catch {
    throw new Error(`--dir ${value}: host directory ${host} does not exist`);
  }
  if (!isDir) throw new Error(`--dir ${value}: ${host} is not a directory`);
  return { host, guest, readonly };
}

/** `--env NAME=VALUE`, or `--env NAME` to pass the host's value through, as wasmtime. */
export function parseEnvFlags(values: readonly string[], hostEnv: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf("=");
    const name = i < 0 ? v : v.slice(0, i);
    if (!name) throw new Error(`--env ${v}: expected NAME[=VALUE]`);
    if (i >= 0) env[name] = v.slice(i + 1);
    else if (hostEnv[name] !== undefined) env[name] = hostEnv[name]!;
  }
  return env;
}

interface RunFlags extends LimitFlags, ExtensionFlags {
  dir: string[];
  dirRo: string[];
  memDir: string[];
  env: string[];
  tcplisten: string[];
  trace: boolean;
  stats: boolean;
  strict: boolean;
  home?: string;
}

export function registerRun(program: Command): void {
  program.enablePositionalOptions();
  applyExtensionFlags(applyLimitFlags(program.command("run")))
    .description("Run a WASI command module (or an image) as a sandboxed instance")
    .argument("<file>", "module (.wasm) or image reference (name:tag, digest) to run")
    .argument("[args...]", "arguments passed to the guest")
    .addOption(new Option("--dir <HOST[::GUEST]>", "grant a host directory, read-write (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--dir-ro <HOST[::GUEST]>", "grant a host directory, read-only (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--mem-dir <GUEST>", "grant an empty in-memory directory (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--env <NAME[=VALUE]>", "set an environment variable; NAME alone passes the host's value (repeatable)").argParser(collect).default([]))
    .addOption(new Option("--tcplisten <ADDR>", "grant a listening TCP socket on HOST:PORT (repeatable)").argParser(collect).default([]))
    .option("--trace", "print every host call with its arguments and result to stderr", false)
    .option("--stats", "print a count of host calls (and of denied ones) to stderr when the guest ends", false)
    .option("--strict", "refuse a module that imports host calls it is not granted", false)
    .option("--home <dir>", "image store to resolve IMAGE in (default $UNIWASM_HOME or ~/.uniwasm)")
    .passThroughOptions()
    .addHelpText("after", `
Exit status: the guest's exit code; when the sandbox ends the guest:
  134 trap, 137 memory limit, 152 fuel exhausted, 124 deadline, 139 stack exhausted,
  153 output limit, 150 open-file limit, 126 invalid module or link error,
  2 a bad flag; 143 when a guest blocked in a host call (a FIFO) outlived its deadline.

Examples:
  uniwasm run examples/hello.wasm world
  uniwasm run --dir ./data::/data --env GREETING=hi app.wasm
  uniwasm run --tcplisten 127.0.0.1:8080 server.wasm
  uniwasm run --tier process --dir-ro ./data::/data app.wasm   (in a bubblewrap sandbox, seccomp allow-list)`)
    .action(async (file: string, args: string[], flags: RunFlags) => {
      process.exitCode = await runCommandLine(file, args, flags);
    });
}

/**
 * The guest's thread did not stop after the run ended (it is blocked in a
 * host system call no deadline can interrupt, such as opening a FIFO nobody
 * writes to), and Node waits for every thread before exiting, even in
 * process.exit: the process ends itself with SIGTERM (status 143, a code no
 * limit uses). The reason is already printed.
 */
function endStuckProcess(): void {
  process.stderr.write("uniwasm: the guest is blocked in a host call that cannot be interrupted; ending the process (exit 143)\n");
  process.kill(process.pid, "SIGTERM");
}

async function runCommandLine(file: string, args: string[], flags: RunFlags): Promise<number> {
  let options: RunFileOptions;
  let limits: Limits;
  let ext: CliExtensions | undefined;
  try {
    limits = limitsFromFlags(flags);
    options = {
      args: [file, ...args],
      env: parseEnvFlags(flags.env),
      preopens: [
        ...flags.dir.map((d) => parseDirFlag(d, false)),
        ...flags.dirRo.map((d) => parseDirFlag(d, true)),
        ...flags.memDir.map((guest) => ({ guest, memory: {} })),
      ],
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
      strict: flags.strict,
      tcpListen: flags.tcplisten,
    };
    if (flags.trace) options.trace = (line) => process.stderr.write(`[trace] ${line}\n`);
    ext = existsSync(file) ? cliExtensions(flags, file) : undefined;
    if (ext) options.extensions = ext.options;
  } catch (err) {
    process.stderr.write(`uniwasm run: ${(err as Error).message}\n`);
    return 2;
  }
  let result: RunResult;
  try {
    if (existsSync(file)) {
      result = await runFileLimited(file, options, limits, { onResult: (r) => reportEnd(basename(file), r), onStuck: endStuckProcess });
    } else {
      const image = await resolveImage(file, { args, ...(flags.home ? { home: flags.home } : {}) });
      if (!image) {
        process.stderr.write(`uniwasm run: ${file}: no such file, and no image with that reference (see 'uniwasm images')\n`);
        return 126;
      }
      // The manifest's grants, plus what the command line adds.
      const k = image.kernelOptions;
      // The manifest's limits, then the flags over them.
      const merged: Limits = { ...image.limits, ...limits };
      try {
        ext = cliExtensions(flags, image.manifest.name, image.manifest.capabilities);
      } catch (err) {
        process.stderr.write(`uniwasm run: ${(err as Error).message}\n`);
        return 2;
      }
      result = await runLimited(image.bytes, {
        ...options,
        args: [image.manifest.name, ...(k.args ?? []).slice(1)],
        env: { ...k.env, ...options.env },
        preopens: [...(k.preopens ?? []), ...(options.preopens ?? [])],
        // Directories and sockets given on the command line are grants too.
        capabilities: [
          ...(k.capabilities ?? []),
          ...(options.preopens?.length ? (["fs"] as const) : []),
          ...(options.tcpListen?.length ? (["sockets"] as const) : []),
        ],
        tcpListen: [...image.listen, ...(options.tcpListen ?? [])],
        ...(ext ? { extensions: ext.options } : {}),
      }, merged, { onResult: (r) => reportEnd(basename(file), r), onStuck: endStuckProcess });
    }
  } catch (err) {
    if (err instanceof WasmError || err instanceof LinkError || err instanceof TierUnavailableError) {
      process.stderr.write(`uniwasm run: ${file}: ${err.message}\n`);
      return 126;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR") {
      process.stderr.write(`uniwasm run: cannot read ${file}: ${(err as Error).message}\n`);
      return 126;
    }
    throw err;
  } finally {
    await ext?.close();
  }
  if (flags.stats) process.stderr.write(formatCallStats(result));
  return result.exitCode > 255 ? 255 : result.exitCode;
}

/** `--stats`: host calls by count, strace -c style, with the denied ones marked. */
export function formatCallStats(r: Pick<RunResult, "calls" | "denied">): string {
  const names = [...new Set([...Object.keys(r.calls), ...Object.keys(r.denied)])];
  names.sort((a, b) => (r.calls[b] ?? 0) + (r.denied[b] ?? 0) - ((r.calls[a] ?? 0) + (r.denied[a] ?? 0)) || a.localeCompare(b));
  const lines = ["   calls   denied  syscall", "--------  -------  -------------------------"];
  let total = 0;
  let denied = 0;
  for (const n of names) {
    const c = r.calls[n] ?? 0;
    const d = r.denied[n] ?? 0;
    total += c;
    denied += d;
    lines.push(`${String(c).padStart(8)}  ${String(d).padStart(7)}  ${n}`);
  }
  lines.push("--------  -------  -------------------------", `${String(total).padStart(8)}  ${String(denied).padStart(7)}  total (${names.length} distinct calls)`);
  return lines.join("\n") + "\n";
}

/** One line naming why the guest ended (when it did not simply exit), plus the wasm backtrace. */
export function reportEnd(name: string, r: RunResult): void {
  if (r.reason === "exit") return;
  if (r.reason === "invalid_module" || r.reason === "link_error") {
    // Nothing ran: the file is at fault, said as for a file that cannot be read.
    process.stderr.write(`uniwasm run: ${name}: ${(r.message ?? r.reason).replace(/^(invalid module|link error): /, "")}\n`);
    return;
  }
  let text = `uniwasm: ${name}: ${r.reason === "trap" ? "trap" : r.reason}: ${r.message ?? ""}\n`;
  if (r.trap && r.trap.frames.length > 0) text += `wasm backtrace:\n${r.trap.backtrace}\n`;
  process.stderr.write(text);
}
