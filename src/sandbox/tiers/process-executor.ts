/**
 * The node's handle on one executor that lives in a sandboxed child process
 * (process tier: bubblewrap; gvisor tier: runsc). To the pool it is an
 * executor like a worker thread (ExecutorHandle): one request at a time, the
 * same WorkerRequest/WorkerReply messages (protocol.ts) in the job slot's
 * encoding, carried over the child's channel instead of shared memory
 * (wire.ts). The child hosts the kernel and the guest (process-executor-entry.ts).
 *
 * - Deadlines: the whole child is killed (SIGKILL) when a run is late, as a
 *   worker thread is terminated; the pool replaces it.
 * - Crashes: if the child dies for any other reason (a seccomp kill, an
 *   rlimit, kill -9), its running request ends with `executor_lost` and its
 *   pinned work is rejected, exactly as when a worker thread dies.
 * - Output a request wants on a host descriptor ("inherit", {fd}) is
 *   streamed out and written here: the sandbox never holds the node's
 *   descriptors. Host directories are rewritten to where the sandbox mounts them.
 */
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, writeSync } from "node:fs";
import type { Readable, Writable } from "node:stream";
import type { PortableKernelOptions } from "../guest.js";
import { DeadlineTimer } from "../deadline-timer.js";
import { deadlineOutcome, ExecutorLostError, newExecutorId, type ExecutorEvents, type ExecutorHandle, type Job, type Reply } from "../executor.js";
import type { HeldOutput, WorkerReply, WorkerRequest } from "../protocol.js";
import type { Snapshot } from "../snapshot.js";
import type { EntryNotice } from "./process-executor-entry.js";
import { FrameDecoder, FrameEncoder, fromWireSnapshot, toWireModule, toWireSnapshot, type WireSnapshot } from "./wire.js";

/** Bytes of the child's stderr kept, to say why it died. */
const STDERR_TAIL = 4096;

type Incoming = WorkerReply | EntryNotice;

/**
 * One sandboxed child process speaking the protocol: spawned (possibly ahead
 * of need, as a warm spare) by a launcher, then adopted by a ProcessExecutor.
 */
/** A started child and its channel (see SandboxLauncher). */
export interface SandboxChild {
  child: ChildProcess;
  input: Readable;
  output: Writable;
  /** What the launcher must clean up once the child is gone (gVisor's container state). */
  cleanup?: () => void;
  /** The child leads a process group of its own (bubblewrap): a kill ends the whole group. */
  group?: boolean;
}

export class SandboxProcess {
  ready = false;
  /** When it reported ready (Unix time, s). */
  readyAt = Infinity;
  exited = false;
  /** Why it exited, in words (exit code or signal, and what the child said). */
  exitWhy = "";
  private c: SandboxChild | undefined;
  private readonly encoder = new FrameEncoder();
  private readonly decoder = new FrameDecoder();
  private stderrTail = "";
  private lostWhy = "";
  private listener: ((msg: Incoming) => void) | undefined;
  /** Consumers the channel's reading waits for (see holdInput). */
  private holds = 0;
  private exitListener: ((why: string) => void) | undefined;
  private readonly readyWaiters: (() => void)[] = [];
  private readonly exitWaiters: (() => void)[] = [];
  private killed = false;

  /** Starts the child now, or after `delayMs` (a launcher backing off after sandboxes that failed to boot). */
  constructor(start: () => SandboxChild, delayMs = 0) {
    if (delayMs <= 0) this.attach(start());
    else {
      const t = setTimeout(() => {
        if (this.killed) this.onExit("closed before it started");
        else this.attach(start());
      }, delayMs);
      t.unref();
    }
  }

