/**
 * Entry point of an executor's worker thread (one V8 isolate). It keeps the
 * prepared modules it was sent and the warm reactor instances it hosts, and
 * runs one request at a time: a guest is synchronous, and a blocking host
 * call parks this thread (Atomics.wait) while the main thread does the I/O.
 *
 * Between requests the thread parks on its job slot (job-slot.ts) rather than
 * in the event loop: a request wakes it directly, without a message event.
 * It still gives the event loop a turn now and then (when idle: after
 * PARK_MIN_MS, then less and less often up to PARK_MAX_MS; when busy: every
 * TURN_MS), so that V8's and Node's own tasks on this thread run.
 *
 * In a sandboxed executor process (tiers/) the thread serves the process's
 * channel instead (WorkerData.channel, tiers/channel-io.ts): it blocks in
 * read() for a request and writes every reply itself.
 */
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import { SyncIoClient } from "../kernel/io-bridge.js";
import { loadExtensionModules } from "./extension-modules.js";
import {
  callReactor,
  initializeForSnapshot,
  runCommand,
  startReactor,
  type GuestHooks,
  type LiveGuest,
  type PreparedModule,
} from "./guest.js";
import type { HeldOutput, ModuleRef, WorkerData, WorkerReply, WorkerRequest } from "./protocol.js";
import { captureSnapshot } from "./snapshot.js";
import { MemoryRecycler } from "./memory-recycling.js";
import { DONE, JOB, LENGTH, openJobSlot, SlotReader, SlotWriter, STATE, VIA_PORT, VIA_SLOT, WHERE } from "./job-slot.js";
import { OUTPUT_PIECE_BYTES, OutputRingWriter } from "./output-ring.js";

/** Park on the slot before the event loop gets a turn, ms: short after work (V8 may have posted GC tasks), doubling while idle. */
const PARK_MIN_MS = 100;
const PARK_MAX_MS = 2000;
/** Longest run of back-to-back requests before the event loop gets a turn, ms. */
const TURN_MS = 20;

if (!parentPort) throw new Error("executor-worker.js runs only as a worker thread");
const port = parentPort;
const data = (workerData ?? {}) as WorkerData;
const io = data.ioPort && data.ioSignal ? new SyncIoClient(data.ioPort, data.ioSignal) : undefined;
/** A sandboxed executor process's channel, served by this thread (loaded only there). */
const channel = data.channel ? new (await import("./tiers/channel-io.js")).ExecutorChannelEnd(data.channel) : undefined;
/** Extensions the pool offers beside the built-ins: loaded before the executor says it is ready. */
let offered: Awaited<ReturnType<typeof loadExtensionModules>> = [];
/** Why the pool's extension modules could not be loaded: every guest request then fails with it (rather than a crash loop). */
let extensionModulesError: string | undefined;
try {
  offered = await loadExtensionModules(data.extensionModules ?? []);
} catch (err) {
  extensionModulesError = `the pool's extension modules could not be loaded: ${(err as Error).message}`;
}

const modules = new Map<string, PreparedModule>();
const recycler = new MemoryRecycler();
/** Clean-up left for after the reply (see GuestHooks.deferred). */
const deferred: (() => void)[] = [];
const reactors = new Map<number, LiveGuest>();
const slot = openJobSlot(data.slot);
const reader = new SlotReader(slot);
const writer = new SlotWriter(slot);
/** The request being handled. */
let currentId = 0;
/** Messages of this request posted so far (output chunks, trace lines): the pool holds the result until it has them all. */
let streamed = 0;
/** The request has its result (the slot may already hold the next request). */
let replied = false;
/**
 * Output of the current run held back to travel with its result (one slot
 * write instead of a postMessage per chunk), until it passes `holdBytes`;
 * then everything held is posted and the rest streams.
 */
const held: HeldOutput[] = [];
let heldBytes = 0;
let holdBytes = 0;
/** Where streamed output goes on its way to the pool (a thread executor's; a request may bring a new one). */
let ring = data.outputRing ? new OutputRingWriter(data.outputRing) : undefined;

