/**
 * The cluster's control state: a JetStream stream of control commands
 * (`ControlCommand`), which every node applies, in stream order, to its own
 * SQLite. The SQLite tables are then a replicated cache: reads stay
 * synchronous and local, and a node that was away resumes from the last
 * sequence it applied (kept in the same transaction as the rows it wrote).
 *
 * A write is optimistic: the node checks the command against its own copy
 * (a dry run in a rolled-back transaction), then appends it with
 * `expected last sequence` = what it has applied. If another node appended
 * first, the append is refused; the node applies what it missed and tries
 * again. So a command is always checked against exactly the state every
 * node will apply it to, and the log holds only commands that succeed.
 *
 * Image blobs live in a JetStream object store (named by their digest); a
 * node fetches the ones it needs into its blob store and verifies each
 * against its digest.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, JetStreamApiError, StorageType, type JetStreamClient, type ConsumerMessages } from "@nats-io/jetstream";
import { Objm, type ObjectStore } from "@nats-io/obj";
import { CommandControlState, applyCommand, isRefusal, sha256Digest, type ControlChange, type ControlCommand, type NodeStore } from "../store/index.js";
import { newId } from "../store/ids.js";

export const CONTROL_STREAM = "UNIWASM_CONTROL";
export const CONTROL_SUBJECT = "uniwasm.control";
export const BLOB_BUCKET = "uniwasm-blobs";

/**
 * The cluster cannot take a change now (NATS unreachable, or too much
 * contention). The message is for API clients (tenants among them): it never
 * carries NATS's own error text, which names subjects and streams; `cause`
 * does, for the node's log.
 */
export class ClusterUnavailable extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "ClusterUnavailable";
  }
}

/** This data directory holds state that is not the cluster's: joining would mix two histories. */
export class ForeignState extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ForeignState";
  }
}

interface Envelope {
  /** Command id: the writer finds its own command's result by it, and JetStream deduplicates retries by it. */
  cid: string;
  /** Process that wrote it (a restarted node's old commands count as remote). */
  origin: string;
  cmd: ControlCommand;
}

export interface ControlLogOptions {
  /** JetStream replicas of the stream and object store (3 on a 3-server NATS cluster). Default 1. */
  replicas?: number;
  /** Longest wait for an append or a catch-up, ms. Default 5000. */
  timeoutMs?: number;
  /** Reports problems applying the log (a node-local fault); default: nothing. */
  onError?: (err: Error) => void;
  /** Connection state: a write fails at once while NATS is unreachable. */
  link?: { connected: boolean };
}

type Result = Omit<ControlChange, "remote" | "command">;


export class JetStreamControlState extends CommandControlState {
  readonly kind = "jetstream" as const;
  private readonly js: JetStreamClient;
  private blobsBucket: ObjectStore | undefined;
  private applied = 0;
  private streamId = "";
  private messages: ConsumerMessages | undefined;
  private readonly waiters: { seq: number; resolve: () => void }[] = [];
  /** The one local write in flight (writes are serialised per node) and, once applied, its outcome. */
  private inflight: { cid: string; outcome?: { ok: true; result: Result } | { ok: false; error: unknown } } | undefined;
  private writeChain: Promise<unknown> = Promise.resolve();
  private faulted: Error | undefined;
  private closing = false;
  private readonly timeoutMs: number;
  /** Identifies this instance's own commands in the log (a restarted node's old commands count as remote). */
  private readonly origin = newId("p", 6);

  private constructor(
    store: NodeStore,
    private readonly nc: NatsConnection,
    private readonly opts: ControlLogOptions,
  ) {
    super(store);
    this.js = jetstream(nc, { timeout: opts.timeoutMs ?? 5000 });
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }

  /**
   * Opens (creating when first) the control stream and blob store, checks that
   * this data directory follows this stream, and applies the log up to its
   * current end before returning: a node answers from an up-to-date copy.
   */
  static async open(store: NodeStore, nc: NatsConnection, opts: ControlLogOptions = {}): Promise<JetStreamControlState> {
    const s = new JetStreamControlState(store, nc, opts);
    await s.start();
    return s;
  }

  /** Last sequence of the control log applied to this node's SQLite. */
  get appliedSeq(): number {
    return this.applied;
  }

