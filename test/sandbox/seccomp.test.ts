import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { AUDIT_ARCH_X86_64, checkPolicy, compileFilter, encodeProgram, evaluate, executorFilter, RET, SeccompPolicyError, type SeccompFilter } from "../../src/sandbox/tiers/seccomp.js";
import { X86_64_SYSCALLS as NR } from "../../src/sandbox/tiers/syscalls-x86_64.js";

const CLONE_THREAD = 0x10000;
const FIONBIO = 0x5421;
const TIOCSTI = 0x5412;

function policy(rules: object[], extra: object = {}): unknown {
  return { executor: { default_action: "kill_process", filter_action: "allow", filter: rules, ...extra } };
}

describe("seccomp compiler", () => {
  const f = checkPolicy(
    policy([
      { syscall: "read", comment: "reads the channel" },
      { syscall: "clone", comment: "threads only", args: [{ index: 0, type: "dword", op: { masked_eq: CLONE_THREAD }, val: CLONE_THREAD }] },
      { syscall: "clone3", comment: "refused, glibc falls back", action: { errno: 38 } },
      { syscall: "ioctl", comment: "non-blocking only", args: [{ index: 1, type: "dword", op: "eq", val: FIONBIO }] },
      { syscall: "prlimit64", comment: "reading only", args: [{ index: 2, type: "qword", op: "eq", val: 0 }] },
      { syscall: "lseek", comment: "whence below 3", args: [{ index: 2, type: "dword", op: "lt", val: 3 }] },
      { syscall: "dup3", comment: "not onto stdio", args: [{ index: 1, type: "dword", op: "ge", val: 3 }, { index: 1, type: "dword", op: "ne", val: 7 }] },
    ]),
    "executor",
  );
  const prog = compileFilter(f);

  test("a listed call is allowed and an unlisted one kills the process", () => {
    assert.equal(evaluate(prog, { nr: NR.read! }), RET.ALLOW);
    assert.equal(evaluate(prog, { nr: NR.setpriority! }), RET.KILL_PROCESS);
    assert.equal(evaluate(prog, { nr: NR.write! }), RET.KILL_PROCESS);
  });
  test("another architecture, and the x32 ABI, are killed whatever the number", () => {
    assert.equal(evaluate(prog, { nr: NR.read!, arch: 0x40000003 }), RET.KILL_PROCESS);
    assert.equal(evaluate(prog, { nr: NR.read! | 0x40000000 }), RET.KILL_PROCESS);
  });
  test("argument conditions: clone makes threads, never processes", () => {
    assert.equal(evaluate(prog, { nr: NR.clone!, args: [0x3d0f00] }), RET.ALLOW); // pthread_create's flags
    assert.equal(evaluate(prog, { nr: NR.clone!, args: [0x1200011] }), RET.KILL_PROCESS); // fork()'s flags
  });
  test("a rule's own action: clone3 gets ENOSYS", () => {
    assert.equal(evaluate(prog, { nr: NR.clone3! }), RET.ERRNO | 38);
  });
  test("dword conditions: eq, lt, and two and-bound conditions", () => {
    assert.equal(evaluate(prog, { nr: NR.ioctl!, args: [3, FIONBIO] }), RET.ALLOW);
    assert.equal(evaluate(prog, { nr: NR.ioctl!, args: [0, TIOCSTI] }), RET.KILL_PROCESS);
    assert.equal(evaluate(prog, { nr: NR.lseek!, args: [3, 0, 2] }), RET.ALLOW);
    assert.equal(evaluate(prog, { nr: NR.lseek!, args: [3, 0, 3] }), RET.KILL_PROCESS);
    assert.equal(evaluate(prog, { nr: NR.dup3!, args: [5, 4] }), RET.ALLOW);
    assert.equal(evaluate(prog, { nr: NR.dup3!, args: [5, 1] }), RET.KILL_PROCESS);
    assert.equal(evaluate(prog, { nr: NR.dup3!, args: [5, 7] }), RET.KILL_PROCESS);
  });
  test("qword conditions compare all 64 bits: a pointer whose low half is 0 is not NULL", () => {
    assert.equal(evaluate(prog, { nr: NR.prlimit64!, args: [0, 3, 0, 0x7ffd0000] }), RET.ALLOW);
    assert.equal(evaluate(prog, { nr: NR.prlimit64!, args: [0, 3, 0x7ffd1000n, 0] }), RET.KILL_PROCESS);
    assert.equal(evaluate(prog, { nr: NR.prlimit64!, args: [0, 3, 0x7f0000000000n, 0] }), RET.KILL_PROCESS);
  });
  test("the program is what the kernel reads: 8 bytes per instruction, starting with the architecture check", () => {
    const bytes = encodeProgram(prog);
    assert.equal(bytes.length, prog.length * 8);
    assert.equal(bytes.readUInt16LE(0), 0x20); // BPF_LD | BPF_W | BPF_ABS
    assert.equal(bytes.readUInt32LE(4), 4); // seccomp_data.arch
    assert.equal(bytes.readUInt32LE(12), AUDIT_ARCH_X86_64);
  });
});

