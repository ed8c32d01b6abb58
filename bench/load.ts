/**
 * Load generation and process measurement for the gateway benchmark: wrk
 * (closed loop: peak req/s and its latencies), the constant-rate generator
 * (rate-load.ts: latency at a fixed offered load), CPU time of a server
 * process from /proc, and spawning servers pinned to cores with taskset.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { RateResult } from "./rate-load.js";

export const HAVE_WRK = spawnSync("wrk", ["--version"]).error === undefined;
export const HAVE_TASKSET = spawnSync("taskset", ["-c", "0", "true"]).status === 0;

export interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  /** CPU µs per request of the server process, all threads (and its cluster workers). */
  cpuUs: number;
  /** CPU µs per request of the server's main thread (the one that accepts HTTP). */
  mainCpuUs: number;
}

/** The command, prefixed with `taskset -c CORES` when there is taskset and a core list. */
export function pinned(cores: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return HAVE_TASKSET && cores ? ["taskset", ["-c", cores, cmd, ...args]] : [cmd, args];
}

function ticks(path: string): number {
  try {
    const stat = readFileSync(path, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** CPU of a process and its descendants (all threads), and of its main thread alone, µs. */
export function cpuOf(pid: number): { all: number; main: number } {
  let all = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    all += ticks(`/proc/${p}/stat`);
    stack.push(...children(p));
  }
  return { all: all * 10_000, main: ticks(`/proc/${pid}/task/${pid}/stat`) * 10_000 };
}

function wrkMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === "us" ? n / 1000 : unit === "ms" ? n : unit === "s" ? n * 1000 : n / 60_000;
}

/** wrk -t1 (pinned to `cores`) against `url` with a Host header; `serverPid` is measured for CPU. */
export function wrk(url: string, host: string, connections: number, seconds: number, serverPid: number, cores?: string): Promise<Load> {
  const cpu0 = cpuOf(serverPid);
  const [cmd, args] = pinned(cores, "wrk", ["-t", "1", "-c", String(connections), "-d", `${seconds}s`, "--latency", "-H", `Host: ${host}`, url]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`wrk exited ${code}: ${out}`));
      const cpu1 = cpuOf(serverPid);
      const pct = (p: string) => {
        const m = new RegExp(`^\\s+${p}%\\s+([0-9.]+)(us|ms|s|m)`, "m").exec(out);
        return m ? wrkMs(m[1]!, m[2]!) : NaN;
      };
      const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)?.[1]);
      const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
      const sockErr = /Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)/.exec(out);
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
      resolve({
        rps,
        p50: pct("50"),
        p99: pct("99"),
        errors: non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
        requests,
        cpuUs: (cpu1.all - cpu0.all) / Math.max(1, requests),
        mainCpuUs: (cpu1.main - cpu0.main) / Math.max(1, requests),
      });
    });
  });
}

/** The constant-rate generator (rate-load.ts) in its own process, pinned to `cores`. */
export function constantRate(distBench: string, url: string, host: string, rate: number, seconds: number, connections: number, cores?: string): Promise<RateResult> {
  const [cmd, args] = pinned(cores, process.execPath, [join(distBench, "rate-load.js"), url, host, String(Math.max(1, Math.round(rate))), String(seconds), String(connections)]);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as RateResult) : reject(new Error(`rate-load exited ${code}: ${err}`))));
  });
}

export interface ServerProcess {
  pid: number;
  /** Base URL of what it serves. */
  url: string;
  info: Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * Spawns a server that prints one JSON line with `gateway` (its URL) when it
 * is ready, and stops when its stdin closes (or on SIGTERM).
 */
export async function startJsonServer(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ServerProcess> {
  const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "inherit"], env });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once("line", (l) => resolve(l));
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited ${code} before it served`)));
    child.once("error", reject);
  });
  const info = JSON.parse(line) as Record<string, unknown>;
  return { pid: child.pid!, url: String(info["gateway"]), info, stop: () => stopChild(child) };
}

/** Spawns a server that says nothing and waits until `url` answers. */
export async function startPolledServer(cmd: string, args: string[], url: string, cwd: string): Promise<ServerProcess> {
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], cwd });
  let err = "";
  child.stderr!.on("data", (c) => (err += c));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${cmd} exited ${child.exitCode}: ${err.slice(-500)}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`${cmd} did not answer at ${url} within 30 s: ${err.slice(-500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { pid: child.pid!, url, info: {}, stop: () => stopChild(child) };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  child.stdin?.end();
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 5000);
  await gone;
  clearTimeout(t);
}

/** Threads of a process (for the notes: how many a server runs). */
export function threadCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return NaN;
  }
}
