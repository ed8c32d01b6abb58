import { ClockId, Errno, EventRwFlags, EventType, SubclockFlags } from "./abi.js";
import { WasiError } from "./errors.js";
import type { Clocks } from "./clock.js";
import type { DescriptorTable } from "./descriptors.js";
import type { BlockingIo, PollInterest } from "./io-bridge.js";
import { sleepMs } from "./stdio.js";

export type Subscription =
  | { userdata: bigint; type: EventType.CLOCK; clock: number; timeout: bigint; flags: number }
  | { userdata: bigint; type: EventType.FD_READ | EventType.FD_WRITE; fd: number };

export interface PollEvent {
  userdata: bigint;
  error: Errno;
  type: EventType;
  nbytes: bigint;
  flags: number;
}

/**
 * poll_oneoff: descriptor subscriptions that are ready now are reported at
 * once; otherwise the thread sleeps until the earliest clock, or parks on the
 * socket I/O server when sockets are involved. Files and stdio are always
 * ready. As in Wasmtime, a subscription that cannot be polled (a bad fd, a
 * directory, stdin for writing, a CPU-time clock) fails the whole call, and a
 * ready descriptor reports nbytes = 1 (files add HANGUP at end of file).
 */
export function pollOneoff(subs: readonly Subscription[], fds: DescriptorTable, clocks: Clocks, io: BlockingIo | undefined): PollEvent[] {
  if (subs.length === 0) throw new WasiError(Errno.INVAL, "no subscriptions");
  const ready: PollEvent[] = [];
  const sockets: { sub: Subscription; interest: PollInterest }[] = [];
  const timers: { sub: Subscription; deadline: bigint }[] = [];
  const mono = clocks.now(ClockId.MONOTONIC);

  for (const sub of subs) {
    if (sub.type === EventType.CLOCK) {
      if (sub.clock !== ClockId.MONOTONIC && sub.clock !== ClockId.REALTIME) {
        throw new WasiError(Errno.INVAL, `clock ${sub.clock} cannot be polled`);
      }
      let delay = sub.timeout;
      if (sub.flags & SubclockFlags.ABSTIME) delay = sub.timeout - clocks.now(sub.clock);
      timers.push({ sub, deadline: mono + (delay > 0n ? delay : 0n) });
      continue;
    }
    const d = fds.get(sub.fd);
    const wantWrite = sub.type === EventType.FD_WRITE;
    switch (d.kind) {
      case "file": {
        const atEnd = !wantWrite && d.handle.stat().size <= d.position;
        ready.push({ ...event(sub, Errno.SUCCESS), nbytes: 1n, flags: atEnd ? EventRwFlags.FD_READWRITE_HANGUP : 0 });
        break;
      }
      case "stream": {
        const usable = wantWrite ? d.output !== null : d.input !== null;
        if (!usable) throw new WasiError(Errno.BADF, `fd ${sub.fd} cannot be polled for ${wantWrite ? "writing" : "reading"}`);
        if (wantWrite || d.input!.ready()) ready.push({ ...event(sub, Errno.SUCCESS), nbytes: 1n });
        break;
      }
      case "dir":
        throw new WasiError(Errno.BADF, `fd ${sub.fd} is a directory`);
      default:
        if (!io) throw new WasiError(Errno.BADF, "no socket I/O is attached");
        sockets.push({ sub, interest: { handle: d.handle, write: wantWrite } });
    }
  }

  const earliest = timers.reduce<bigint | null>((m, t) => (m === null || t.deadline < m ? t.deadline : m), null);
  if (sockets.length > 0 && io) {
    let timeoutMs: number | null = null;
    if (ready.length > 0) timeoutMs = 0;
    else if (earliest !== null) timeoutMs = Math.max(0, Number(earliest - clocks.now(ClockId.MONOTONIC)) / 1e6);
    const got = io.poll(sockets.map((s) => s.interest), timeoutMs);
    for (const r of got) {
      const s = sockets.find((x) => x.interest.handle === r.handle && x.interest.write === r.write);
      if (!s) continue;
      ready.push({
        userdata: s.sub.userdata,
        error: r.error ?? Errno.SUCCESS,
        type: s.sub.type,
        nbytes: BigInt(r.nbytes),
        flags: r.hangup ? EventRwFlags.FD_READWRITE_HANGUP : 0,
      });
    }
  } else if (ready.length === 0 && earliest !== null) {
    sleepUntil(earliest, clocks);
  }

  const now = clocks.now(ClockId.MONOTONIC);
  for (const t of timers) if (t.deadline <= now) ready.push(event(t.sub, Errno.SUCCESS));
  return ready;
}

function sleepUntil(deadline: bigint, clocks: Clocks): void {
  for (;;) {
    const left = deadline - clocks.now(ClockId.MONOTONIC);
    if (left <= 0n) return;
    sleepMs(Number(left) / 1e6);
  }
}

function event(sub: Subscription, error: Errno): PollEvent {
  return { userdata: sub.userdata, error, type: sub.type, nbytes: 0n, flags: 0 };
}
