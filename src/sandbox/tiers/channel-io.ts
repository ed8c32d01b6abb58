/**
 * The executor's end of a sandboxed executor process's channel (wire.ts
 * frames over a socketpair or pipe), used by its worker thread directly: it
 * blocks in read() for the next request and writes each reply itself, so a
 * request crosses to the thread that runs it with one wake-up, and its
 * result comes back the same way (no relay through the process's main
 * thread, no job slot in between).
 *
 * Both threads of the process write frames (the main thread: "ready", "lost",
 * "retire"); a shared lock keeps each frame whole on the stream.
 */
import { readSync, writeSync } from "node:fs";
import type { ExecutorChannel, WorkerReply, WorkerRequest } from "../protocol.js";
import type { Snapshot } from "../snapshot.js";
import { FrameDecoder, FrameEncoder, fromWireModule, fromWireSnapshot, toWireSnapshot, type WireModule, type WireSnapshot } from "./wire.js";

const READ_BYTES = 64 * 1024;
/** A descriptor that is non-blocking after all (EAGAIN): wait this long, ms, before trying again. */
const RETRY_MS = 1;

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Writes one whole frame under the channel's lock (either thread of the executor process). */
export class ChannelWriter {
  private readonly lock: Int32Array;
  private readonly encoder = new FrameEncoder();

  constructor(private readonly channel: ExecutorChannel) {
    this.lock = new Int32Array(channel.writeLock);
  }

  /**
   * False when the node has gone (the channel is closed). `lockWaitMs`: how
   * long to wait for the other thread's frame (a worker that died holding the
   * lock never releases it; what is said then goes out anyway).
   */
  write(message: unknown, lockWaitMs = Infinity): boolean {
    const frame = this.encoder.encode(message);
    const until = performance.now() + lockWaitMs;
    while (Atomics.compareExchange(this.lock, 0, 0, 1) !== 0 && performance.now() < until) Atomics.wait(this.lock, 0, 1, 10);
    try {
      let off = 0;
      while (off < frame.length) {
        try {
          off += writeSync(this.channel.out, frame, off, frame.length - off);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "EAGAIN") sleep(RETRY_MS);
          else if (code !== "EINTR") return false;
        }
      }
      return true;
    } finally {
      Atomics.store(this.lock, 0, 0);
      Atomics.notify(this.lock, 0, 1);
    }
  }
}

/** The executor's side: requests in (converted from the wire), replies out (converted to it). */
export class ExecutorChannelEnd {
  private readonly decoder = new FrameDecoder();
  private readonly writer: ChannelWriter;
  private readonly buffer = Buffer.allocUnsafe(READ_BYTES);
  private readonly pending: WorkerRequest[] = [];
  /** Snapshots this executor was sent, by id: later requests name them only. */
  private readonly snapshots = new Map<string, Snapshot>();

  constructor(private readonly channel: ExecutorChannel) {
    this.writer = new ChannelWriter(channel);
  }

  /** A request already received, if any (never blocks). */
  nextReceived(): WorkerRequest | undefined {
    return this.pending.shift();
  }

  /** Blocks until the next request; undefined when the node closed the channel. Throws on a malformed stream. */
  next(): WorkerRequest | undefined {
    while (this.pending.length === 0) {
      let n: number;
      try {
        n = readSync(this.channel.in, this.buffer, 0, READ_BYTES, null);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EAGAIN") sleep(RETRY_MS);
        else if (code !== "EINTR") return undefined;
        continue;
      }
      if (n === 0) return undefined;
      // The decoder may keep a partial frame: it gets its own copy of the bytes.
      for (const m of this.decoder.push(Buffer.from(this.buffer.subarray(0, n)))) this.pending.push(m as WorkerRequest);
    }
    return this.pending.shift();
  }

  /**
   * What cannot cross as is, made whole on this side: a module's bytes are
   * compiled, a snapshot sent once is kept (later requests name it).
   */
  fromWire(req: WorkerRequest): WorkerRequest {
    const body = req as WorkerRequest & { module?: { key: string; prepared?: unknown }; snapshot?: unknown };
    if (body.module?.prepared) body.module.prepared = fromWireModule(body.module.prepared as WireModule);
    if (body.snapshot) {
      const w = body.snapshot as WireSnapshot | { id: string; pageData?: undefined };
      let s = this.snapshots.get(w.id);
      if (w.pageData) this.snapshots.set(w.id, (s = fromWireSnapshot(w as WireSnapshot)));
      if (!s) throw new Error(`process executor: snapshot ${w.id} was never sent here`);
      body.snapshot = s;
    }
    return req;
  }

  /** Sends a reply (a result's snapshot as bytes). False when the node has gone. */
  send(msg: WorkerReply): boolean {
    if (msg.kind === "done" && msg.snapshot) return this.writer.write({ ...msg, snapshot: toWireSnapshot(msg.snapshot) });
    return this.writer.write(msg);
  }
}