/** Output chunks and trace lines: streamed while the guest runs (small output of a run held for its result). */
function stream(msg: WorkerReply): void {
  // A warm reactor's kernel keeps the id of the request that started it: the pool ignores
  // those messages during later calls, so they must not count as this request's.
  if (msg.id !== currentId) {
    if (msg.kind === "output" && ring) msg.chunk = msg.chunk.slice(); // a borrowed view (hooksFor): a copy, off the ring
    return void (channel ? channel.send(msg) : port.postMessage(msg));
  }
  if (msg.kind === "output" && holdBytes > 0) {
    held.push({ stream: msg.stream, chunk: ring ? msg.chunk.slice() : msg.chunk });
    heldBytes += msg.chunk.length;
    if (heldBytes <= holdBytes) return;
    holdBytes = 0;
    for (const h of held) post({ id: currentId, kind: "output", stream: h.stream, chunk: h.chunk });
    held.length = 0;
    return;
  }
  post(msg);
}

function post(msg: WorkerReply): void {
  if (msg.kind === "output" && ring) return postToRing(ring, msg.id, msg.stream, msg.chunk);
  streamed++;
  if (channel) channel.send(msg);
  else port.postMessage(msg);
}

/**
 * Output through the ring (output-ring.ts): copied from the guest's memory
 * into it, in pieces, each posted as where it is. With the ring full this
 * thread parks until the pool gives pieces back (its reader is slow), the
 * guest's deadline running.
 */
function postToRing(r: OutputRingWriter, id: number, name: "stdout" | "stderr", chunk: Uint8Array): void {
  for (let off = 0; off < chunk.length; off += OUTPUT_PIECE_BYTES) {
    const piece = r.put(chunk.subarray(off, Math.min(chunk.length, off + OUTPUT_PIECE_BYTES)));
    streamed++;
    port.postMessage({ id, kind: "output-ring", stream: name, at: piece.at, length: piece.length, span: piece.span } satisfies WorkerReply);
  }
}

/** The result of the current request: in the slot when it fits, else posted. */
function reply(msg: WorkerReply): void {
  replied = true;
  if (msg.kind === "done" || msg.kind === "error") {
    if (streamed > 0) msg.streamed = streamed;
    if (held.length > 0) msg.output = held.splice(0);
    heldBytes = holdBytes = 0;
  }
  // On a channel everything travels in order on one stream: the result never overtakes its output.
  if (channel) return void channel.send(msg);
  const c = slot.control;
  const length = writer.write(msg);
  if (length >= 0) {
    c[WHERE] = VIA_SLOT;
    c[LENGTH] = length;
    Atomics.store(c, STATE, DONE);
    Atomics.notify(c, STATE);
    return;
  }
  // DONE before posting: once the pool has the message it may write the next request at once.
  c[WHERE] = VIA_PORT;
  Atomics.store(c, STATE, DONE);
  Atomics.notify(c, STATE);
  // Cloning a typed array costs several µs even when empty: empty output travels as nothing.
  if (msg.kind === "done" && msg.outcome) {
    const o = msg.outcome as { stdout?: Uint8Array; stderr?: Uint8Array };
    if (o.stdout?.length === 0) delete o.stdout;
    if (o.stderr?.length === 0) delete o.stderr;
  }
  port.postMessage(msg);
}

function moduleFor(ref: ModuleRef): PreparedModule {
  if (ref.prepared) {
    modules.set(ref.key, ref.prepared);
    return ref.prepared;
  }
  const m = modules.get(ref.key);
  if (!m) throw new Error(`executor has no module ${ref.key}: the pool must send it first`);
  return m;
}

function hooksFor(id: number): GuestHooks {
  const hooks: GuestHooks = {
    onOutput: (name, chunk) => stream({ id, kind: "output", stream: name, chunk }),
    // Trace lines belong to the request running now (a warm reactor's later calls trace too).
    onTrace: (line) => stream({ id: currentId, kind: "trace", line }),
  };
  if (io) {
    hooks.io = io;
    hooks.host = io;
  }
  if (offered.length > 0) hooks.extensions = offered;
  // Output is copied into the ring (or a held copy): the kernel's own view will do.
  if (ring) hooks.borrowsOutput = true;
  hooks.recycler = recycler;
  hooks.deferred = deferred;
  return hooks;
}

