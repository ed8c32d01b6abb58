/**
 * Launchers of the process and gvisor tiers: they start sandboxed executor
 * processes (process-executor-entry.js inside a wall) and keep a few booted
 * ahead of need (warm spares), so that a pool taking a new executor — at
 * start, or to replace one killed at a deadline or lost — does not wait for
 * a process and a sandbox to start.
 *
 * What a sandbox holds (both tiers): the node binary and the shared
 * libraries it loads, the package's package.json and dist/src, read-only;
 * the host directories the launcher was given (read-only ones mounted
 * read-only), at /dirs/N; nothing else. No network.
 *
 * - process: bubblewrap, with new user (uid 65534 inside), PID, IPC, UTS,
 *   network, cgroup and mount namespaces, no capabilities, a new session,
 *   an empty environment, --die-with-parent, the rlimits of
 *   ExecutorProcessLimits (set by prlimit before bwrap, inherited), and the
 *   seccomp allow-list (resources/seccomp/x86_64.json, compiled by
 *   seccomp.ts) handed to `bwrap --seccomp` so that the kernel enforces it
 *   from the exec of node on: before any of our code, let alone a guest's.
 * - gvisor: `runsc --rootless --network=none run` of an OCI bundle whose
 *   root is an empty read-only directory and whose mounts are the files
 *   above; the rlimits go in the bundle (enforced by gVisor's kernel).
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, realpathSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ExecutorEvents, ExecutorHandle, ExecutorLauncher, ExecutorOptions } from "../executor.js";
import { DEFAULT_EXECUTOR_HEAP_MB } from "../executor-pool.js";
import { DEFAULT_LIMITS, DEFAULT_PROCESS_LIMITS, type ExecutorProcessLimits } from "../limits.js";
import { ProcessExecutor, SandboxProcess, SandboxRefusal, type SandboxChild, type SandboxView } from "./process-executor.js";
import { findExecutable, tierUnavailable, type Tier } from "./tier.js";
import { executorSeccompFilter } from "./seccomp.js";

const ENTRY = fileURLToPath(new URL("./process-executor-entry.js", import.meta.url));
/** dist/src/sandbox/tiers -> the package root. */
const PACKAGE_ROOT = resolve(dirname(ENTRY), "../../../..");
/** Where granted host directories appear inside a sandbox (by index: guest paths like "." or "/" would collide with the executor's own files). */
const DIRS_ROOT = "/dirs";
/** Inside a bubblewrap sandbox the executor runs as this user (mapped to the node's user outside). */
const SANDBOX_UID = 65534;

export interface SandboxLauncherOptions {
  /** Host directories guests on this launcher's executors may be granted; every executor mounts them all. */
  dirs?: readonly { host: string; readonly: boolean }[];
  /** Give the sandbox the node's fd 0 (`uniwasm run`'s guest stdin "inherit"). Process tier only. */
  stdin?: "inherit" | "null";
  /** Rlimits of each executor process. Default DEFAULT_PROCESS_LIMITS. */
  limits?: Partial<ExecutorProcessLimits>;
  /** Booted executors kept waiting for a pool to take them (default stack size only). Default 1. */
  spares?: number;
  /** V8 heap of the spares' executors, MiB: a pool asking for another heap gets fresh ones. Default DEFAULT_EXECUTOR_HEAP_MB. */
  spareHeapMb?: number;
  /**
   * TEST ONLY: another entry script (it must live under the package's dist/),
   * e.g. a build that makes a system call outside the allow-list.
   */
  entry?: string;
  /** TEST ONLY: arguments appended to the entry's. */
  entryArgs?: readonly string[];
  /** TEST/MEASUREMENT ONLY: false runs without the seccomp filter. */
  seccomp?: boolean;
  /** MEASUREMENT ONLY: record every system call of each sandbox with `strace -f -o PREFIX.N` (see syscall-audit.ts). */
  strace?: string;
}

interface ExecutorFiles {
  node: string;
  /** Shared libraries: path the loader opens -> the real file. */
  libs: [string, string][];
}

let files: ExecutorFiles | undefined;
/** gVisor container ids are unique per node process (runsc's state is per launcher, its socket names are not). */
let nextContainer = 1;

/** The node binary and the libraries it loads (by ldd), found once. */
export function executorFiles(): ExecutorFiles {
  if (files) return files;
  const node = realpathSync(process.execPath);
  const libs: [string, string][] = [];
  let out = "";
  try {
    out = execFileSync("ldd", [node], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    out = ""; // a static binary ("not a dynamic executable"), or no ldd: nothing to add
  }
  for (const line of out.split("\n")) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (m) libs.push([m[1]!, realpathSync(m[1]!)]);
  }
  files = { node, libs };
  return files;
}

