/**
 * Source lines for trap backtraces: a reader of DWARF's line table
 * (`.debug_line`, versions 2 to 5) as clang and wasm-ld leave it in a module
 * built with `-g`.
 *
 * In WebAssembly, DWARF addresses are offsets from the start of the Code
 * section's contents (after its size field), so a frame at module offset X is
 * at address X - codeStart. Rows of code that the linker dropped carry a
 * tombstone address (0xffffffff, or 0xfffffffe in .debug_ranges style) and
 * are skipped. Only what a backtrace needs is decoded: address, file, line,
 * column. The section is advisory: a malformed one yields no lines, never an
 * error.
 */

export interface SourceLocation {
  file: string;
  line: number;
  /** 0 when unknown. */
  column: number;
}

interface Row {
  address: number;
  file: string;
  line: number;
  column: number;
  /** First address after the sequence this row belongs to. */
  end: number;
}

/** Maps code addresses to source lines; build once per module with `readLineTable`. */
export class LineTable {
  /** Sorted by address. */
  constructor(private readonly rows: readonly Row[]) {}

  get size(): number {
    return this.rows.length;
  }

  /** The source location of the instruction at `address` (code-section relative), if the table covers it. */
  lookup(address: number): SourceLocation | undefined {
    let lo = 0;
    let hi = this.rows.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.rows[mid]!.address <= address) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    // Rows with line 0 belong to no source line (compiler-generated code): take the nearest real row before it.
    for (let i = found; i >= 0; i--) {
      const r = this.rows[i]!;
      if (address >= r.end) return undefined;
      if (r.line > 0) return { file: r.file, line: r.line, column: r.column };
    }
    return undefined;
  }
}

/** Custom sections by name (the ones DWARF needs), as `WebAssembly.Module.customSections` or the reader give them. */
export type DebugSections = ReadonlyMap<string, Uint8Array>;

const TOMBSTONE_MIN = 0xfffffffe;

/** Reads `.debug_line` (with `.debug_line_str`/`.debug_str` for DWARF 5 file names). Undefined when absent or unreadable. */
export function readLineTable(sections: DebugSections): LineTable | undefined {
  const line = sections.get(".debug_line");
  if (!line || line.length === 0) return undefined;
  const rows: Row[] = [];
  try {
    let at = 0;
    while (at < line.length) at = readUnit(line, at, sections, rows);
  } catch {
    if (rows.length === 0) return undefined; // keep what decoded cleanly before a bad unit
  }
  rows.sort((a, b) => a.address - b.address || a.end - b.end);
  return rows.length > 0 ? new LineTable(rows) : undefined;
}

class Cursor {
  constructor(
    readonly b: Uint8Array,
    public pos: number,
  ) {}
  private need(n: number): void {
    if (this.pos + n > this.b.length) throw new RangeError("truncated DWARF");
  }
  u8(): number {
    this.need(1);
    return this.b[this.pos++]!;
  }
  i8(): number {
    const v = this.u8();
    return v > 127 ? v - 256 : v;
  }
  u16(): number {
    return this.u8() | (this.u8() << 8);
  }
  u32(): number {
    return (this.u16() | (this.u16() << 16)) >>> 0;
  }
  u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    return hi * 2 ** 32 + lo;
  }
  uleb(): number {
    let result = 0;
    let mul = 1;
    for (;;) {
      const byte = this.u8();
      result += (byte & 0x7f) * mul;
      if ((byte & 0x80) === 0) return result;
      mul *= 128;
      if (mul > 2 ** 56) throw new RangeError("LEB128 too long");
    }
  }
  sleb(): number {
    let result = 0;
    let mul = 1;
    let byte: number;
    do {
      byte = this.u8();
      result += (byte & 0x7f) * mul;
      mul *= 128;
      if (mul > 2 ** 56) throw new RangeError("LEB128 too long");
    } while (byte & 0x80);
    if (byte & 0x40) result -= mul;
    return result;
  }
  cstr(): string {
    const start = this.pos;
    while (this.b[this.pos] !== 0) this.need(1), this.pos++;
    const s = new TextDecoder().decode(this.b.subarray(start, this.pos));
    this.pos++;
    return s;
  }
}

function strAt(section: Uint8Array | undefined, offset: number): string {
  if (!section || offset >= section.length) return "?";
  let end = offset;
  while (end < section.length && section[end] !== 0) end++;
  return new TextDecoder().decode(section.subarray(offset, end));
}

const DW_FORM = { block: 0x09, block1: 0x0a, data1: 0x0b, data2: 0x05, data4: 0x06, data8: 0x07, data16: 0x1e, string: 0x08, strp: 0x0e, udata: 0x0f, line_strp: 0x1f, strx: 0x1a, strx1: 0x25, strx2: 0x26, strx4: 0x28 } as const;