describe("seccomp policy checks", () => {
  const refuse = (p: unknown, re: RegExp): void => assert.throws(() => checkPolicy(p, "executor"), (e: unknown) => e instanceof SeccompPolicyError && re.test(e.message));
  test("every rule must say why the call is allowed", () => refuse(policy([{ syscall: "read" }]), /needs a comment/));
  test("an unknown system call is refused by name", () => refuse(policy([{ syscall: "frobnicate", comment: "no such call" }]), /unknown system call "frobnicate"/));
  test("unknown fields are refused, not ignored", () => {
    refuse(policy([{ syscall: "read", comment: "reads things", argz: [] }]), /unknown field "argz"/);
    refuse(policy([], { defualt: 1 }), /unknown field "defualt"/);
  });
  test("bad actions and conditions are refused", () => {
    refuse(policy([{ syscall: "read", comment: "reads things", action: "shrug" }]), /unknown action/);
    refuse(policy([{ syscall: "read", comment: "reads things", args: [{ index: 6, type: "dword", op: "eq", val: 0 }] }]), /index must be 0-5/);
    refuse(policy([{ syscall: "read", comment: "reads things", args: [{ index: 0, type: "dword", op: "eq", val: 2 ** 33 }] }]), /fit in 32 bits/);
    refuse(policy([{ syscall: "read", comment: "reads things", args: [{ index: 0, type: "qword", op: "lt", val: 1 }] }]), /qword supports/);
  });
  test("a rule after one that already matches every call is refused (it could never apply)", () =>
    refuse(policy([{ syscall: "read", comment: "reads things" }, { syscall: "read", comment: "reads again", action: { errno: 1 } }]), /already matches every read/));
});

describe("the executor's allow-list (resources/seccomp/x86_64.json)", () => {
  const f: SeccompFilter = executorFilter();
  test("kills the process on anything not listed", () => assert.equal(f.default_action, "kill_process"));
  test("stays short: at most 65 entries, Node's start-up included", () => {
    assert.ok(f.filter.length <= 65, `${f.filter.length} entries`);
  });
  test("refuses what an escaped executor would reach for first", () => {
    const prog = compileFilter(f);
    for (const name of ["socket", "connect", "ptrace", "mount", "unshare", "setns", "bpf", "perf_event_open", "keyctl", "init_module", "kexec_load", "process_vm_readv", "setuid", "chroot", "personality", "userfaultfd", "io_uring_setup", "fork", "vfork"]) {
      assert.equal(evaluate(prog, { nr: NR[name]! }), RET.KILL_PROCESS, name);
    }
    assert.equal(evaluate(prog, { nr: NR.clone!, args: [0x1200011] }), RET.KILL_PROCESS, "clone without CLONE_THREAD");
  });
});
