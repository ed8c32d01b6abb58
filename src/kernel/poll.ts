import { ClockId, Errno, EventRwFlags, EventType, Layout, Rights, SubclockFlags } from "./abi.js";
import { WasiError } from "./errors.js";
import type { Clocks } from "./clock.js";
import type { DescriptorTable } from "./descriptors.js";
import type { BlockingIo, PollInterest } from "./io-bridge.js";
import { sleepMs } from "./stdio.js";

/**
 * Most subscriptions one poll_oneoff takes (EINVAL past it). Enough for
 * wasi-libc's poll() on every descriptor an instance may hold (two events for
 * each of the default 1024 open files) plus its timeout clock; a guest asking
 * for more gets EINVAL before the host reads any of them.
 */
export const POLL_MAX_SUBSCRIPTIONS = 4096;

/** One subscription, for building a SubscriptionList in host code and tests. */
export type Subscription =
  | { userdata: bigint; type: EventType.CLOCK; clock: number; timeout: bigint; flags: number }
  | { userdata: bigint; type: EventType.FD_READ | EventType.FD_WRITE; fd: number };

/**
 * The subscriptions of one call, read in place from one host copy of the
 * guest's array (the witx layout, 48 bytes each): no host object per
 * subscription, so a guest's count costs the host 48 bytes each at most.
 */
export class SubscriptionList {
  private readonly dv: DataView;
  readonly length: number;

  constructor(bytes: Uint8Array) {
    if (bytes.length % Layout.SUBSCRIPTION_SIZE !== 0) throw new RangeError("not a whole number of subscriptions");
    this.length = bytes.length / Layout.SUBSCRIPTION_SIZE;
    if (this.length > POLL_MAX_SUBSCRIPTIONS) throw new WasiError(Errno.INVAL, `${this.length} subscriptions: at most ${POLL_MAX_SUBSCRIPTIONS} per call`);
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let i = 0; i < this.length; i++) {
      const t = this.type(i);
      if (t !== EventType.CLOCK && t !== EventType.FD_READ && t !== EventType.FD_WRITE) throw new WasiError(Errno.INVAL, `unknown subscription tag ${t}`);
    }
  }

  /** Encodes subscriptions in the guest layout (host code and tests). */
  static of(subs: readonly Subscription[]): SubscriptionList {
    const bytes = new Uint8Array(subs.length * Layout.SUBSCRIPTION_SIZE);
    const dv = new DataView(bytes.buffer);
    subs.forEach((s, i) => {
      const p = i * Layout.SUBSCRIPTION_SIZE;
      dv.setBigUint64(p, s.userdata, true);
      dv.setUint8(p + 8, s.type);
      if (s.type === EventType.CLOCK) {
        dv.setUint32(p + 16, s.clock, true);
        dv.setBigUint64(p + 24, s.timeout, true);
        dv.setUint16(p + 40, s.flags, true);
      } else dv.setUint32(p + 16, s.fd, true);
    });
    return new SubscriptionList(bytes);
  }

  userdata(i: number): bigint { return this.dv.getBigUint64(i * Layout.SUBSCRIPTION_SIZE, true); }
  type(i: number): EventType { return this.dv.getUint8(i * Layout.SUBSCRIPTION_SIZE + 8); }
  /** fd of an FD_READ / FD_WRITE subscription. */
  fd(i: number): number { return this.dv.getUint32(i * Layout.SUBSCRIPTION_SIZE + 16, true) | 0; }
  /** Clock id of a CLOCK subscription. */
  clock(i: number): number { return this.dv.getUint32(i * Layout.SUBSCRIPTION_SIZE + 16, true); }
  timeout(i: number): bigint { return this.dv.getBigUint64(i * Layout.SUBSCRIPTION_SIZE + 24, true); }
  flags(i: number): number { return this.dv.getUint16(i * Layout.SUBSCRIPTION_SIZE + 40, true); }
}

/** Events in the guest layout (32 bytes each), written in place; at most one per subscription. */
export class EventList {
  readonly bytes: Uint8Array;
  private readonly dv: DataView;
  length = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity * Layout.EVENT_SIZE);
    this.dv = new DataView(this.bytes.buffer);
  }

  push(userdata: bigint, error: Errno, type: EventType, nbytes: bigint, flags: number): void {
    const p = this.length++ * Layout.EVENT_SIZE;
    this.dv.setBigUint64(p, userdata, true);
    this.dv.setUint16(p + 8, error, true);
    this.dv.setUint8(p + 10, type);
    this.dv.setBigUint64(p + 16, nbytes, true);
    this.dv.setUint16(p + 24, flags, true);
  }

  userdata(i: number): bigint { return this.dv.getBigUint64(i * Layout.EVENT_SIZE, true); }
  error(i: number): Errno { return this.dv.getUint16(i * Layout.EVENT_SIZE + 8, true); }
  type(i: number): EventType { return this.dv.getUint8(i * Layout.EVENT_SIZE + 10); }
  nbytes(i: number): bigint { return this.dv.getBigUint64(i * Layout.EVENT_SIZE + 16, true); }
  flags(i: number): number { return this.dv.getUint16(i * Layout.EVENT_SIZE + 24, true); }

  /** The events written, in the guest layout. */
  encoded(): Uint8Array {
    return this.bytes.subarray(0, this.length * Layout.EVENT_SIZE);
  }
}