/** A launcher for a sandboxed tier; its executors speak the executor protocol over their channel. */
export class SandboxLauncher implements ExecutorLauncher {
  readonly needsModuleBytes = true;
  readonly limits: ExecutorProcessLimits;
  private readonly dirs: readonly { host: string; readonly: boolean; inside: string }[];
  private readonly spares: SandboxProcess[] = [];
  private readonly spareCount: number;
  private readonly entry: string;
  private readonly view: SandboxView;
  private closed = false;
  private readonly spareHeapMb: number;
  /** gVisor: the bundle and the state directory of this launcher's sandboxes. */
  private gvisor: { base: string; state: string; runsc: string } | undefined;
  private nextTrace = 1;
  /** Sandboxes in a row that died before they were ready (the start-up back-off). */
  private bootFailures = 0;
  /** gVisor containers being deleted. */
  private readonly deleting = new Set<Promise<void>>();
  /** With `strace`: each sandbox's log, and the process (its readyAt splits start-up from steady state). */
  readonly traces: { path: string; proc: SandboxProcess }[] = [];
  /** Every process started and not yet exited (spares and adopted). */
  private readonly live = new Set<SandboxProcess>();

  constructor(
    readonly tier: Exclude<Tier, "isolate">,
    private readonly options: SandboxLauncherOptions = {},
  ) {
    const why = tierUnavailable(tier);
    if (why) throw new Error(`the ${tier} tier is not available here: ${why}`);
    this.limits = { ...DEFAULT_PROCESS_LIMITS, ...options.limits };
    this.spareCount = Math.max(0, Math.floor(options.spares ?? 1));
    this.spareHeapMb = options.spareHeapMb ?? DEFAULT_EXECUTOR_HEAP_MB;
    this.entry = options.entry ? resolve(options.entry) : ENTRY;
    if (!this.entry.startsWith(join(PACKAGE_ROOT, "dist") + "/")) throw new Error(`executor entry ${this.entry} is outside ${PACKAGE_ROOT}/dist`);
    this.dirs = (options.dirs ?? []).map((d, i) => ({ host: realpathSync(d.host), readonly: d.readonly, inside: `${DIRS_ROOT}/${i}` }));
    this.view = {
      stdinInherited: tier === "process" && options.stdin === "inherit",
      mapDir: (host, readonly) => {
        let real: string;
        try {
          real = realpathSync(host);
        } catch {
          throw new SandboxRefusal(`host directory ${host} does not exist`);
        }
        // The granted dir itself or one inside it; a read-only grant may use a read-write mount, not the reverse.
        for (const d of this.dirs) {
          if (!readonly && d.readonly) continue;
          if (real === d.host) return d.inside;
          if (real.startsWith(d.host.endsWith("/") ? d.host : `${d.host}/`)) return `${d.inside}/${real.slice(d.host.length).replace(/^\/+/, "")}`;
        }
        throw new SandboxRefusal(`host directory ${host} is not mounted in this ${tier}-tier sandbox${readonly ? "" : " read-write"} (grant it when the sandbox is made)`);
      },
    };
    if (tier === "gvisor") this.gvisor = this.makeState();
    this.refill();
  }

  launch(options: ExecutorOptions, events: ExecutorEvents): ExecutorHandle {
    const { stackSizeMb, heapMb, extra = false, extensionModules = [] } = options;
    if (extensionModules.length > 0) {
      throw new Error(`extension modules (${extensionModules.join(", ")}) are not available on the ${this.tier} tier yet: the sandbox holds only the package's own code`);
    }
    let proc: SandboxProcess | undefined;
    if (stackSizeMb === DEFAULT_LIMITS.stackSizeMb && heapMb === this.spareHeapMb) {
      while (!proc && this.spares.length > 0) {
        const p = this.spares.shift()!;
        if (!p.exited) proc = p;
      }
    }
    proc ??= this.start(stackSizeMb, heapMb);
    const ex = new ProcessExecutor(stackSizeMb, events, proc, extra, this.view);
    this.refill();
    return ex;
  }

  /** Starts spares until there are `spares` of them. */
  private refill(): void {
    if (this.closed) return;
    this.spares.splice(0, this.spares.length, ...this.spares.filter((p) => !p.exited));
    while (this.spares.length < this.spareCount) this.spares.push(this.start());
  }