function handle(req: WorkerRequest): void {
  if (extensionModulesError && (req.op === "run" || req.op === "reactor" || req.op === "snapshot")) throw new Error(extensionModulesError);
  switch (req.op) {
    case "run": {
      const outcome = runCommand(moduleFor(req.module), req.options, req.limits, hooksFor(req.id), req.snapshot);
      reply({ id: req.id, kind: "done", outcome });
      return;
    }
    case "reactor": {
      const { guest, outcome } = startReactor(moduleFor(req.module), req.options, req.limits, hooksFor(req.id), req.snapshot);
      if (guest) reactors.set(req.instanceId, guest);
      reply({ id: req.id, kind: "done", outcome });
      return;
    }
    case "call": {
      const guest = reactors.get(req.instanceId);
      if (!guest) throw new Error(`no reactor instance ${req.instanceId} on this executor`);
      guest.limits = req.limits;
      const { value, outcome } = callReactor(guest, req.name, req.args, req.result);
      // An instance that trapped or hit a limit may hold broken state: never call it again.
      if (guest.ended) {
        reactors.delete(req.instanceId);
        guest.kernel.close();
      }
      reply(value === undefined ? { id: req.id, kind: "done", outcome } : { id: req.id, kind: "done", outcome, value });
      return;
    }
    case "drop": {
      reactors.get(req.instanceId)?.kernel.close();
      reactors.delete(req.instanceId);
      reply({ id: req.id, kind: "done" });
      return;
    }
    case "snapshot": {
      const prepared = moduleFor(req.module);
      const init = initializeForSnapshot(prepared, req.options, req.limits);
      if (init.outcome.reason !== "exit") {
        init.guest.kernel.close();
        reply({ id: req.id, kind: "done", outcome: init.outcome });
        return;
      }
      const snapshot = captureSnapshot({
        id: req.snapshotId,
        moduleKey: prepared.key,
        baseline: init.baseline,
        baselineTables: init.baselineTables,
        memory: init.guest.memory!,
        exports: init.guest.instance.exports,
        globals: prepared.snapshotGlobals,
        initializer: init.initializer,
        initMicros: init.initMicros,
      });
      init.guest.kernel.close();
      reply({ id: req.id, kind: "done", outcome: init.outcome, snapshot });
      return;
    }
    case "forget": {
      modules.delete(req.key);
      reply({ id: req.id, kind: "done" });
      return;
    }
    case "stats": {
      reply({ id: req.id, kind: "done", stats: { modules: modules.size, instances: reactors.size, rssBytes: residentBytes() } });
      return;
    }
  }
}

/** The process's RSS; 0 where it cannot be read (no /proc). */
function residentBytes(): number {
  try {
    return process.memoryUsage.rss();
  } catch {
    return 0;
  }
}

function runJob(): void {
  const c = slot.control;
  const req = (c[WHERE] === VIA_SLOT ? reader.read(c[LENGTH]) : receiveMessageOnPort(port)?.message) as WorkerRequest | undefined;
  if (!req) throw new Error("the job slot says a request was posted, but none is waiting");
  runRequest(req);
}

function runRequest(req: WorkerRequest): void {
  if (req.outputRing) ring = new OutputRingWriter(req.outputRing);
  currentId = req.id;
  streamed = 0;
  replied = false;
  held.length = 0;
  heldBytes = 0;
  holdBytes = req.op === "run" ? req.holdOutput ?? 0 : 0;
  try {
    handle(channel ? channel.fromWire(req) : req);
    if (!replied) throw new Error(`request ${req.op} ended without a result`);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    if (!replied) reply({ id: req.id, kind: "error", name: e.name, message: e.message });
  }
  for (let i = 0; i < deferred.length; i++) deferred[i]!();
  deferred.length = 0;
}

let park = PARK_MIN_MS;

function serve(): void {
  const c = slot.control;
  const turn = performance.now();
  for (;;) {
    const state = Atomics.load(c, STATE);
    if (state === JOB) {
      runJob();
      park = PARK_MIN_MS;
      if (performance.now() - turn > TURN_MS) break;
    } else if (Atomics.wait(c, STATE, state, park) === "timed-out") {
      park = Math.min(park * 2, PARK_MAX_MS);
      break;
    }
  }
  setImmediate(serve);
}

let lastTurn = performance.now();

/**
 * The channel's loop: runs the requests already received back to back, and
 * blocks in read() for more only after the event loop has had a turn
 * recently (an idle executor process has nothing else to do: no timers, no
 * messages; V8's tasks get their turn before it sleeps).
 */
function serveChannel(): void {
  const ch = channel!;
  for (;;) {
    const now = performance.now();
    let req = ch.nextReceived();
    if (!req) {
      if (now - lastTurn > PARK_MIN_MS) break;
      req = ch.next();
      if (!req) process.exit(0); // the node closed the channel: nothing is left to serve
    }
    runRequest(req);
    if (performance.now() - lastTurn > TURN_MS) break;
  }
  setImmediate(() => {
    lastTurn = performance.now();
    serveChannel();
  });
}

// Everything is loaded: the pool may send work now.
port.postMessage({ id: 0, kind: "ready" } satisfies WorkerReply);
setImmediate(channel ? serveChannel : serve);