/**
 * poll_oneoff: descriptor subscriptions that are ready now are reported at
 * once; otherwise the thread sleeps until the earliest clock, or parks on the
 * socket I/O server when sockets are involved. Files and stdio are always
 * ready. As in Wasmtime, a subscription that cannot be polled (a bad fd, a
 * directory, stdin for writing, a CPU-time clock) fails the whole call, and a
 * ready descriptor reports nbytes = 1 (files add HANGUP at end of file).
 */
export function pollOneoff(subs: SubscriptionList, fds: DescriptorTable, clocks: Clocks, io: BlockingIo | undefined): EventList {
  const n = subs.length;
  if (n === 0) throw new WasiError(Errno.INVAL, "no subscriptions");
  const events = new EventList(n);
  // Per subscription: its clock deadline (monotonic ns), or -1 when it is not a clock.
  const deadlines = new BigInt64Array(n).fill(-1n);
  // Socket subscriptions: their indices, and what the I/O server is asked.
  const socketSubs: number[] = [];
  const interests: PollInterest[] = [];
  const mono = clocks.now(ClockId.MONOTONIC);
  let earliest: bigint | null = null;

  for (let i = 0; i < n; i++) {
    const type = subs.type(i);
    if (type === EventType.CLOCK) {
      const clock = subs.clock(i);
      if (clock !== ClockId.MONOTONIC && clock !== ClockId.REALTIME) {
        throw new WasiError(Errno.INVAL, `clock ${clock} cannot be polled`);
      }
      let delay = subs.timeout(i);
      if (subs.flags(i) & SubclockFlags.ABSTIME) delay = delay - clocks.now(clock);
      const deadline = mono + (delay > 0n ? delay : 0n);
      deadlines[i] = deadline;
      if (earliest === null || deadline < earliest) earliest = deadline;
      continue;
    }
    const fd = subs.fd(i);
    const d = fds.get(fd);
    const wantWrite = type === EventType.FD_WRITE;
    // The rights table (witx): POLL_FD_READWRITE, with FD_READ to wait for reading, FD_WRITE for writing.
    if ((d.rightsBase & Rights.POLL_FD_READWRITE) === 0n) throw new WasiError(Errno.NOTCAPABLE, `fd ${fd} lacks the POLL_FD_READWRITE right`);
    if ((d.rightsBase & (wantWrite ? Rights.FD_WRITE : Rights.FD_READ)) === 0n && d.kind !== "dir" && d.kind !== "listener") {
      throw new WasiError(Errno.BADF, `fd ${fd} cannot be polled for ${wantWrite ? "writing" : "reading"}`);
    }
    switch (d.kind) {
      case "file": {
        const atEnd = !wantWrite && d.handle.stat().size <= d.position;
        events.push(subs.userdata(i), Errno.SUCCESS, type, 1n, atEnd ? EventRwFlags.FD_READWRITE_HANGUP : 0);
        break;
      }
      case "stream": {
        const usable = wantWrite ? d.output !== null : d.input !== null;
        if (!usable) throw new WasiError(Errno.BADF, `fd ${fd} cannot be polled for ${wantWrite ? "writing" : "reading"}`);
        if (wantWrite || d.input!.ready()) events.push(subs.userdata(i), Errno.SUCCESS, type, 1n, 0);
        break;
      }
      case "dir":
        throw new WasiError(Errno.BADF, `fd ${fd} is a directory`);
      default:
        if (!io) throw new WasiError(Errno.BADF, "no socket I/O is attached");
        socketSubs.push(i);
        interests.push({ handle: d.handle, write: wantWrite });
    }
  }

  if (socketSubs.length > 0 && io) {
    let timeoutMs: number | null = null;
    if (events.length > 0) timeoutMs = 0;
    else if (earliest !== null) timeoutMs = Math.max(0, Number(earliest - clocks.now(ClockId.MONOTONIC)) / 1e6);
    const got = io.poll(interests, timeoutMs);
    for (const r of got) {
      const k = interests.findIndex((x) => x.handle === r.handle && x.write === r.write);
      if (k < 0) continue;
      const i = socketSubs[k]!;
      events.push(subs.userdata(i), r.error ?? Errno.SUCCESS, subs.type(i), BigInt(r.nbytes), r.hangup ? EventRwFlags.FD_READWRITE_HANGUP : 0);
    }
  } else if (events.length === 0 && earliest !== null) {
    sleepUntil(earliest, clocks);
  }

  if (earliest !== null) {
    const now = clocks.now(ClockId.MONOTONIC);
    for (let i = 0; i < n; i++) {
      if (deadlines[i]! >= 0n && deadlines[i]! <= now) events.push(subs.userdata(i), Errno.SUCCESS, EventType.CLOCK, 0n, 0);
    }
  }
  return events;
}

function sleepUntil(deadline: bigint, clocks: Clocks): void {
  for (;;) {
    const left = deadline - clocks.now(ClockId.MONOTONIC);
    if (left <= 0n) return;
    sleepMs(Number(left) / 1e6);
  }
}
