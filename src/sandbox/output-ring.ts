/**
 * An executor's output ring: how a guest's streamed output reaches the pool's
 * thread without a new buffer per chunk. A flood of output used to cost an
 * ArrayBuffer per chunk on each side; the main thread's V8 counted those
 * bytes as external memory and ran a full mark-compact every few dozen
 * chunks (a 16 MiB flood: ~40% of the serving thread in GC alone).
 *
 * The worker copies each chunk from guest memory into a SharedArrayBuffer
 * ring and posts only where it is (`at`, `length`, and `span`: the bytes it
 * uses, with the padding that keeps it contiguous). The pool's thread hands a
 * view of those bytes to the consumer (lent until the consumer is done with
 * it, e.g. until its socket wrote it: see RunOptions.lendStdout) or a copy,
 * then releases the span. A worker with no room parks until spans come back,
 * so a guest writes no faster than its reader reads (backpressure) and the
 * pool's thread never has more than one ring of a guest's output queued.
 *
 * Layout: an Int32 control block (RELEASED: bytes released since the ring
 * was made, a wrapping Int32 the worker compares with what it has written;
 * WAITING: whether the worker is parked) and the data area. A ring whose
 * lent views are still out when a job ends is not reused: the executor gives
 * the worker a new one with its next job, and the old one lives as long as
 * the views.
 */

/** Data bytes of a ring: what one guest may have in flight to its reader. */
export const OUTPUT_RING_BYTES = 256 * 1024;
/** Longest piece put at once: a bigger chunk is split (so any piece always fits an empty ring). */
export const OUTPUT_PIECE_BYTES = 64 * 1024;
const RELEASED = 0;
/** 1 while the worker is (about to be) parked for room. */
const WAITING = 1;
const CONTROL_BYTES = 8;

export function createOutputRing(): SharedArrayBuffer {
  return new SharedArrayBuffer(CONTROL_BYTES + OUTPUT_RING_BYTES);
}

/** Where a piece of output is in the ring. */
export interface RingPiece {
  at: number;
  length: number;
  /** Ring bytes it takes: its length, plus the ring's tail it skipped to stay contiguous. */
  span: number;
}

/** The worker's end: puts output into the ring, parking while it is full. */
export class OutputRingWriter {
  private readonly control: Int32Array;
  private readonly data: Uint8Array;
  /** Bytes written since the ring was made, padding included (wrapping Int32). */
  private written = 0;

  constructor(ring: SharedArrayBuffer) {
    this.control = new Int32Array(ring, 0, CONTROL_BYTES / 4);
    this.data = new Uint8Array(ring, CONTROL_BYTES);
  }

  /** Copies `chunk` (at most OUTPUT_PIECE_BYTES) into the ring once there is room; the caller posts the piece. */
  put(chunk: Uint8Array): RingPiece {
    const offset = this.written & (OUTPUT_RING_BYTES - 1); // a power of two: right across the Int32 wrap
    const skip = offset + chunk.length > OUTPUT_RING_BYTES ? OUTPUT_RING_BYTES - offset : 0;
    const span = skip + chunk.length;
    if (!this.fits(span)) {
      // WAITING before the re-check: a release after it sees the flag and wakes this thread.
      Atomics.store(this.control, WAITING, 1);
      for (;;) {
        const released = Atomics.load(this.control, RELEASED);
        if (this.fits(span, released)) break;
        Atomics.wait(this.control, RELEASED, released, 1000);
      }
      Atomics.store(this.control, WAITING, 0);
    }
    const at = skip > 0 ? 0 : offset;
    this.data.set(chunk, at);
    this.written = (this.written + span) | 0;
    return { at, length: chunk.length, span };
  }

  private fits(span: number, released = Atomics.load(this.control, RELEASED)): boolean {
    return ((this.written - released) | 0) + span <= OUTPUT_RING_BYTES;
  }
}

/** The pool's end: views of pieces, and their release. */
export class OutputRingReader {
  readonly buffer: SharedArrayBuffer;
  private readonly control: Int32Array;
  private readonly data: Uint8Array;
  /** Spans handed out and not yet released. */
  outstanding = 0;

  constructor(ring: SharedArrayBuffer) {
    this.buffer = ring;
    this.control = new Int32Array(ring, 0, CONTROL_BYTES / 4);
    this.data = new Uint8Array(ring, CONTROL_BYTES);
  }

  /** The piece's bytes, in place: valid until its span is released. */
  view(piece: RingPiece): Uint8Array {
    this.outstanding += piece.span;
    return this.data.subarray(piece.at, piece.at + piece.length);
  }

  /** Gives a piece's bytes back to the worker. */
  release(span: number): void {
    this.outstanding -= span;
    this.discard(span);
  }

  /** Gives back a piece nobody viewed. */
  discard(span: number): void {
    Atomics.add(this.control, RELEASED, span);
    // A wake-up is a system call: only when the worker waits for room.
    if (Atomics.load(this.control, WAITING) === 1) Atomics.notify(this.control, RELEASED);
  }
}
