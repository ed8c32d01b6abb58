/**
 * The seccomp compiler: an allow-list written as JSON in Firecracker's format
 * (resources/seccomp/x86_64.json; see Firecracker's docs/seccompiler.md) is
 * compiled to a classic BPF program, the form `bwrap --seccomp FD` loads with
 * seccomp(2) just before it executes node.
 *
 *   { "executor": { "default_action": "kill_process", "filter_action": "allow",
 *                   "filter": [ { "syscall": "read", "comment": "why" },
 *                               { "syscall": "clone", "comment": "why",
 *                                 "args": [ { "index": 0, "type": "dword", "op": { "masked_eq": 65536 },
 *                                             "val": 65536, "comment": "CLONE_THREAD" } ] } ] } }
 *
 * A rule matches when all its conditions hold (`args` are and-bound); rules
 * for the same call are or-bound. Unlike Firecracker, a comment is required
 * on every rule (the reason it is on the list), and a rule may carry its own
 * `action` (e.g. `{ "errno": 38 }` for a call a library probes and handles
 * being refused).
 *
 * The program: check the architecture (AUDIT_ARCH_X86_64, anything else is
 * killed), refuse the x32 ABI (numbers with bit 30 set), then one compare
 * per listed call, each followed by that call's rules inline; everything
 * else gets the default action.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { X86_64_SYSCALLS } from "./syscalls-x86_64.js";

export type SeccompAction = "allow" | "kill_process" | "kill_thread" | "trap" | "log" | { errno: number };

export interface SeccompCondition {
  /** Argument index, 0-5. */
  index: number;
  /** "dword": the low 32 bits; "qword": all 64. */
  type: "dword" | "qword";
  op: "eq" | "ne" | "lt" | "le" | "gt" | "ge" | { masked_eq: number };
  val: number;
  comment?: string;
}

export interface SeccompRule {
  syscall: string;
  /** Why the executor needs it (required). */
  comment: string;
  args?: SeccompCondition[];
  /** Overrides the filter's filter_action for this rule. */
  action?: SeccompAction;
}

export interface SeccompFilter {
  default_action: SeccompAction;
  filter_action: SeccompAction;
  filter: SeccompRule[];
}

export class SeccompPolicyError extends Error {
  constructor(message: string) {
    super(`seccomp policy: ${message}`);
    this.name = "SeccompPolicyError";
  }
}

// ---- classic BPF --------------------------------------------------------------

const BPF_LD_W_ABS = 0x20;
const BPF_JEQ_K = 0x15;
const BPF_JGT_K = 0x25;
const BPF_JGE_K = 0x35;
const BPF_AND_K = 0x54;
const BPF_RET_K = 0x06;

const SECCOMP_RET_KILL_PROCESS = 0x80000000;
const SECCOMP_RET_KILL_THREAD = 0x00000000;
const SECCOMP_RET_TRAP = 0x00030000;
const SECCOMP_RET_ERRNO = 0x00050000;
const SECCOMP_RET_LOG = 0x7ffc0000;
const SECCOMP_RET_ALLOW = 0x7fff0000;

export const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;

/** struct seccomp_data offsets. */
const OFF_NR = 0;
const OFF_ARCH = 4;
const offArg = (i: number, high: boolean): number => 16 + 8 * i + (high ? 4 : 0);

/** The kernel's limit on a filter's length (BPF_MAXINSNS). */
const MAX_INSNS = 4096;

export interface BpfInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const stmt = (code: number, k: number): BpfInsn => ({ code, jt: 0, jf: 0, k: k >>> 0 });
const jump = (code: number, k: number, jt: number, jf: number): BpfInsn => {
  if (jt > 255 || jf > 255) throw new SeccompPolicyError("a rule is too long to jump over (more than 255 instructions)");
  return { code, jt, jf, k: k >>> 0 };
};

