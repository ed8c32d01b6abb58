/**
 * Finds the line of each key in a TOML source, so a schema error can say
 * `uniwasm.toml:14: capabilities.dirs[1].mode: ...` even though the parser
 * only hands back plain values. It is a line scanner, not a second parser: it
 * follows `[table]` and `[[array-of-tables]]` headers (counting array
 * indices), `key =` and `dotted.key =` lines, and skips the insides of
 * multi-line strings and arrays. Keys inside inline tables resolve to their
 * enclosing key's line via `lineOf`'s fallback to the nearest parent.
 */

export class KeyLines {
  private readonly lines = new Map<string, number>();

  constructor(source: string) {
    const arrayCounts = new Map<string, number>();
    let prefix: string[] = [];
    let inMultiline: '"""' | "'''" | null = null;
    let depth = 0;
    const rows = source.split(/\r?\n/);
    for (let i = 0; i < rows.length; i++) {
      const lineNo = i + 1;
      let row = rows[i]!;
      if (inMultiline) {
        const end = row.indexOf(inMultiline);
        if (end < 0) continue;
        row = row.slice(end + 3);
        inMultiline = null;
        continue;
      }
      if (depth > 0) {
        depth += bracketDelta(row);
        if (depth < 0) depth = 0;
        continue;
      }
      const t = row.trim();
      if (t === "" || t.startsWith("#")) continue;
      if (t.startsWith("[[")) {
        const keys = splitKey(t.slice(2, t.indexOf("]]")));
        const path = this.resolve(keys.slice(0, -1), arrayCounts).concat(keys.slice(-1));
        const base = path.join(".");
        const n = arrayCounts.get(base) ?? 0;
        arrayCounts.set(base, n + 1);
        prefix = [`${base}[${n}]`];
        this.set(prefix[0]!, lineNo);
        this.set(base, lineNo, false);
        continue;
      }
      if (t.startsWith("[")) {
        const keys = splitKey(t.slice(1, t.indexOf("]")));
        prefix = [this.resolve(keys, arrayCounts).join(".")];
        this.set(prefix[0]!, lineNo, false);
        continue;
      }
      const eq = findAssign(t);
      if (eq < 0) continue;
      const keys = splitKey(t.slice(0, eq));
      let full = prefix.concat(keys).filter((k) => k !== "").join(".");
      this.set(full, lineNo);
      for (let k = keys.length - 1; k > 0; k--) {
        full = prefix.concat(keys.slice(0, k)).filter((x) => x !== "").join(".");
        this.set(full, lineNo, false);
      }
      const value = t.slice(eq + 1);
      const ml = value.match(/("""|''')/);
      if (ml && value.split(ml[1]!).length === 2) inMultiline = ml[1] as '"""' | "'''";
      depth = Math.max(0, bracketDelta(value));
    }
  }

  /** Appends `[last index]` to each prefix that names an array of tables, as TOML does. */
  private resolve(keys: string[], counts: Map<string, number>): string[] {
    const out: string[] = [];
    for (const k of keys) {
      const base = out.concat(k).join(".");
      const n = counts.get(base);
      out.length = 0;
      out.push(n === undefined ? base : `${base}[${n - 1}]`);
    }
    return out.length ? [out[0]!] : [];
  }

  private set(path: string, line: number, overwrite = true): void {
    if (overwrite || !this.lines.has(path)) this.lines.set(path, line);
  }

  /** Line of `path` (e.g. `limits.memory`, `capabilities.dirs[0].mode`), else of its nearest parent. */
  lineOf(path: string): number | undefined {
    let p = path;
    while (p !== "") {
      const l = this.lines.get(p);
      if (l !== undefined) return l;
      const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
      p = cut < 0 ? "" : p.slice(0, cut);
    }
    return undefined;
  }
}

/** Splits `a."b.c".d` into ["a", "b.c", "d"]. */
function splitKey(s: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | null = null;
  for (const ch of s.trim()) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === ".") {
      out.push(cur.trim());
      cur = "";
    } else cur += ch;
  }
  out.push(cur.trim());
  return out;
}

/** Index of the `=` that ends a key, ignoring any inside quoted keys. */
function findAssign(t: string): number {
  let quote: string | null = null;
  for (let i = 0; i < t.length; i++) {
    const ch = t[i]!;
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "=") return i;
    else if (ch === "#") return -1;
  }
  return -1;
}

/** Net `[`/`{` nesting opened on a line, outside strings and comments. */
function bracketDelta(s: string): number {
  let d = 0;
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quote) {
      if (ch === "\\" && quote === '"') i++;
      else if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "#") break;
    else if (ch === "[" || ch === "{") d++;
    else if (ch === "]" || ch === "}") d--;
  }
  return d;
}
