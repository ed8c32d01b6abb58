/**
 * Instruction decoder: just enough of every instruction to know its length,
 * its effect on control flow and its fuel cost.
 *
 * Covers the MVP plus the proposals toolchains emit by default today:
 * sign-extension, non-trapping float-to-int, bulk memory, reference types,
 * multi-value, tail calls, SIMD (incl. relaxed SIMD), threads/atomics,
 * multi-memory and memory64 immediates, and the exception handling that
 * V8 ships in Node 20 (try/catch/catch_all/delegate/throw/rethrow). GC, typed
 * function references and the newer exnref exception handling (try_table)
 * are refused with WasmUnsupportedError: guessing their immediates would make
 * a rewrite produce a different program.
 */
import type { ByteReader } from "./binary.js";
import { WasmUnsupportedError } from "./errors.js";

/** How an instruction affects control flow. */
export const enum Flow {
  /** Falls through to the next instruction. */
  Plain = 0,
  Block = 1,
  Loop = 2,
  If = 3,
  Else = 4,
  End = 5,
  /** Unconditional branch to `label` (br). */
  Br = 6,
  /** Conditional branch to `label` (br_if). */
  BrIf = 7,
  /** Branch to one of `targets` (br_table); never falls through. */
  BrTable = 8,
  /** Never falls through and targets no label: return, unreachable, return_call*, throw, rethrow. */
  Exit = 9,
  /** `try`: opens a block whose handlers start at Catch. */
  Try = 10,
  /** `catch` / `catch_all`: a handler, entered when an exception lands. */
  Catch = 11,
  /** `delegate`: ends a try block (like End) and forwards exceptions to `label`. */
  Delegate = 12,
}

/** Block type `[] -> []`, the only one the fuel check itself uses. */
export const BLOCKTYPE_EMPTY = 0x40;

export const Op = {
  unreachable: 0x00,
  if: 0x04,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  globalGet: 0x23,
  globalSet: 0x24,
  i64Const: 0x42,
  i64LtS: 0x53,
  i64Sub: 0x7d,
} as const;

/**
 * Decodes one instruction at a time from a ByteReader. Fields describe the
 * last decoded instruction; reusing one decoder avoids an allocation per
 * instruction on large code sections.
 */
export class InstructionDecoder {
  /** Opcode; prefixed ones are `prefix << 24 | sub`. */
  opcode = 0;
  flow: Flow = Flow.Plain;
  /** Relative label depth for Br/BrIf. */
  label = 0;
  /** Relative label depths for BrTable (including the default, last). */
  targets: number[] = [];
  /** Fuel cost, wasmtime's convention: structural instructions are free. */
  cost = 1;
  /** Control may leave the function here (call, return, tail call, throw): state kept in locals must be written back first. */
  leaves = false;
  /** A call: code after it runs after the callee (whose effects must be reloaded). */
  call = false;