function actionValue(a: SeccompAction, where: string): number {
  if (typeof a === "object" && a !== null && typeof a.errno === "number") {
    if (!Number.isInteger(a.errno) || a.errno < 0 || a.errno > 4095) throw new SeccompPolicyError(`${where}: errno must be 0-4095, got ${a.errno}`);
    return SECCOMP_RET_ERRNO | a.errno;
  }
  switch (a) {
    case "allow": return SECCOMP_RET_ALLOW;
    case "kill_process": return SECCOMP_RET_KILL_PROCESS;
    case "kill_thread": return SECCOMP_RET_KILL_THREAD;
    case "trap": return SECCOMP_RET_TRAP;
    case "log": return SECCOMP_RET_LOG;
  }
  throw new SeccompPolicyError(`${where}: unknown action ${JSON.stringify(a)} (allow, kill_process, kill_thread, trap, log, {"errno": N})`);
}

/**
 * The instructions of one condition: they fall through to the next
 * instruction when it holds, and jump `fail` instructions past their own end
 * when it does not.
 */
function condition(c: SeccompCondition, fail: number, where: string): BpfInsn[] {
  const { index, type, op, val } = c;
  if (!Number.isInteger(index) || index < 0 || index > 5) throw new SeccompPolicyError(`${where}: argument index must be 0-5, got ${index}`);
  if (!Number.isSafeInteger(val) || val < 0) throw new SeccompPolicyError(`${where}: val must be a non-negative integer, got ${val}`);
  const mask = typeof op === "object" && op !== null ? op.masked_eq : undefined;
  if (mask !== undefined && (!Number.isSafeInteger(mask) || mask < 0)) throw new SeccompPolicyError(`${where}: masked_eq needs a non-negative integer mask`);
  const lo = val % 2 ** 32;
  const hi = Math.floor(val / 2 ** 32);
  if (type === "dword") {
    if (hi !== 0 || (mask !== undefined && mask >= 2 ** 32)) throw new SeccompPolicyError(`${where}: a dword value must fit in 32 bits`);
    const load = stmt(BPF_LD_W_ABS, offArg(index, false));
    // Each sequence below is `n` instructions long; `fail + (n - 1 - i)` reaches past the end from instruction i.
    if (mask !== undefined) return [load, stmt(BPF_AND_K, mask), jump(BPF_JEQ_K, lo, 0, fail)];
    switch (op) {
      case "eq": return [load, jump(BPF_JEQ_K, lo, 0, fail)];
      case "ne": return [load, jump(BPF_JEQ_K, lo, fail, 0)];
      case "gt": return [load, jump(BPF_JGT_K, lo, 0, fail)];
      case "ge": return [load, jump(BPF_JGE_K, lo, 0, fail)];
      case "lt": return [load, jump(BPF_JGE_K, lo, fail, 0)];
      case "le": return [load, jump(BPF_JGT_K, lo, fail, 0)];
    }
    throw new SeccompPolicyError(`${where}: unknown op ${JSON.stringify(op)}`);
  }
  if (type !== "qword") throw new SeccompPolicyError(`${where}: type must be "dword" or "qword", got ${JSON.stringify(type)}`);
  const mlo = mask === undefined ? undefined : mask % 2 ** 32;
  const mhi = mask === undefined ? undefined : Math.floor(mask / 2 ** 32);
  const half = (high: boolean, m: number | undefined): BpfInsn[] =>
    m === undefined ? [stmt(BPF_LD_W_ABS, offArg(index, high))] : [stmt(BPF_LD_W_ABS, offArg(index, high)), stmt(BPF_AND_K, m)];
  if (op === "eq" || mask !== undefined) {
    const h = half(true, mhi);
    const l = half(false, mlo);
    // [h..., jeq hi (fail past the rest), l..., jeq lo (fail)]
    const restAfterHi = l.length + 1;
    return [...h, jump(BPF_JEQ_K, hi, 0, fail + restAfterHi), ...l, jump(BPF_JEQ_K, lo, 0, fail)];
  }
  if (op === "ne") {
    // Holds when either half differs.
    const l = half(false, undefined);
    return [stmt(BPF_LD_W_ABS, offArg(index, true)), jump(BPF_JEQ_K, hi, 0, l.length + 1), ...l, jump(BPF_JEQ_K, lo, fail, 0)];
  }
  throw new SeccompPolicyError(`${where}: qword supports eq, ne and masked_eq only (use dword for ${JSON.stringify(op)})`);
}

