/**
 * Entry point of a sandboxed executor process (the process and gvisor tiers).
 * It runs inside the wall, under bubblewrap (namespaces, seccomp allow-list,
 * rlimits) or gVisor, and hosts one ordinary executor: a worker thread
 * running executor-worker.js, driven through its job slot exactly as in the
 * node. This main thread only relays: requests come in over the channel
 * (wire.ts frames), go to the executor as jobs, and its results, output
 * chunks and trace lines go back the same way. So the kernel and the guest
 * run here, next to each other: host calls never cross the wall.
 *
 *   node process-executor-entry.js --in FD --out FD --stack MIB --heap MIB
 *
 * Deadlines are the node's: it kills this whole process (and with it the
 * sandbox) when a run is late, as it terminates a worker thread in the
 * isolate tier. If the worker dies for any other reason this process says
 * why and exits, and the node replaces it.
 */
import { Socket } from "node:net";
import { Executor, type Job, type Reply } from "../executor.js";
import type { WorkerReply, WorkerRequest } from "../protocol.js";
import type { Snapshot } from "../snapshot.js";
import { FrameDecoder, FrameEncoder, fromWireModule, fromWireSnapshot, toWireSnapshot, type WireModule, type WireSnapshot } from "./wire.js";

/** Messages only this hop has (besides WorkerReply): the executor is gone, or asks to be retired. */
export type EntryNotice = { id: 0; kind: "lost"; why: string } | { id: 0; kind: "retire"; why: string };

function flag(name: string, fallback?: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (v === undefined || !Number.isInteger(v) || v < 0) throw new Error(`process executor: --${name} N is required`);
  return v;
}

const inFd = flag("in");
const outFd = flag("out");
const stackSizeMb = flag("stack", 4);
const heapMb = flag("heap", 512);

const input = new Socket({ fd: inFd, readable: true, writable: inFd === outFd });
const output = inFd === outFd ? input : new Socket({ fd: outFd, readable: false, writable: true });
const encoder = new FrameEncoder();
const decoder = new FrameDecoder();

function send(msg: WorkerReply | EntryNotice): void {
  output.write(encoder.encode(msg));
}

function lost(why: string): never {
  send({ id: 0, kind: "lost", why });
  // Whatever is queued for the node goes first; then this process ends (the node replaces it).
  output.end(() => process.exit(70));
  setTimeout(() => process.exit(70), 1000).unref();
  throw new Error(why);
}

let announced = false;
const executor = new Executor({ stackSizeMb, heapMb }, {
  idle: () => {
    if (announced) return;
    announced = true;
    send({ id: 0, kind: "ready" });
  },
  dead: (_ex, why) => {
    if (why !== "closed") lost(`its worker thread ended: ${why}`);
  },
});

/** Snapshots this executor was sent, by id: later requests name them only. */
const snapshots = new Map<string, Snapshot>();
const queue: WorkerRequest[] = [];
let working = false;

async function toJob(req: WorkerRequest): Promise<Job> {
  const id = req.id;
  const body = req as WorkerRequest & { module?: { key: string; prepared?: unknown }; snapshot?: unknown };
  if (body.module?.prepared) body.module.prepared = await fromWireModule(body.module.prepared as WireModule);
  if (body.snapshot) {
    const w = body.snapshot as WireSnapshot | { id: string; pageData?: undefined };
    let s = snapshots.get(w.id);
    if (w.pageData) snapshots.set(w.id, (s = fromWireSnapshot(w as WireSnapshot)));
    if (!s) throw new Error(`process executor: snapshot ${w.id} was never sent here`);
    body.snapshot = s;
  }
  return {
    build: () => body,
    // The node enforces deadlines by ending this process.
    timeoutMs: Infinity,
    onOutput: (stream, chunk) => send({ id, kind: "output", stream, chunk }),
    onTrace: (line) => send({ id, kind: "trace", line }),
    resolve: (r: Reply) => {
      const done: WorkerReply & { kind: "done" } = { id, kind: "done" };
      if (r.outcome) done.outcome = r.outcome;
      if (r.value !== undefined) done.value = r.value;
      if (r.snapshot) done.snapshot = toWireSnapshot(r.snapshot) as unknown as Snapshot;
      if (r.stats) done.stats = r.stats;
      send(done);
      next();
    },
    reject: (e: Error) => {
      send({ id, kind: "error", name: e.name, message: e.message });
      next();
    },
  };
}

function next(): void {
  working = false;
  const req = queue.shift();
  if (!req) return;
  working = true;
  toJob(req).then(
    (job) => executor.start(job),
    (err: Error) => {
      send({ id: req.id, kind: "error", name: err.name, message: err.message });
      next();
    },
  );
}

input.on("data", (chunk: Buffer) => {
  let msgs: unknown[];
  try {
    msgs = decoder.push(chunk);
  } catch (err) {
    lost(`the node sent a malformed frame: ${(err as Error).message}`);
  }
  for (const m of msgs) queue.push(m as WorkerRequest);
  if (!working) next();
});
// The node went away: nothing is left to serve.
input.on("end", () => process.exit(0));
input.on("error", () => process.exit(0));
output.on("error", () => process.exit(0));

// RLIMIT_CPU's soft limit: finish the current request, then let the node replace this process.
process.on("SIGXCPU", () => send({ id: 0, kind: "retire", why: "CPU time limit (RLIMIT_CPU soft limit) reached" }));