  /** Decodes the instruction at `r.pos` and advances past it. */
  next(r: ByteReader): Flow {
    const at = r.pos;
    const op = r.u8();
    this.opcode = op;
    this.cost = 1;
    this.flow = Flow.Plain;
    this.leaves = false;
    this.call = false;
    switch (op) {
      case 0x00: // unreachable
        this.cost = 0;
        return (this.flow = Flow.Exit);
      case 0x01: // nop
        this.cost = 0;
        return Flow.Plain;
      case 0x02:
        blockType(r);
        this.cost = 0;
        return (this.flow = Flow.Block);
      case 0x03:
        blockType(r);
        this.cost = 0;
        return (this.flow = Flow.Loop);
      case 0x04:
        blockType(r);
        return (this.flow = Flow.If);
      case 0x05:
        this.cost = 0;
        return (this.flow = Flow.Else);
      case 0x06: // try
        blockType(r);
        this.cost = 0;
        return (this.flow = Flow.Try);
      case 0x07: // catch tagidx
        r.u32();
        this.cost = 0;
        return (this.flow = Flow.Catch);
      case 0x19: // catch_all
        this.cost = 0;
        return (this.flow = Flow.Catch);
      case 0x08: // throw tagidx
        r.u32();
        this.leaves = true;
        return (this.flow = Flow.Exit);
      case 0x09: // rethrow depth
        r.u32();
        this.leaves = true;
        return (this.flow = Flow.Exit);
      case 0x18: // delegate depth
        this.label = r.u32();
        this.cost = 0;
        return (this.flow = Flow.Delegate);
      case 0x0b:
        this.cost = 0;
        return (this.flow = Flow.End);
      case 0x0c:
        this.label = r.u32();
        return (this.flow = Flow.Br);
      case 0x0d:
        this.label = r.u32();
        return (this.flow = Flow.BrIf);
      case 0x0e: {
        const n = r.count("br_table targets", 1, 1 << 20);
        const targets = (this.targets = new Array<number>(n + 1));
        for (let i = 0; i <= n; i++) targets[i] = r.u32();
        return (this.flow = Flow.BrTable);
      }
      case 0x0f: // return
        this.cost = 0;
        this.leaves = true;
        return (this.flow = Flow.Exit);
      case 0x10: // call
        r.u32();
        this.leaves = this.call = true;
        return Flow.Plain;
      case 0x11: // call_indirect typeidx tableidx
        r.u32();
        r.u32();
        this.leaves = this.call = true;
        return Flow.Plain;
      case 0x12: // return_call
        r.u32();
        this.leaves = true;
        return (this.flow = Flow.Exit);
      case 0x13: // return_call_indirect
        r.u32();
        r.u32();
        this.leaves = true;
        return (this.flow = Flow.Exit);
      case 0x1a: // drop
        this.cost = 0;
        return Flow.Plain;
      case 0x1b: // select
        return Flow.Plain;
      case 0x1c: {
        // select t*
        const n = r.count("select types", 1, 16);
        for (let i = 0; i < n; i++) simpleValType(r);
        return Flow.Plain;
      }
      case 0x20:
      case 0x21:
      case 0x22:
      case 0x23:
      case 0x24:
      case 0x25: // table.get
      case 0x26: // table.set
        r.u32();
        return Flow.Plain;
      case 0x3f: // memory.size
      case 0x40: // memory.grow
        r.u32();
        return Flow.Plain;
      case 0x41:
        r.s32();
        return Flow.Plain;
      case 0x42:
        r.skipS64();
        return Flow.Plain;
      case 0x43:
        r.skip(4);
        return Flow.Plain;
      case 0x44:
        r.skip(8);
        return Flow.Plain;
      case 0xd0: // ref.null heaptype
        heapType(r);
        return Flow.Plain;
      case 0xd1: // ref.is_null
        return Flow.Plain;
      case 0xd2: // ref.func
        r.u32();
        return Flow.Plain;
      case 0xfc:
        return this.prefixFC(r, at);
      case 0xfd:
        return this.prefixFD(r, at);
      case 0xfe:
        return this.prefixFE(r, at);
    }
    if (op >= 0x28 && op <= 0x3e) {
      memarg(r);
      return Flow.Plain;
    }
    if (op >= 0x45 && op <= 0xc4) return Flow.Plain;
    return unsupportedOpcode(op, at, r);
  }

  private prefixFC(r: ByteReader, at: number): Flow {
    const sub = r.u32();
    this.opcode = (0xfc << 24) | sub;
    switch (sub) {
      case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: // trunc_sat
        return Flow.Plain;
      case 8: // memory.init data mem
      case 10: // memory.copy mem mem
      case 12: // table.init elem table
      case 14: // table.copy table table
        r.u32();
        r.u32();
        return Flow.Plain;
      case 9: // data.drop
      case 11: // memory.fill
      case 13: // elem.drop
      case 15: // table.grow
      case 16: // table.size
      case 17: // table.fill
        r.u32();
        return Flow.Plain;
    }
    throw new WasmUnsupportedError("this 0xfc instruction", at, `unknown instruction 0xfc ${sub}`);
  }

