/**
 * Entry point of an executor's worker thread (one V8 isolate). It keeps the
 * prepared modules it was sent and the warm reactor instances it hosts, and
 * runs one request at a time: a guest is synchronous, and a blocking host
 * call parks this thread (Atomics.wait) while the main thread does the I/O.
 */
import { parentPort, workerData } from "node:worker_threads";
import { SyncIoClient } from "../kernel/io-bridge.js";
import {
  callReactor,
  initializeForSnapshot,
  runCommand,
  startReactor,
  type GuestHooks,
  type LiveGuest,
  type PreparedModule,
} from "./guest.js";
import type { ModuleRef, WorkerData, WorkerReply, WorkerRequest } from "./protocol.js";
import { captureSnapshot } from "./snapshot.js";
import { MemoryRecycler } from "./memory-recycling.js";

if (!parentPort) throw new Error("executor-worker.js runs only as a worker thread");
const port = parentPort;
const data = (workerData ?? {}) as WorkerData;
const io = data.ioPort && data.ioSignal ? new SyncIoClient(data.ioPort, data.ioSignal) : undefined;

const modules = new Map<string, PreparedModule>();
const recycler = new MemoryRecycler();
/** Clean-up left for after the reply (see GuestHooks.deferred). */
const deferred: (() => void)[] = [];
const reactors = new Map<number, LiveGuest>();


function reply(msg: WorkerReply): void {
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
    onOutput: (stream, chunk) => reply({ id, kind: "output", stream, chunk }),
    onTrace: (line) => reply({ id, kind: "trace", line }),
  };
  if (io) hooks.io = io;
  hooks.recycler = recycler;
  hooks.deferred = deferred;
  return hooks;
}

function handle(req: WorkerRequest): void {
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
      reply({ id: req.id, kind: "done", stats: { modules: modules.size, instances: reactors.size, rssBytes: process.memoryUsage.rss() } });
      return;
    }
  }
}

port.on("message", (req: WorkerRequest) => {
  try {
    handle(req);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    reply({ id: req.id, kind: "error", name: e.name, message: e.message });
  }
  for (const task of deferred.splice(0)) task();
});

// Everything is loaded and listening: the pool may send work now.
port.postMessage({ id: 0, kind: "ready" } satisfies WorkerReply);