/** Checks a parsed policy and returns its filter named `name`. Throws SeccompPolicyError naming the problem. */
export function checkPolicy(policy: unknown, name: string, table: Readonly<Record<string, number>> = X86_64_SYSCALLS): SeccompFilter {
  if (typeof policy !== "object" || policy === null) throw new SeccompPolicyError("the file must hold an object of named filters");
  const f = (policy as Record<string, unknown>)[name] as SeccompFilter | undefined;
  if (!f || typeof f !== "object") throw new SeccompPolicyError(`no filter named "${name}"`);
  for (const k of Object.keys(f)) if (!["default_action", "filter_action", "filter"].includes(k)) throw new SeccompPolicyError(`${name}: unknown field "${k}"`);
  actionValue(f.default_action, `${name}.default_action`);
  actionValue(f.filter_action, `${name}.filter_action`);
  if (!Array.isArray(f.filter)) throw new SeccompPolicyError(`${name}.filter must be an array of rules`);
  const unconditional = new Set<string>();
  f.filter.forEach((r, i) => {
    const where = `${name}.filter[${i}] (${(r as SeccompRule)?.syscall})`;
    if (typeof r !== "object" || r === null) throw new SeccompPolicyError(`${where}: a rule must be an object`);
    for (const k of Object.keys(r)) if (!["syscall", "comment", "args", "action"].includes(k)) throw new SeccompPolicyError(`${where}: unknown field "${k}"`);
    if (typeof r.syscall !== "string" || table[r.syscall] === undefined) throw new SeccompPolicyError(`${where}: unknown system call ${JSON.stringify(r.syscall)}`);
    if (typeof r.comment !== "string" || r.comment.trim().length < 8) throw new SeccompPolicyError(`${where}: every rule needs a comment saying why it is allowed`);
    if (r.action !== undefined) actionValue(r.action, where);
    if (r.args !== undefined && (!Array.isArray(r.args) || r.args.length === 0)) throw new SeccompPolicyError(`${where}: args must be a non-empty array when given`);
    if (unconditional.has(r.syscall)) throw new SeccompPolicyError(`${where}: an earlier rule already matches every ${r.syscall} call`);
    if (!r.args) unconditional.add(r.syscall);
    r.args?.forEach((c, j) => condition(c, 0, `${where}.args[${j}]`));
  });
  return f;
}

/** Compiles a checked filter to BPF instructions. */
export function compileFilter(f: SeccompFilter, table: Readonly<Record<string, number>> = X86_64_SYSCALLS, arch = AUDIT_ARCH_X86_64): BpfInsn[] {
  const dflt = actionValue(f.default_action, "default_action");
  const allow = actionValue(f.filter_action, "filter_action");
  const groups = new Map<string, SeccompRule[]>();
  for (const r of f.filter) groups.set(r.syscall, [...(groups.get(r.syscall) ?? []), r]);
  const prog: BpfInsn[] = [
    stmt(BPF_LD_W_ABS, OFF_ARCH),
    jump(BPF_JEQ_K, arch, 1, 0),
    stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
    stmt(BPF_LD_W_ABS, OFF_NR),
    jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1),
    stmt(BPF_RET_K, dflt),
  ];
  for (const [name, rules] of groups) {
    const block: BpfInsn[] = [];
    // Rules in order; each one's conditions fail to the next rule, the last to the default.
    const compiled = rules.map((r, i) => {
      const act = stmt(BPF_RET_K, r.action !== undefined ? actionValue(r.action, name) : allow);
      if (!r.args) return [act];
      // Build back to front: each condition fails past the rest of this rule (conditions + the return).
      let tail: BpfInsn[] = [act];
      for (let j = r.args.length - 1; j >= 0; j--) tail = [...condition(r.args[j]!, tail.length, `${name} rule ${i}`), ...tail];
      return tail;
    });
    for (const c of compiled) block.push(...c);
    block.push(stmt(BPF_RET_K, dflt));
    prog.push(jump(BPF_JEQ_K, table[name]!, 0, block.length), ...block);
  }
  prog.push(stmt(BPF_RET_K, dflt));
  if (prog.length > MAX_INSNS) throw new SeccompPolicyError(`the program has ${prog.length} instructions (the kernel takes at most ${MAX_INSNS})`);
  return prog;
}