  private prefixFD(r: ByteReader, at: number): Flow {
    const sub = r.u32();
    this.opcode = (0xfd << 24) | sub;
    if (sub <= 0x0b || sub === 0x5c || sub === 0x5d) {
      memarg(r); // loads, stores, load_zero
    } else if (sub === 0x0c || sub === 0x0d) {
      r.skip(16); // v128.const, i8x16.shuffle
    } else if (sub >= 0x15 && sub <= 0x22) {
      r.u8(); // extract/replace lane
    } else if (sub >= 0x54 && sub <= 0x5b) {
      memarg(r); // load/store lane
      r.u8();
    } else if (sub > 0x113) {
      throw new WasmUnsupportedError("this SIMD instruction", at, `unknown SIMD instruction 0xfd ${sub}`);
    }
    return Flow.Plain;
  }

  private prefixFE(r: ByteReader, at: number): Flow {
    const sub = r.u32();
    this.opcode = (0xfe << 24) | sub;
    if (sub === 0x03) {
      // atomic.fence takes a reserved zero byte
      if (r.u8() !== 0) r.fail("atomic.fence reserved byte must be 0", r.pos - 1);
      return Flow.Plain;
    }
    if (sub <= 0x02 || (sub >= 0x10 && sub <= 0x4e)) {
      memarg(r);
      return Flow.Plain;
    }
    throw new WasmUnsupportedError("this atomic instruction", at, `unknown atomic instruction 0xfe ${sub}`);
  }
}

function unsupportedOpcode(op: number, at: number, r: ByteReader): never {
  const hexOp = "0x" + op.toString(16).padStart(2, "0");
  if (op === 0x0a || op === 0x1f)
    throw new WasmUnsupportedError("exnref exception handling", at, `instruction ${hexOp}`);
  if (op === 0x14 || op === 0x15 || (op >= 0xd3 && op <= 0xd6))
    throw new WasmUnsupportedError("typed function references", at, `instruction ${hexOp}`);
  if (op === 0xfb) throw new WasmUnsupportedError("garbage collection", at, `instruction ${hexOp}`);
  return r.fail(`unknown opcode ${hexOp}`, at);
}

/** memarg: align (with the multi-memory flag bit 6), [memidx], offset (u64 for memory64). */
function memarg(r: ByteReader): void {
  const align = r.u32();
  if (align & 0x40) r.u32();
  r.u64();
}

/** Block type: empty, one value type, or a type index (multi-value). */
export function blockType(r: ByteReader): void {
  const at = r.pos;
  const bt = r.s33();
  if (bt >= 0) return;
  // -64 empty, -1..-5 i32 i64 f32 f64 v128, -16 funcref, -17 externref
  if (bt === -64 || (bt <= -1 && bt >= -5) || bt === -16 || bt === -17) return;
  if (bt === -29 || bt === -28)
    throw new WasmUnsupportedError("typed function references", at, "reference block type");
  r.fail(`invalid block type ${bt}`, at);
}

function simpleValType(r: ByteReader): void {
  const at = r.pos;
  const b = r.u8();
  if ((b >= 0x7b && b <= 0x7f) || b === 0x70 || b === 0x6f) return;
  if (b === 0x63 || b === 0x64)
    throw new WasmUnsupportedError("typed function references", at, "reference value type");
  r.fail(`invalid value type 0x${b.toString(16)}`, at);
}

function heapType(r: ByteReader): void {
  const at = r.pos;
  const ht = r.s33();
  if (ht === -16 || ht === -17) return; // func, extern
  if (ht >= 0) throw new WasmUnsupportedError("typed function references", at, "concrete heap type");
  throw new WasmUnsupportedError("garbage collection", at, `heap type ${ht}`);
}

/**
 * Skips a constant expression (global initializers, segment offsets), which
 * ends with `end` at depth 0.
 */
export function skipConstExpr(r: ByteReader, decoder = new InstructionDecoder()): void {
  for (;;) {
    const flow = decoder.next(r);
    if (flow === Flow.End) return;
    if (flow !== Flow.Plain) r.fail("control instruction in a constant expression", r.pos - 1);
  }
}
