/**
 * Entry point of a sandboxed executor process (the process and gvisor tiers).
 * It runs inside the wall, under bubblewrap (namespaces, seccomp allow-list,
 * rlimits) or gVisor, and hosts one ordinary executor: a worker thread
 * running executor-worker.js, which serves the channel to the node itself
 * (channel-io.ts: it reads each request and writes each reply and output
 * chunk, wire.ts frames). So the kernel and the guest run here, next to each
 * other: host calls never cross the wall, and a request wakes only the thread
 * that runs it. This main thread says when the executor is ready, and why it
 * is gone or wants to be retired.
 *
 *   node process-executor-entry.js --in FD --out FD --stack MIB --heap MIB
 *
 * Deadlines are the node's: it kills this whole process (and with it the
 * sandbox) when a run is late, as it terminates a worker thread in the
 * isolate tier. If the worker dies for any other reason this process says
 * why and exits, and the node replaces it.
 */
import { Executor } from "../executor.js";
import type { ExecutorChannel, WorkerReply } from "../protocol.js";
import { ChannelWriter } from "./channel-io.js";

/** Messages only this hop has (besides WorkerReply): the executor is gone, or asks to be retired. */
export type EntryNotice = { id: 0; kind: "lost"; why: string } | { id: 0; kind: "retire"; why: string };

/** How long "lost" waits for a frame the worker was writing when it died, ms. */
const LOST_LOCK_WAIT_MS = 200;

function flag(name: string, fallback?: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (v === undefined || !Number.isInteger(v) || v < 0) throw new Error(`process executor: --${name} N is required`);
  return v;
}

const channel: ExecutorChannel = { in: flag("in"), out: flag("out"), writeLock: new SharedArrayBuffer(4) };
const stackSizeMb = flag("stack", 4);
const heapMb = flag("heap", 512);
const writer = new ChannelWriter(channel);

function send(msg: WorkerReply | EntryNotice, lockWaitMs?: number): void {
  // The node has gone: nothing is left to serve.
  if (!writer.write(msg, lockWaitMs)) process.exit(0);
}

let announced = false;
new Executor({ stackSizeMb, heapMb, channel }, {
  idle: () => {
    if (announced) return;
    announced = true;
    send({ id: 0, kind: "ready" });
  },
  dead: (_ex, why) => {
    // Exit code 0: the worker saw the node close the channel.
    if (why === "worker exited with code 0") process.exit(0);
    send({ id: 0, kind: "lost", why: `its worker thread ended: ${why}` }, LOST_LOCK_WAIT_MS);
    process.exit(70);
  },
});

// RLIMIT_CPU's soft limit: finish the current request, then let the node replace this process.
process.on("SIGXCPU", () => send({ id: 0, kind: "retire", why: "CPU time limit (RLIMIT_CPU soft limit) reached" }));