  /** Resolves when the spares have booted (benchmarks and tests measure from a warm pool). */
  async whenWarm(): Promise<void> {
    await Promise.all(this.spares.map((p) => p.whenReady()));
  }

  /**
   * One sandboxed executor process, booting. After sandboxes that died before
   * they were ready, the next starts later and later (up to 5 s), so that a
   * broken sandbox is not restarted in a tight loop.
   */
  start(stackSizeMb: number = DEFAULT_LIMITS.stackSizeMb, heapMb: number = this.spareHeapMb): SandboxProcess {
    const delay = this.bootFailures === 0 ? 0 : Math.min(5000, 50 * 2 ** this.bootFailures);
    const tracePath = this.options.strace ? `${this.options.strace}.${this.nextTrace++}` : undefined;
    const proc = new SandboxProcess(() => (this.tier === "process" ? this.startBwrap(stackSizeMb, heapMb, tracePath) : this.startGvisor(stackSizeMb, heapMb)), delay);
    if (tracePath) this.traces.push({ path: tracePath, proc });
    this.live.add(proc);
    void proc.closed().then(() => {
      this.live.delete(proc);
      if (proc.ready) this.bootFailures = 0;
      else if (!this.closed) this.bootFailures++;
    });
    void proc.whenReady().then(() => {
      if (proc.ready) this.bootFailures = 0;
    });
    return proc;
  }

  private entryArgs(inFd: number, outFd: number, stackSizeMb: number, heapMb: number): string[] {
    return [this.entry, "--in", String(inFd), "--out", String(outFd), "--stack", String(stackSizeMb), "--heap", String(heapMb), ...(this.options.entryArgs ?? [])];
  }

  /** The files every sandbox mounts read-only: [host path, path inside]. */
  private readOnlyMounts(): [string, string][] {
    const f = executorFiles();
    const mounts: [string, string][] = [[f.node, f.node]];
    for (const [path, real] of f.libs) mounts.push([real, path]);
    mounts.push([join(PACKAGE_ROOT, "package.json"), join(PACKAGE_ROOT, "package.json")]);
    mounts.push([join(PACKAGE_ROOT, "dist", "src"), join(PACKAGE_ROOT, "dist", "src")]);
    if (!this.entry.startsWith(join(PACKAGE_ROOT, "dist", "src") + "/")) mounts.push([this.entry, this.entry]);
    return mounts;
  }

  /** The bubblewrap command line (after prlimit's): namespaces, mounts, identity, seccomp on fd 4. */
  bwrapArgs(stackSizeMb: number, heapMb: number, seccomp: boolean): string[] {
    const a = [
      "--unshare-user", "--unshare-pid", "--as-pid-1", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--unshare-cgroup-try",
      "--uid", String(SANDBOX_UID), "--gid", String(SANDBOX_UID),
      "--hostname", "uniwasm",
      "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL",
    ];
    for (const [host, inside] of this.readOnlyMounts()) a.push("--ro-bind", host, inside);
    for (const d of this.dirs) a.push(d.readonly ? "--ro-bind" : "--bind", d.host, d.inside);
    // The sandbox's own procfs (its PID namespace): the kernel's directory handles follow renames through /proc/self/fd.
    a.push("--proc", "/proc");
    // glibc skips registering restartable sequences: one call fewer on the allow-list, nothing lost.
    a.push("--setenv", "GLIBC_TUNABLES", "glibc.pthread.rseq=0");
    a.push("--chdir", "/");
    if (seccomp) a.push("--seccomp", "4");
    a.push("--", executorFiles().node, ...this.entryArgs(3, 3, stackSizeMb, heapMb));
    return a;
  }

  private prlimitArgs(): string[] {
    const l = this.limits;
    return [
      `--as=${l.addressSpaceBytes}`,
      `--data=${l.dataBytes}`,
      `--cpu=${l.cpuSeconds}:${l.cpuSeconds + 60}`,
      `--nofile=${l.openFiles}`,
      `--nproc=${l.processes}`,
    ];
  }

  private startBwrap(stackSizeMb: number, heapMb: number, tracePath: string | undefined): SandboxChild {
    const seccomp = this.options.seccomp !== false;
    const bwrap = findExecutable("bwrap")!;
    const trace = tracePath ? [findExecutable("strace")!, "-f", "-qq", "-ttt", "-o", tracePath] : [];
    const child = spawn(findExecutable("prlimit")!, [...this.prlimitArgs(), "--", ...trace, bwrap, ...this.bwrapArgs(stackSizeMb, heapMb, seccomp)], {
      // 0: the node's stdin only when asked; 1: nothing (guest output is streamed); 2: diagnostics;
      // 3: the protocol channel (a socketpair); 4: the seccomp program, read by bwrap.
      stdio: [this.view.stdinInherited ? "inherit" : "ignore", "ignore", "pipe", "pipe", seccomp ? "pipe" : "ignore"],
      env: {},
      // A process group of its own, so that a kill reaches bwrap's forked sandbox process even before it is bound to die with bwrap.
      detached: true,
    });
    if (seccomp) (child.stdio[4] as import("node:stream").Writable).end(executorSeccompFilter());
    const channel = child.stdio[3] as import("node:net").Socket;
    return { child, input: channel, output: channel, group: true };
  }