  private attach(c: SandboxChild): void {
    this.c = c;
    c.input.on("data", (chunk: Buffer) => this.onData(chunk));
    c.input.on("error", () => {});
    c.output.on("error", () => {});
    // Every descriptor the child shares (its stderr, bwrap's seccomp pipe) may be reset when it is killed: the exit says why.
    for (const s of c.child.stdio) (s as NodeJS.EventEmitter | null)?.on("error", () => {});
    c.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL);
    });
    c.child.on("error", (err) => this.onExit(`could not start: ${err.message}`));
    c.child.on("exit", (code, signal) => this.onExit(describeExit(code, signal)));
  }

  get pid(): number | undefined {
    return this.c?.child.pid;
  }

  /** The last few KiB the child wrote to stderr. */
  get stderr(): string {
    return this.stderrTail;
  }

  private onData(chunk: Buffer): void {
    let msgs: unknown[];
    try {
      msgs = this.decoder.push(chunk);
    } catch (err) {
      this.kill();
      this.onExit(`sent a malformed frame: ${(err as Error).message}`);
      return;
    }
    for (const m of msgs) {
      const msg = m as Incoming;
      if (msg.kind === "ready") {
        this.ready = true;
        this.readyAt = Date.now() / 1000;
        for (const w of this.readyWaiters.splice(0)) w();
      } else if (msg.kind === "lost") {
        this.lostWhy = msg.why;
        continue;
      }
      this.listener?.(msg);
    }
  }

  private onExit(how: string): void {
    if (this.exited) return;
    this.exited = true;
    const said = this.lostWhy || lastLine(this.stderrTail);
    this.exitWhy = said ? `${how}: ${said}` : how;
    for (const w of this.readyWaiters.splice(0)) w();
    for (const w of this.exitWaiters.splice(0)) w();
    this.c?.cleanup?.();
    this.exitListener?.(this.exitWhy);
  }

  /** Resolves when the child has booted (or is gone). */
  whenReady(): Promise<void> {
    if (this.ready || this.exited) return Promise.resolve();
    return new Promise((r) => this.readyWaiters.push(r));
  }

  adopt(onMessage: (msg: Incoming) => void, onExit: (why: string) => void): void {
    this.listener = onMessage;
    this.exitListener = onExit;
    if (this.exited) queueMicrotask(() => onExit(this.exitWhy));
  }

  /**
   * Stops reading the child's channel until `until` settles (a consumer
   * backed up, or its tenant paced): the channel's buffer fills, the child's
   * writes block, and its guest waits, as a thread executor's does on its
   * output ring. Holds nest; reading resumes when the last one settles.
   */
  holdInput(until: Promise<void>): void {
    if (this.holds++ === 0) this.c?.input.pause();
    const release = (): void => {
      if (--this.holds === 0) this.c?.input.resume();
    };
    void until.then(release, release);
  }

  /** Sends a message; the child must be ready (so it has started). */
  send(msg: unknown): void {
    if (!this.c) throw new Error("the sandboxed executor has not started");
    this.c.output.write(this.encoder.encode(msg));
  }

  kill(): void {
    this.killed = true;
    if (this.exited || !this.c) return;
    const pid = this.c.child.pid;
    // Killed while it boots, bwrap leaves the sandbox's first process behind (forked, waiting for its
    // user namespace's uid map, not yet bound to die with its parent): the group's kill reaches it too.
    if (this.c.group && pid) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        this.c.child.kill("SIGKILL");
      }
    } else this.c.child.kill("SIGKILL");
    for (const s of this.c.child.stdio) (s as import("node:stream").Duplex | null)?.destroy();
  }

  /** Waits for the exit (after kill or the channel's end). */
  async closed(): Promise<void> {
    if (this.exited) return;
    await new Promise<void>((r) => this.exitWaiters.push(r));
  }
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `killed by ${signal}`;
  // bubblewrap exits with 128+N when the sandboxed process dies of signal N.
  if (code === 128 + 31) return "killed by SIGSYS (a system call outside the seccomp allow-list)";
  if (code === 128 + 9) return "killed by SIGKILL";
  if (code === 128 + 24) return "killed by SIGXCPU (RLIMIT_CPU)";
  return `exited with code ${code}`;
}

function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.length > 0 ? lines[lines.length - 1]!.slice(0, 300) : "";
}

/** A request asks for something its sandbox was not built with (a host directory, listeners): the run ends with link_error. */
export class SandboxRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SandboxRefusal";
  }
}

/** What a request may ask of the sandbox it lands in. */
export interface SandboxView {
  /** Maps a host directory to where the sandbox mounts it; throws when it is not granted there. */
  mapDir(host: string, readonly: boolean): string;
  /** The child's fd 0 is the node's (so a guest's stdin "inherit" means the same there). */
  stdinInherited: boolean;
}