/** One DWARF 5 entry-format value: a string for paths, a number for indices. */
function formValue(c: Cursor, form: number, offset64: boolean, sections: DebugSections): string | number {
  switch (form) {
    case DW_FORM.string:
      return c.cstr();
    case DW_FORM.line_strp:
      return strAt(sections.get(".debug_line_str"), offset64 ? c.u64() : c.u32());
    case DW_FORM.strp:
      return strAt(sections.get(".debug_str"), offset64 ? c.u64() : c.u32());
    case DW_FORM.udata:
      return c.uleb();
    case DW_FORM.data1:
      return c.u8();
    case DW_FORM.data2:
      return c.u16();
    case DW_FORM.data4:
      return c.u32();
    case DW_FORM.data8:
      return c.u64();
    case DW_FORM.data16:
      c.pos += 16;
      return 0;
    case DW_FORM.block:
      c.pos += c.uleb();
      return 0;
    case DW_FORM.block1:
      c.pos += c.u8();
      return 0;
    default:
      throw new RangeError(`unsupported DWARF form 0x${form.toString(16)}`);
  }
}

function join(dir: string, name: string): string {
  if (name.startsWith("/") || !dir) return name;
  return `${dir.replace(/\/+$/, "")}/${name}`;
}

/** Reads one line-number program unit starting at `start`; appends its rows; returns where the next unit starts. */
function readUnit(b: Uint8Array, start: number, sections: DebugSections, rows: Row[]): number {
  const c = new Cursor(b, start);
  let unitLength = c.u32();
  let offset64 = false;
  if (unitLength === 0xffffffff) {
    unitLength = c.u64();
    offset64 = true;
  }
  const end = c.pos + unitLength;
  if (end > b.length) throw new RangeError("unit past the section");
  const version = c.u16();
  if (version < 2 || version > 5) return end; // unknown version: skip the unit
  let addressSize = 4;
  if (version >= 5) {
    addressSize = c.u8();
    c.u8(); // segment selector size
  }
  const headerLength = offset64 ? c.u64() : c.u32();
  const programStart = c.pos + headerLength;
  const minInstLength = c.u8();
  if (version >= 4) c.u8(); // maximum operations per instruction (1 outside VLIW)
  const defaultIsStmt = c.u8() !== 0;
  void defaultIsStmt;
  const lineBase = c.i8();
  const lineRange = c.u8();
  const opcodeBase = c.u8();
  const opLengths: number[] = [];
  for (let i = 1; i < opcodeBase; i++) opLengths.push(c.u8());
  if (lineRange === 0) return end;

  // Directories and files: index 0 is the compilation directory in DWARF 5, the first listed file is 1 before it.
  const dirs: string[] = [];
  const files: string[] = [];
  if (version >= 5) {
    const table = (): { path: string; dir: number }[] => {
      const formatCount = c.u8();
      const formats: [number, number][] = [];
      for (let i = 0; i < formatCount; i++) formats.push([c.uleb(), c.uleb()]);
      const count = c.uleb();
      const out: { path: string; dir: number }[] = [];
      for (let i = 0; i < count; i++) {
        let path = "";
        let dir = 0;
        for (const [type, form] of formats) {
          const v = formValue(c, form, offset64, sections);
          if (type === 1) path = String(v);
          else if (type === 2) dir = Number(v);
        }
        out.push({ path, dir });
      }
      return out;
    };
    for (const d of table()) dirs.push(d.path);
    for (const f of table()) files.push(join(f.dir > 0 ? dirs[f.dir] ?? "" : "", f.path));
  } else {
    dirs.push("");
    for (let d = c.cstr(); d !== ""; d = c.cstr()) dirs.push(d);
    files.push("?"); // file numbers start at 1
    for (let f = c.cstr(); f !== ""; f = c.cstr()) {
      const dir = c.uleb();
      c.uleb(); // mtime
      c.uleb(); // length
      files.push(join(dirs[dir] ?? "", f));
    }
  }

  c.pos = programStart;
  let address = 0;
  let file = 1;
  let line = 1;
  let column = 0;
  let sequence: Row[] = [];
  const fileName = (n: number) => files[n] ?? "?";
  const emit = () => sequence.push({ address, file: fileName(file), line, column, end: 0 });
  const endSequence = () => {
    // Code the linker dropped keeps a tombstone address; its rows describe nothing in this module.
    for (const r of sequence) {
      if (r.address >= TOMBSTONE_MIN || address >= TOMBSTONE_MIN || address < r.address) continue;
      r.end = address;
      rows.push(r);
    }
    sequence = [];
    address = 0;
    file = 1;
    line = 1;
    column = 0;
  };
  while (c.pos < end) {
    const op = c.u8();
    if (op >= opcodeBase) {
      const adjusted = op - opcodeBase;
      address += minInstLength * Math.floor(adjusted / lineRange);
      line += lineBase + (adjusted % lineRange);
      emit();
      continue;
    }
    switch (op) {
      case 0: {
        const len = c.uleb();
        const next = c.pos + len;
        const sub = len > 0 ? c.u8() : 0;
        if (sub === 1) endSequence();
        else if (sub === 2) address = addressSize === 8 || len - 1 === 8 ? c.u64() : c.u32();
        c.pos = next;
        break;
      }
      case 1:
        emit();
        break;
      case 2:
        address += minInstLength * c.uleb();
        break;
      case 3:
        line += c.sleb();
        break;
      case 4:
        file = c.uleb();
        break;
      case 5:
        column = c.uleb();
        break;
      case 8:
        address += minInstLength * Math.floor((255 - opcodeBase) / lineRange);
        break;
      case 9:
        address += c.u16();
        break;
      case 6:
      case 7:
      case 10:
      case 11:
        break;
      default:
        for (let i = 0; i < (opLengths[op - 1] ?? 0); i++) c.uleb();
    }
  }
  return end;
}
