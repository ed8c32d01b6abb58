/**
 * Recycled linear memories. Creating a WebAssembly.Memory costs more than the
 * rest of a small instance (V8 reserves 10 GiB of address space for it, and
 * frees it only at a later GC), so executors keep the memories of finished
 * instances and hand them, zeroed, to the next instance of the same shape.
 * The module imports its memory for that (src/wasm/memory-import.ts).
 */
export { RECYCLED_MEMORY_MODULE, RECYCLED_MEMORY_NAME } from "../wasm/memory-import.js";

/**
 * Memories of finished instances, by shape, for the next instance of the same
 * shape. Bounded in count per shape and in bytes overall.
 */
export class MemoryRecycler {
  private readonly free = new Map<string, WebAssembly.Memory[]>();
  private bytes = 0;
  /** Memories handed out from the free lists, and created new. */
  readonly counters = { reused: 0, created: 0 };

  constructor(
    private readonly maxPerShape = 8,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  take(min: number, max: number): WebAssembly.Memory {
    const list = this.free.get(`${min}/${max}`);
    const m = list?.pop();
    if (m) {
      this.bytes -= m.buffer.byteLength;
      this.counters.reused++;
      return m;
    }
    this.counters.created++;
    return new WebAssembly.Memory({ initial: min, maximum: max });
  }

  /**
   * Gives a memory back after its instance is done. It is kept only if it
   * never grew (a reused memory must look fresh) and there is room; it is
   * zeroed now, so that taking it later costs nothing.
   */
  give(memory: WebAssembly.Memory, min: number, max: number): void {
    const size = memory.buffer.byteLength;
    if (size !== min * 65536 || this.bytes + size > this.maxBytes) return;
    const key = `${min}/${max}`;
    let list = this.free.get(key);
    if (!list) this.free.set(key, (list = []));
    if (list.length >= this.maxPerShape) return;
    new Uint8Array(memory.buffer).fill(0);
    list.push(memory);
    this.bytes += size;
  }
}