/** struct sock_filter[] as the kernel reads it (host byte order: x86_64 is little-endian). */
export function encodeProgram(prog: readonly BpfInsn[]): Buffer {
  const b = Buffer.alloc(prog.length * 8);
  prog.forEach((x, i) => {
    b.writeUInt16LE(x.code, i * 8);
    b[i * 8 + 2] = x.jt;
    b[i * 8 + 3] = x.jf;
    b.writeUInt32LE(x.k, i * 8 + 4);
  });
  return b;
}

/** What the kernel would return for a call (a classic BPF interpreter for the instructions this compiler emits), for tests and audits. */
export function evaluate(prog: readonly BpfInsn[], call: { nr: number; arch?: number; args?: readonly (number | bigint)[] }): number {
  const arch = call.arch ?? AUDIT_ARCH_X86_64;
  const word = (off: number): number => {
    if (off === OFF_NR) return call.nr >>> 0;
    if (off === OFF_ARCH) return arch >>> 0;
    const i = Math.floor((off - 16) / 8);
    const v = BigInt(call.args?.[i] ?? 0) & 0xffffffffffffffffn;
    return Number((off - 16) % 8 === 4 ? v >> 32n : v & 0xffffffffn);
  };
  let a = 0;
  for (let pc = 0; pc < prog.length; pc++) {
    const x = prog[pc]!;
    switch (x.code) {
      case BPF_LD_W_ABS: a = word(x.k); break;
      case BPF_AND_K: a = (a & x.k) >>> 0; break;
      case BPF_RET_K: return x.k;
      case BPF_JEQ_K: pc += a === x.k ? x.jt : x.jf; break;
      case BPF_JGT_K: pc += a > x.k ? x.jt : x.jf; break;
      case BPF_JGE_K: pc += a >= x.k ? x.jt : x.jf; break;
      default: throw new Error(`evaluate: unknown instruction ${x.code}`);
    }
  }
  throw new Error("evaluate: fell off the end of the program");
}

export const RET = { ALLOW: SECCOMP_RET_ALLOW, KILL_PROCESS: SECCOMP_RET_KILL_PROCESS, ERRNO: SECCOMP_RET_ERRNO } as const;

/** The executor's allow-list, checked in at resources/seccomp/x86_64.json. */
export const EXECUTOR_POLICY_PATH = fileURLToPath(new URL("../../../../resources/seccomp/x86_64.json", import.meta.url));

let compiled: Buffer | undefined;

/** The executor filter (its rules, as checked) from the checked-in allow-list. */
export function executorFilter(): SeccompFilter {
  return checkPolicy(JSON.parse(readFileSync(EXECUTOR_POLICY_PATH, "utf8")) as unknown, "executor");
}

/** The executor's BPF program, compiled once per node. */
export function executorSeccompFilter(): Buffer {
  compiled ??= encodeProgram(compileFilter(executorFilter()));
  return compiled;
}