export class ProcessExecutor implements ExecutorHandle {
  readonly id = newExecutorId();
  readonly modules = new Set<string>();
  readonly instances = new Set<number>();
  readonly pinned: Job[] = [];
  /** Snapshots sent to this child (later requests send only their id). */
  private readonly snapshots = new Set<string>();
  current: Job | undefined;
  alive = true;
  ready = false;
  killedAtDeadline = false;
  /** The executor inside ran out of V8 heap (its request got memory_limit, then the process ended). */
  outOfHeap = false;
  /** The child process has exited. */
  exited = false;
  /** The child asked to be replaced once idle (its RLIMIT_CPU soft limit). */
  retiring = false;
  idleSince = Date.now();
  private nextId = 1;
  private currentId = 0;
  private readonly deadline = new DeadlineTimer(() => this.deadlineReached());
  /** Output the current request asked for on a host descriptor: stream -> descriptor. */
  private hostOutput: { stdout?: number; stderr?: number } = {};

  constructor(
    readonly stackSizeMb: number,
    private readonly events: ExecutorEvents,
    readonly proc: SandboxProcess,
    readonly extra: boolean,
    private readonly view: SandboxView,
  ) {
    proc.adopt(
      (msg) => this.onMessage(msg),
      (why) => {
        this.exited = true;
        if (/V8 heap limit/.test(why)) this.outOfHeap = true;
        this.die(why);
        this.events.exited?.(this);
      },
    );
    if (proc.ready) queueMicrotask(() => this.onMessage({ id: 0, kind: "ready" }));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  start(job: Job): void {
    if (this.current) throw new Error(`executor ${this.id} is busy`);
    const id = this.nextId++;
    this.current = job;
    this.currentId = id;
    this.deadline.start(job.timeoutMs);
    let wire: unknown;
    try {
      wire = this.toWire(job.build(this) as WorkerRequest, id);
      this.proc.send(wire);
    } catch (err) {
      // Nothing reached the child: this request fails, the executor stays.
      this.finish();
      job.reject(err as Error);
      if (this.alive) this.events.idle(this);
    }
  }

  /** The request as it crosses: modules as bytes, snapshots once, host paths as the sandbox sees them. */
  private toWire(req: WorkerRequest, id: number): unknown {
    const out = { ...req, id } as Record<string, unknown>;
    const r = req as WorkerRequest & { module?: { key: string; prepared?: import("../modules.js").PreparedModule }; snapshot?: Snapshot; options?: PortableKernelOptions };
    if (r.module?.prepared) out.module = { key: r.module.key, prepared: toWireModule(r.module.prepared) };
    if (r.snapshot) {
      if (this.snapshots.has(r.snapshot.id)) out.snapshot = { id: r.snapshot.id };
      else {
        out.snapshot = toWireSnapshot(r.snapshot);
        this.snapshots.add(r.snapshot.id);
      }
    }
    this.hostOutput = {};
    if (r.options) out.options = this.portableOptions(r.options);
    return out;
  }

  private portableOptions(o: PortableKernelOptions): PortableKernelOptions {
    const p: PortableKernelOptions = { ...o };
    if (o.listeners && o.listeners.length > 0) {
      throw new SandboxRefusal("socket listeners are not available on the process and gvisor tiers yet (the sandbox has no network): run this guest on the isolate tier");
    }
    if (o.extensions && o.extensions.provided.length > 0) {
      // Their providers live in the node; the channel does not carry host calls (yet): refused rather than half-working.
      throw new SandboxRefusal(`host extensions with providers in the node (${o.extensions.provided.join(", ")}) are not available on the sandboxed tiers yet: run this guest on the isolate tier`);
    }
    if (o.preopens) {
      p.preopens = o.preopens.map((d) => ("host" in d ? { ...d, host: this.view.mapDir(d.host, d.readonly === true) } : d));
    }
    for (const name of ["stdout", "stderr"] as const) {
      const spec = o[name];
      if (spec === "inherit") this.hostOutput[name] = name === "stdout" ? 1 : 2;
      else if (typeof spec === "object" && spec !== null) this.hostOutput[name] = spec.fd;
      else continue;
      p[name] = "stream";
    }
    const stdin = o.stdin;
    const fromFd = stdin === "inherit" || (typeof stdin === "object" && stdin !== null && !(stdin instanceof Uint8Array));
    if (fromFd && !(this.view.stdinInherited && (stdin === "inherit" || stdin.fd === 0))) {
      throw new SandboxRefusal("this sandbox was not given the node's stdin: pass the guest's stdin as bytes");
    }
    return p;
  }

  private deadlineReached(): void {
    const job = this.current;
    if (!job || !this.alive) return;
    // As with a worker thread: a spinning guest is stopped by ending its executor, here the whole sandbox.
    this.killedAtDeadline = true;
    this.current = undefined;
    job.resolve({ outcome: deadlineOutcome(job) });
    this.proc.kill();
    this.die("terminated at a deadline");
  }

  private onMessage(msg: Incoming): void {
    if (msg.kind === "ready") {
      if (this.ready) return;
      this.ready = true;
      if (this.alive && !this.current) this.events.idle(this);
      return;
    }
    if (msg.kind === "retire") {
      this.retiring = true;
      if (!this.current) void this.close();
      return;
    }
    if (msg.kind === "lost") return;
    const job = this.current;
    if (!job || msg.id !== this.currentId) return;
    switch (msg.kind) {
      case "output": {
        const fd = this.hostOutput[msg.stream];
        if (fd !== undefined) return writeAll(fd, msg.chunk);
        const done = job.onOutput?.(msg.stream, msg.chunk);
        if (done instanceof Promise) this.proc.holdInput(done);
        return;
      }
      case "trace":
        job.onTrace?.(msg.line);
        return;
      case "error":
        this.finish();
        this.deliverHeld(job, msg.output);
        job.reject(Object.assign(new Error(msg.message), { name: msg.name }));
        break;
      case "done": {
        this.finish();
        this.deliverHeld(job, msg.output);
        const r: Reply = {};
        if (msg.outcome) {
          msg.outcome.stdout ??= new Uint8Array(0);
          msg.outcome.stderr ??= new Uint8Array(0);
          r.outcome = msg.outcome;
        }
        if (msg.value !== undefined) r.value = msg.value;
        if (msg.snapshot) r.snapshot = fromWireSnapshot(msg.snapshot as unknown as WireSnapshot);
        // The sandbox has no /proc: its memory is measured from here, the whole process tree.
        if (msg.stats) r.stats = { ...msg.stats, rssBytes: this.proc.pid ? processTreeRss(this.proc.pid) : 0 };
        job.resolve(r);
        break;
      }
    }
    if (!this.alive) return;
    if (this.retiring) void this.close();
    else this.events.idle(this);
  }

  /** Output the executor held back and sent with the result (a run's holdOutput): delivered before it. */
  private deliverHeld(job: Job, output: HeldOutput[] | undefined): void {
    if (!output) return;
    for (const h of output) {
      const fd = this.hostOutput[h.stream];
      if (fd !== undefined) writeAll(fd, h.chunk);
      else job.onOutput?.(h.stream, h.chunk);
    }
  }

  private finish(): void {
    this.deadline.clear();
    this.current = undefined;
    this.idleSince = Date.now();
  }

  private die(why: string): void {
    if (!this.alive) return;
    this.alive = false;
    this.deadline.stop();
    this.proc.kill();
    const what = `executor ${this.id} (sandboxed process ${this.proc.pid ?? "?"})`;
    const job = this.current;
    this.current = undefined;
    if (job) job.reject(new ExecutorLostError(`${what} lost while running a request: ${why}`, true));
    for (const p of this.pinned.splice(0)) p.reject(new ExecutorLostError(`${what} lost before the request started: ${why}`, false));
    this.events.dead(this, why);
  }

  async close(waitMs = Infinity): Promise<void> {
    this.die("closed");
    if (this.exited) return;
    if (!Number.isFinite(waitMs)) return this.proc.closed();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.proc.closed(), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }
}

function writeAll(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.length) {
    try {
      off += writeSync(fd, chunk, off, chunk.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EAGAIN") continue;
      return; // a closed terminal or pipe: the guest's output has nowhere to go
    }
  }
}

/** Resident bytes of a process and all its descendants (Linux /proc; 0 where it cannot be read). */
export function processTreeRss(pid: number): number {
  let total = 0;
  const seen = new Set<number>();
  const visit = (p: number): void => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) total += Number(m[1]) * 1024;
      for (const t of readdirSync(`/proc/${p}/task`)) {
        for (const c of readFileSync(`/proc/${p}/task/${t}/children`, "utf8").split(" ")) if (c.trim()) visit(Number(c));
      }
    } catch {
      // exited meanwhile
    }
  };
  visit(pid);
  return total;
}