  // ---- gVisor ----------------------------------------------------------------

  private makeState(): { base: string; state: string; runsc: string } {
    const base = mkdtempSync(join(tmpdir(), "uniwasm-gvisor-"));
    const state = join(base, "state");
    mkdirSync(state);
    return { base, state, runsc: findExecutable("runsc")! };
  }

  /** The OCI bundle for executors of this shape (the command line is in the config): written once. */
  private bundleFor(stackSizeMb: number, heapMb: number): string {
    const bundle = join(this.gvisor!.base, `bundle-s${stackSizeMb}-h${heapMb}`);
    if (existsSync(join(bundle, "config.json"))) return bundle;
    mkdirSync(join(bundle, "rootfs"), { recursive: true });
    const mounts: object[] = [];
    for (const [host, inside] of this.readOnlyMounts()) mounts.push({ destination: inside, type: "bind", source: host, options: ["rbind", "ro"] });
    for (const d of this.dirs) mounts.push({ destination: d.inside, type: "bind", source: d.host, options: ["rbind", d.readonly ? "ro" : "rw"] });
    const l = this.limits;
    const config = {
      ociVersion: "1.0.0",
      process: {
        terminal: false,
        user: { uid: 0, gid: 0 },
        // The channel is stdin/stdout: runsc passes no other descriptor into the sandbox.
        args: [executorFiles().node, ...this.entryArgs(0, 1, stackSizeMb, heapMb)],
        env: [],
        cwd: "/",
        rlimits: [
          { type: "RLIMIT_AS", hard: l.addressSpaceBytes, soft: l.addressSpaceBytes },
          { type: "RLIMIT_DATA", hard: l.dataBytes, soft: l.dataBytes },
          { type: "RLIMIT_CPU", hard: l.cpuSeconds + 60, soft: l.cpuSeconds },
          { type: "RLIMIT_NOFILE", hard: l.openFiles, soft: l.openFiles },
          { type: "RLIMIT_NPROC", hard: l.processes, soft: l.processes },
        ],
        noNewPrivileges: true,
      },
      root: { path: "rootfs", readonly: true },
      hostname: "uniwasm",
      mounts,
      linux: { namespaces: [{ type: "pid" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }, { type: "network" }] },
    };
    writeFileSync(join(bundle, "config.json"), JSON.stringify(config, null, 2));
    return bundle;
  }

  private startGvisor(stackSizeMb: number, heapMb: number): SandboxChild {
    const g = this.gvisor!;
    const bundle = this.bundleFor(stackSizeMb, heapMb);
    const id = `uniwasm-${process.pid}-${nextContainer++}`;
    const global = ["--rootless", "--network=none", "--root", g.state, "--ignore-cgroups"];
    const child: ChildProcess = spawn(g.runsc, [...global, "run", "--bundle", bundle, id], { stdio: ["pipe", "pipe", "pipe"], env: {} });
    // runsc leaves its sandbox behind when it is killed: delete the container once it is gone.
    const cleanup = (): void => {
      const d = spawn(g.runsc, [...global, "delete", "--force", id], { stdio: "ignore", env: {} });
      const done = new Promise<void>((r) => {
        d.on("error", () => r());
        d.on("exit", () => r());
      });
      this.deleting.add(done);
      void done.then(() => this.deleting.delete(done));
    };
    return { child, input: child.stdout!, output: child.stdin!, cleanup };
  }

  /** Ends the spares (executors belong to their pools, which close them) and the gVisor state. */
  async close(): Promise<void> {
    this.closed = true;
    const procs = [...this.spares.splice(0)];
    for (const p of procs) p.kill();
    await Promise.all(procs.map((p) => p.closed()));
    if (this.gvisor) {
      for (const p of this.live) p.kill();
      await Promise.all([...this.live].map((p) => p.closed()));
      await Promise.all([...this.deleting]);
      rmSync(this.gvisor.base, { recursive: true, force: true });
    }
  }
}