  private async start(): Promise<void> {
    const jsm = await jetstreamManager(this.nc, { timeout: this.timeoutMs });
    const replicas = this.opts.replicas ?? 1;
    let info;
    try {
      info = await jsm.streams.info(CONTROL_STREAM);
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== 10059) throw err; // 10059: stream not found
      try {
        info = await jsm.streams.add({ name: CONTROL_STREAM, subjects: [CONTROL_SUBJECT], storage: StorageType.File, num_replicas: replicas, duplicate_window: 120_000_000_000 });
      } catch (e) {
        // Another node created it at the same moment.
        info = await jsm.streams.info(CONTROL_STREAM).catch(() => {
          throw e;
        });
      }
    }
    this.streamId = `${CONTROL_STREAM}@${info.created}`;
    this.blobsBucket = await new Objm(this.nc).create(BLOB_BUCKET, { replicas, storage: StorageType.File });

    const cursor = this.store.db.prepare("SELECT stream, applied_seq FROM cluster_cursor WHERE id = 1").get() as { stream: string; applied_seq: number } | undefined;
    if (cursor) {
      if (cursor.stream !== this.streamId) {
        throw new ForeignState(
          `this data directory follows another control log (${cursor.stream}, now ${this.streamId}: the cluster's JetStream was reset); start the node with a fresh --data directory`,
        );
      }
      this.applied = cursor.applied_seq;
    } else {
      const own = (this.store.db.prepare("SELECT (SELECT count(*) FROM tenants) + (SELECT count(*) FROM apps) + (SELECT count(*) FROM tokens) AS n").get() as { n: number }).n;
      if (own > 0) {
        throw new ForeignState(
          "this data directory has tenants, tokens or apps of its own (from a node that ran alone); a node joins a cluster with a fresh --data directory, and its tenants and apps are re-created through the cluster's API",
        );
      }
      this.store.db.prepare("INSERT INTO cluster_cursor (id, stream, applied_seq) VALUES (1, ?, 0)").run(this.streamId);
    }
    await this.follow();
    await this.waitApplied(info.state.last_seq, "catching up with the control log");
  }

  /**
   * Applies the log from where this node is, as it grows. The ordered
   * consumer resumes by itself after a reconnect; should it end anyway (the
   * servers were gone for long), following starts again from the cursor.
   */
  private async follow(): Promise<void> {
    const consumer = await this.js.consumers.get(CONTROL_STREAM, { opt_start_seq: this.applied + 1 });
    const messages = await consumer.consume();
    this.messages = messages;
    void (async () => {
      for await (const m of messages) {
        if (m.seq <= this.applied) continue;
        let env: Envelope;
        try {
          env = m.json<Envelope>();
        } catch {
          this.fault(new Error(`control log message ${m.seq} is not JSON; this node stops applying the log`));
          return;
        }
        if (!this.applyAt(m.seq, env)) return;
      }
      if (!this.closing && !this.faulted) this.followAgain();
    })().catch((err: unknown) => this.fault(err as Error));
  }

  private followAgain(): void {
    setTimeout(() => {
      if (this.closing || this.faulted) return;
      this.follow().catch(() => this.followAgain());
    }, 1000).unref();
  }

  private fault(err: Error): void {
    this.faulted = err;
    this.opts.onError?.(err);
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  /**
   * Applies one command at its sequence, with the cursor in the same
   * transaction. A refused command (it cannot be: appends are checked first,
   * but a log may be written by an older node) advances the cursor and
   * changes nothing; a local fault stops applying, so the node never skips a
   * change. Returns false on a fault.
   */
  private applyAt(seq: number, env: Envelope): boolean {
    if (seq !== this.applied + 1) {
      this.fault(new Error(`control log: expected sequence ${this.applied + 1}, got ${seq}`));
      return false;
    }
    const setCursor = this.store.db.prepare("UPDATE cluster_cursor SET applied_seq = ? WHERE id = 1");
    let outcome: { ok: true; result: Result } | { ok: false; error: unknown };
    try {
      const result = this.store.db.transaction(() => {
        const r = applyCommand(this.store, env.cmd);
        setCursor.run(seq);
        return r;
      })();
      outcome = { ok: true, result };
    } catch (error) {
      if (!isRefusal(error)) {
        this.fault(new Error(`applying control log message ${seq} (${env.cmd.op}) failed on this node: ${(error as Error).message}`));
        return false;
      }
      setCursor.run(seq);
      outcome = { ok: false, error };
    }
    this.applied = seq;
    if (this.inflight?.cid === env.cid) this.inflight.outcome = outcome;
    if (outcome.ok) this.notify(env.cmd, outcome.result, env.origin !== this.origin);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.seq <= seq) this.waiters.splice(i, 1)[0]!.resolve();
    }
    return true;
  }

  private waitApplied(seq: number, what: string): Promise<void> {
    if (this.faulted) return Promise.reject(this.faulted);
    if (this.applied >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new ClusterUnavailable(`${what}: the control log did not reach sequence ${seq} within ${this.timeoutMs} ms (this node is at ${this.applied})`));
      }, this.timeoutMs);
      const w = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          if (this.faulted) reject(this.faulted);
          else if (this.applied < seq) reject(new ClusterUnavailable(`${what}: the node is shutting down`));
          else resolve();
        },
      };
      this.waiters.push(w);
    });
  }

  protected commit(cmd: ControlCommand): Promise<Result> {
    const run = this.writeChain.then(() => this.append(cmd));
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  private async append(cmd: ControlCommand): Promise<Result> {
    for (let attempt = 0; attempt < 20; attempt++) {
      if (this.faulted) throw new ClusterUnavailable("this node stopped applying the cluster's control log (see its log); nothing was changed", this.faulted);
      if (this.opts.link && !this.opts.link.connected) throw new ClusterUnavailable("this node cannot reach the cluster's NATS servers now; nothing was changed");
      this.dryRun(cmd);
      const env: Envelope = { cid: newId("c"), origin: this.origin, cmd };
      this.inflight = { cid: env.cid };
      const expected = this.applied;
      try {
        const ack = await this.js.publish(CONTROL_SUBJECT, JSON.stringify(env), { msgID: env.cid, expect: { lastSequence: expected }, timeout: this.timeoutMs });
        if (this.applied === ack.seq - 1) this.applyAt(ack.seq, env);
        else await this.waitApplied(ack.seq, "applying this change");
        const outcome = this.inflight.outcome;
        if (!outcome) throw new ClusterUnavailable("the change was appended but its outcome was not seen");
        if (!outcome.ok) throw outcome.error;
        return outcome.result;
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === 10071) {
          // Another node appended first: apply what it wrote, then check again.
          const last = Number(/(\d+)\s*$/.exec(err.message)?.[1] ?? expected + 1);
          await this.waitApplied(Math.max(last, expected + 1), "catching up before a retry");
          continue;
        }
        if (err instanceof ClusterUnavailable || isRefusal(err)) throw err;
        throw new ClusterUnavailable("the cluster's control log cannot be written now; if the request timed out, the change may still take effect", err);
      } finally {
        this.inflight = undefined;
      }
    }
    throw new ClusterUnavailable("too many concurrent changes of the control state; try again");
  }

  /** Checks a command against this node's copy and rolls it back: refusals are reported before anything is appended. */
  private dryRun(cmd: ControlCommand): void {
    const rollback = new Error("dry run");
    try {
      this.store.db.transaction(() => {
        applyCommand(this.store, cmd);
        throw rollback;
      })();
    } catch (err) {
      if (err !== rollback) throw err;
    }
  }

  async shareBlobs(digests: readonly string[]): Promise<void> {
    const bucket = this.blobsBucket!;
    for (const digest of new Set(digests)) {
      try {
        if (await bucket.info(digest)) continue;
        const bytes = this.store.blobs.get(digest);
        if (!bytes) throw new Error(`blob ${digest} is not on this node`);
        await bucket.putBlob({ name: digest }, bytes);
      } catch (err) {
        throw new ClusterUnavailable(`cannot store blob ${digest} in the cluster now`, err);
      }
    }
  }

  async ensureBlobs(digests: readonly string[]): Promise<void> {
    const bucket = this.blobsBucket!;
    for (const digest of new Set(digests)) {
      if (this.store.blobs.has(digest)) continue;
      let bytes: Uint8Array | null;
      try {
        bytes = await bucket.getBlob(digest);
      } catch (err) {
        throw new ClusterUnavailable(`cannot fetch blob ${digest} from the cluster now`, err);
      }
      if (!bytes) throw new Error(`blob ${digest} is not in the cluster's object store`);
      // Verified here against the name it was asked by, as the local blob store verifies every read.
      const actual = sha256Digest(bytes);
      if (actual !== digest) throw new Error(`blob ${digest} from the cluster's object store is corrupt (its bytes hash to ${actual})`);
      this.store.blobs.put(bytes);
    }
  }

  /**
   * Deletes the blobs of the object store that no image records any more
   * (its module or a bundled file) and that are older than `graceMs`: a blob
   * is stored before the image that records it is appended, so a young one
   * may be an upload in progress. Returns the digests deleted.
   */
  async sweepBlobs(graceMs: number): Promise<string[]> {
    const now = Date.now();
    const gone: string[] = [];
    for (const info of await this.blobsBucket!.list()) {
      if (info.deleted || now - Date.parse(info.mtime) < graceMs) continue;
      if (this.store.images.referenced(info.name)) continue;
      await this.blobsBucket!.delete(info.name);
      gone.push(info.name);
    }
    return gone;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.messages?.close().catch(() => undefined);
    for (const w of this.waiters.splice(0)) w.resolve();
  }
}
