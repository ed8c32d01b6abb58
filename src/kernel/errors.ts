import { Errno } from "./abi.js";

/**
 * A guest mistake or a refused request: becomes the errno returned by the
 * host call. Thrown by the typed subsystem functions, caught by the ABI layer.
 */
export class WasiError extends Error {
  constructor(readonly errno: Errno, detail?: string) {
    super(detail ? `${Errno[errno]}: ${detail}` : Errno[errno]);
    this.name = "WasiError";
  }
}

/** `proc_exit` unwinds the guest with this; the runner turns it into the exit code. */
export class ProcExit extends Error {
  constructor(readonly code: number) {
    super(`proc_exit(${code})`);
    this.name = "ProcExit";
  }
}

/** Reasons an instance can be ended by the host rather than by itself. */
export type LimitReason =
  | "memory_limit"
  | "fuel_exhausted"
  | "deadline_exceeded"
  | "stack_exhausted"
  | "output_limit"
  | "fd_limit";

/** A hard limit was hit: the instance ends with a named reason. */
export class InstanceLimitError extends Error {
  constructor(readonly reason: LimitReason, message: string) {
    super(message);
    this.name = "InstanceLimitError";
  }
}

/**
 * A broken invariant or an unexpected host failure. It ends the instance with
 * reason `host_fault`; it is never disguised as an errno.
 */
export class KernelFault extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KernelFault";
  }
}

/** The module cannot be linked: unknown import module, wrong signature, or (strict) ungranted calls. */
export class LinkError extends Error {
  constructor(message: string, readonly imports: readonly string[] = []) {
    super(message);
    this.name = "LinkError";
  }
}

/**
 * Node's error codes that a host filesystem or socket call may raise, mapped
 * exhaustively to WASI errnos at this one boundary. An unlisted code is a bug
 * to surface (KernelFault), not an errno to guess.
 */
const NODE_CODE_TO_ERRNO: Readonly<Record<string, Errno>> = {
  E2BIG: Errno.TOOBIG, EACCES: Errno.ACCES, EADDRINUSE: Errno.ADDRINUSE,
  EADDRNOTAVAIL: Errno.ADDRNOTAVAIL, EAFNOSUPPORT: Errno.AFNOSUPPORT, EAGAIN: Errno.AGAIN,
  EWOULDBLOCK: Errno.AGAIN, EALREADY: Errno.ALREADY, EBADF: Errno.BADF, EBUSY: Errno.BUSY,
  ECANCELED: Errno.CANCELED, ECONNABORTED: Errno.CONNABORTED, ECONNREFUSED: Errno.CONNREFUSED,
  ECONNRESET: Errno.CONNRESET, EDQUOT: Errno.DQUOT, EEXIST: Errno.EXIST, EFAULT: Errno.FAULT,
  EFBIG: Errno.FBIG, EHOSTUNREACH: Errno.HOSTUNREACH, EILSEQ: Errno.ILSEQ, EINTR: Errno.INTR,
  EINVAL: Errno.INVAL, EIO: Errno.IO, EISCONN: Errno.ISCONN, EISDIR: Errno.ISDIR, ELOOP: Errno.LOOP,
  EMFILE: Errno.MFILE, EMLINK: Errno.MLINK, EMSGSIZE: Errno.MSGSIZE, ENAMETOOLONG: Errno.NAMETOOLONG,
  ENETDOWN: Errno.NETDOWN, ENETRESET: Errno.NETRESET, ENETUNREACH: Errno.NETUNREACH,
  ENFILE: Errno.NFILE, ENOBUFS: Errno.NOBUFS, ENODEV: Errno.NODEV, ENOENT: Errno.NOENT,
  ENOMEM: Errno.NOMEM, ENOSPC: Errno.NOSPC, ENOSYS: Errno.NOSYS, ENOTCONN: Errno.NOTCONN,
  ENOTDIR: Errno.NOTDIR, ENOTEMPTY: Errno.NOTEMPTY, ENOTSOCK: Errno.NOTSOCK, ENOTSUP: Errno.NOTSUP,
  EOPNOTSUPP: Errno.NOTSUP, ENOTTY: Errno.NOTTY, ENXIO: Errno.NXIO, EOVERFLOW: Errno.OVERFLOW,
  EPERM: Errno.PERM, EPIPE: Errno.PIPE, ERANGE: Errno.RANGE, EROFS: Errno.ROFS, ESPIPE: Errno.SPIPE,
  ESRCH: Errno.SRCH, ESTALE: Errno.STALE, ETIMEDOUT: Errno.TIMEDOUT, ETXTBSY: Errno.TXTBSY,
  EXDEV: Errno.XDEV,
};

/** Converts an exception from a Node host API into a WasiError, or a KernelFault when unknown. */
export function fromHostError(err: unknown, call: string): WasiError | KernelFault {
  if (err instanceof WasiError || err instanceof KernelFault) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code === "string" && code in NODE_CODE_TO_ERRNO) {
    return new WasiError(NODE_CODE_TO_ERRNO[code]!, `${call}: ${(err as Error).message}`);
  }
  return new KernelFault(`${call}: unexpected host error ${code ?? ""}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/** Runs a host operation, translating Node errors into errnos at the boundary. */
export function host<T>(call: string, op: () => T): T {
  try {
    return op();
  } catch (err) {
    throw fromHostError(err, call);
  }
}
