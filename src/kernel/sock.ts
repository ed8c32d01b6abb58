import { Errno, FdFlags, RIGHTS_SOCKET_CONN, RiFlags, Rights, SdFlags } from "./abi.js";
import { WasiError } from "./errors.js";
import type { DescriptorTable, SocketDescriptor } from "./descriptors.js";
import type { BlockingIo } from "./io-bridge.js";
import type { Buffers } from "./memory.js";

/**
 * Most bytes one sock_send / sock_recv (or fd_write / fd_read on a socket)
 * moves. iovecs may overlap, so their sum can be IOV_MAX times the guest's
 * memory; the host copies what it moves, so it is bounded here, and the
 * count returned tells the guest how much went (a short count, as send(2)).
 */
export const SOCK_IO_MAX = 1 << 20;

/**
 * sock_* calls on preopened listening sockets and the connections accepted
 * from them. The sockets themselves live in an IoServer on another thread;
 * this thread parks while it works (see io-bridge.ts).
 */
export class Sockets {
  constructor(private readonly fds: DescriptorTable, private readonly io: BlockingIo | undefined) {}

  private socket(fd: number): SocketDescriptor {
    const d = this.fds.get(fd);
    if (d.kind !== "listener" && d.kind !== "connection") throw new WasiError(Errno.NOTSOCK, `fd ${fd} is not a socket`);
    if (!this.io) throw new WasiError(Errno.NOTSOCK, "no socket I/O is attached");
    return d;
  }

  private connection(fd: number): SocketDescriptor {
    const d = this.socket(fd);
    if (d.kind !== "connection") throw new WasiError(Errno.NOTCONN, `fd ${fd} is a listening socket`);
    return d;
  }

  accept(fd: number, flags: number): number {
    const d = this.socket(fd);
    if (d.kind !== "listener") throw new WasiError(Errno.INVAL, `fd ${fd} is not listening`);
    if ((d.rightsBase & Rights.SOCK_ACCEPT) === 0n) throw new WasiError(Errno.NOTCAPABLE, "descriptor lacks sock_accept");
    if (flags & ~FdFlags.NONBLOCK) throw new WasiError(Errno.INVAL, "sock_accept takes only NONBLOCK");
    // Either the listener or this call asking for NONBLOCK makes accept return EAGAIN instead of waiting.
    const nonblocking = ((d.flags | flags) & FdFlags.NONBLOCK) !== 0;
    const handle = this.io!.accept(d.handle, nonblocking);
    try {
      return this.fds.add({ kind: "connection", handle, rightsBase: RIGHTS_SOCKET_CONN, rightsInheriting: 0n, flags: flags & FdFlags.NONBLOCK });
    } catch (err) {
      this.io!.close(handle);
      throw err;
    }
  }

  recv(fd: number, bufs: Buffers, riflags: number): { n: number; roflags: number } {
    const d = this.connection(fd);
    if (riflags & ~(RiFlags.RECV_PEEK | RiFlags.RECV_WAITALL)) throw new WasiError(Errno.INVAL, "unknown riflags");
    if ((d.rightsBase & Rights.FD_READ) === 0n) throw new WasiError(Errno.BADF, "socket not readable");
    let total = 0;
    for (let i = 0; i < bufs.length && total < SOCK_IO_MAX; i++) total += bufs.at(i)!.length;
    total = Math.min(total, SOCK_IO_MAX);
    if (total === 0) return { n: 0, roflags: 0 };
    const nonblocking = (d.flags & FdFlags.NONBLOCK) !== 0;
    const peek = (riflags & RiFlags.RECV_PEEK) !== 0;
    const waitAll = (riflags & RiFlags.RECV_WAITALL) !== 0 && !peek;
    const parts: Uint8Array[] = [];
    let got = 0;
    do {
      const chunk = this.io!.recv(d.handle, total - got, peek, nonblocking && got === 0);
      if (chunk.length === 0) break;
      parts.push(chunk);
      got += chunk.length;
    } while (waitAll && got < total);
    scatter(parts, bufs);
    // A stream socket never truncates a datagram, so RECV_DATA_TRUNCATED is never set.
    return { n: got, roflags: 0 };
  }

  send(fd: number, bufs: Buffers, siflags: number): number {
    const d = this.connection(fd);
    if (siflags !== 0) throw new WasiError(Errno.INVAL, "sock_send takes no flags");
    if ((d.rightsBase & Rights.FD_WRITE) === 0n) throw new WasiError(Errno.BADF, "socket not writable");
    const data = gather(bufs, SOCK_IO_MAX);
    if (data.length === 0) return 0;
    return this.io!.send(d.handle, data, (d.flags & FdFlags.NONBLOCK) !== 0);
  }

  shutdown(fd: number, how: number): void {
    const d = this.connection(fd);
    if ((d.rightsBase & Rights.SOCK_SHUTDOWN) === 0n) throw new WasiError(Errno.NOTCAPABLE, "descriptor lacks sock_shutdown");
    if (how === 0 || (how & ~(SdFlags.RD | SdFlags.WR)) !== 0) throw new WasiError(Errno.INVAL, "bad sdflags");
    this.io!.shutdown(d.handle, how);
  }

  close(d: SocketDescriptor): void {
    this.io?.close(d.handle);
  }
}

/** The buffers' bytes in order, at most `max` of them, in one host copy. */
function gather(bufs: Buffers, max: number): Uint8Array {
  let total = 0;
  for (let i = 0; i < bufs.length && total < max; i++) total += bufs.at(i)!.length;
  const out = new Uint8Array(Math.min(total, max));
  let o = 0;
  for (let i = 0; i < bufs.length && o < out.length; i++) {
    const b = bufs.at(i)!;
    const n = Math.min(b.length, out.length - o);
    out.set(b.subarray(0, n), o);
    o += n;
  }
  return out;
}

function scatter(parts: Uint8Array[], bufs: Buffers): void {
  let bi = 0;
  let bo = 0;
  for (const p of parts) {
    let po = 0;
    while (po < p.length && bi < bufs.length) {
      const b = bufs.at(bi)!;
      const n = Math.min(b.length - bo, p.length - po);
      b.set(p.subarray(po, po + n), bo);
      bo += n;
      po += n;
      if (bo === b.length) {
        bi++;
        bo = 0;
      }
    }
  }
}
