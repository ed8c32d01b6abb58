/**
 * The syscall table: one declarative entry per WASI preview 1 host function.
 * It is the single source for linking (signature checks), arity checks, the
 * per-call audit counters, `uniwasm inspect` and docs/syscalls.md.
 *
 * `capability` names the grant a call needs. Calls on already-held descriptors
 * (`fd`) are always linked: a guest only holds the descriptors it was given, so
 * the authority lives in the descriptors, not in the call. `fs` and `sockets`
 * calls are linked only when a directory or a listening socket was granted.
 */

export type WasmValType = "i32" | "i64";

export type Subsystem = "args" | "environ" | "clock" | "fd" | "path" | "poll" | "proc" | "random" | "sched" | "sock";

export type Capability = "args" | "env" | "clocks" | "random" | "fd" | "fs" | "poll" | "proc" | "sockets";

export interface SyscallSpec {
  readonly name: string;
  readonly params: readonly (readonly [name: string, type: WasmValType])[];
  /** `errno` for every call except proc_exit, which does not return. */
  readonly result: "errno" | "none";
  readonly subsystem: Subsystem;
  readonly capability: Capability;
  readonly summary: string;
}

const i32 = "i32" as const;
const i64 = "i64" as const;

export const WASI_MODULE = "wasi_snapshot_preview1";
/** Older toolchains import the same functions under this name; we link it identically. */
export const WASI_UNSTABLE_ALIASES: readonly string[] = [];

export const SYSCALLS = [
  { name: "args_get", params: [["argv", i32], ["argv_buf", i32]], result: "errno", subsystem: "args", capability: "args", summary: "Write the argument pointers and strings." },
  { name: "args_sizes_get", params: [["argc_out", i32], ["argv_buf_size_out", i32]], result: "errno", subsystem: "args", capability: "args", summary: "Number of arguments and total size of their strings." },
  { name: "environ_get", params: [["environ", i32], ["environ_buf", i32]], result: "errno", subsystem: "environ", capability: "env", summary: "Write the environment pointers and NAME=VALUE strings." },
  { name: "environ_sizes_get", params: [["count_out", i32], ["buf_size_out", i32]], result: "errno", subsystem: "environ", capability: "env", summary: "Number of environment variables and total size of their strings." },
  { name: "clock_res_get", params: [["id", i32], ["resolution_out", i32]], result: "errno", subsystem: "clock", capability: "clocks", summary: "Resolution of a clock in nanoseconds." },
  { name: "clock_time_get", params: [["id", i32], ["precision", i64], ["time_out", i32]], result: "errno", subsystem: "clock", capability: "clocks", summary: "Current time of a clock in nanoseconds." },
  { name: "fd_advise", params: [["fd", i32], ["offset", i64], ["len", i64], ["advice", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Advise the host about an access pattern (validated, otherwise a no-op)." },
  { name: "fd_allocate", params: [["fd", i32], ["offset", i64], ["len", i64]], result: "errno", subsystem: "fd", capability: "fd", summary: "Ensure a file is at least offset+len bytes long." },
  { name: "fd_close", params: [["fd", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Close a descriptor." },
  { name: "fd_datasync", params: [["fd", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Flush a file's data to storage." },
  { name: "fd_fdstat_get", params: [["fd", i32], ["fdstat_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Type, flags and rights of a descriptor." },
  { name: "fd_fdstat_set_flags", params: [["fd", i32], ["flags", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Change a descriptor's flags (append, nonblock)." },
  { name: "fd_fdstat_set_rights", params: [["fd", i32], ["rights_base", i64], ["rights_inheriting", i64]], result: "errno", subsystem: "fd", capability: "fd", summary: "Drop rights from a descriptor (rights can never be added)." },
  { name: "fd_filestat_get", params: [["fd", i32], ["filestat_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Attributes of an open file." },
  { name: "fd_filestat_set_size", params: [["fd", i32], ["size", i64]], result: "errno", subsystem: "fd", capability: "fd", summary: "Truncate or extend an open file." },
  { name: "fd_filestat_set_times", params: [["fd", i32], ["atim", i64], ["mtim", i64], ["fst_flags", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Set access and modification times of an open file." },
  { name: "fd_pread", params: [["fd", i32], ["iovs", i32], ["iovs_len", i32], ["offset", i64], ["nread_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Read at an offset without moving the position." },
  { name: "fd_prestat_get", params: [["fd", i32], ["prestat_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Describe a preopened descriptor." },
  { name: "fd_prestat_dir_name", params: [["fd", i32], ["path", i32], ["path_len", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Guest path of a preopened directory." },
  { name: "fd_pwrite", params: [["fd", i32], ["iovs", i32], ["iovs_len", i32], ["offset", i64], ["nwritten_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Write at an offset without moving the position." },
  { name: "fd_read", params: [["fd", i32], ["iovs", i32], ["iovs_len", i32], ["nread_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Read into a list of buffers." },
  { name: "fd_readdir", params: [["fd", i32], ["buf", i32], ["buf_len", i32], ["cookie", i64], ["bufused_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Read directory entries from a cookie." },
  { name: "fd_renumber", params: [["fd", i32], ["to", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Move a descriptor over another, closing the target." },
  { name: "fd_seek", params: [["fd", i32], ["offset", i64], ["whence", i32], ["newoffset_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Move the file position." },
  { name: "fd_sync", params: [["fd", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Flush a file's data and metadata to storage." },
  { name: "fd_tell", params: [["fd", i32], ["offset_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Current file position." },
  { name: "fd_write", params: [["fd", i32], ["iovs", i32], ["iovs_len", i32], ["nwritten_out", i32]], result: "errno", subsystem: "fd", capability: "fd", summary: "Write a list of buffers." },
  { name: "path_create_directory", params: [["fd", i32], ["path", i32], ["path_len", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Create a directory." },
  { name: "path_filestat_get", params: [["fd", i32], ["flags", i32], ["path", i32], ["path_len", i32], ["filestat_out", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Attributes of a file by path." },
  { name: "path_filestat_set_times", params: [["fd", i32], ["flags", i32], ["path", i32], ["path_len", i32], ["atim", i64], ["mtim", i64], ["fst_flags", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Set times of a file by path." },
  { name: "path_link", params: [["old_fd", i32], ["old_flags", i32], ["old_path", i32], ["old_path_len", i32], ["new_fd", i32], ["new_path", i32], ["new_path_len", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Create a hard link." },
  { name: "path_open", params: [["fd", i32], ["dirflags", i32], ["path", i32], ["path_len", i32], ["oflags", i32], ["rights_base", i64], ["rights_inheriting", i64], ["fdflags", i32], ["fd_out", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Open or create a file or directory." },
  { name: "path_readlink", params: [["fd", i32], ["path", i32], ["path_len", i32], ["buf", i32], ["buf_len", i32], ["bufused_out", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Contents of a symbolic link." },
  { name: "path_remove_directory", params: [["fd", i32], ["path", i32], ["path_len", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Remove an empty directory." },
  { name: "path_rename", params: [["fd", i32], ["old_path", i32], ["old_path_len", i32], ["new_fd", i32], ["new_path", i32], ["new_path_len", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Rename a file or directory." },
  { name: "path_symlink", params: [["old_path", i32], ["old_path_len", i32], ["fd", i32], ["new_path", i32], ["new_path_len", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Create a symbolic link (relative targets only)." },
  { name: "path_unlink_file", params: [["fd", i32], ["path", i32], ["path_len", i32]], result: "errno", subsystem: "path", capability: "fs", summary: "Remove a file or symbolic link." },
  { name: "poll_oneoff", params: [["in", i32], ["out", i32], ["nsubscriptions", i32], ["nevents_out", i32]], result: "errno", subsystem: "poll", capability: "poll", summary: "Wait for clocks and descriptor readiness." },
  { name: "proc_exit", params: [["code", i32]], result: "none", subsystem: "proc", capability: "proc", summary: "End the instance with an exit code." },
  { name: "proc_raise", params: [["signal", i32]], result: "errno", subsystem: "proc", capability: "proc", summary: "Raise a signal: ENOTSUP, an instance has no signals (as Wasmtime)." },
  { name: "random_get", params: [["buf", i32], ["buf_len", i32]], result: "errno", subsystem: "random", capability: "random", summary: "Fill a buffer from the OS CSPRNG." },
  { name: "sched_yield", params: [], result: "errno", subsystem: "sched", capability: "proc", summary: "Yield the processor (a no-op for a single-threaded instance)." },
  { name: "sock_accept", params: [["fd", i32], ["flags", i32], ["fd_out", i32]], result: "errno", subsystem: "sock", capability: "sockets", summary: "Accept a connection on a preopened listening socket." },
  { name: "sock_recv", params: [["fd", i32], ["ri_data", i32], ["ri_data_len", i32], ["ri_flags", i32], ["ro_datalen_out", i32], ["ro_flags_out", i32]], result: "errno", subsystem: "sock", capability: "sockets", summary: "Receive from a connected socket." },
  { name: "sock_send", params: [["fd", i32], ["si_data", i32], ["si_data_len", i32], ["si_flags", i32], ["so_datalen_out", i32]], result: "errno", subsystem: "sock", capability: "sockets", summary: "Send on a connected socket." },
  { name: "sock_shutdown", params: [["fd", i32], ["how", i32]], result: "errno", subsystem: "sock", capability: "sockets", summary: "Shut down one or both directions of a socket." },
] as const satisfies readonly SyscallSpec[];

export type SyscallName = (typeof SYSCALLS)[number]["name"];

export const SYSCALL_BY_NAME: ReadonlyMap<string, SyscallSpec> = new Map(SYSCALLS.map((s) => [s.name, s]));

export const SYSCALL_COUNT = SYSCALLS.length;

/** The grants an instance gets when nothing says otherwise (`uniwasm run` with no flags). */
// `sockets` is in the defaults because sock_* act only on socket descriptors, which exist only
// when listeners are granted; without one they answer EBADF/ENOTSOCK, as Wasmtime.
export const DEFAULT_CAPABILITIES: readonly Capability[] = ["args", "env", "clocks", "random", "fd", "poll", "proc", "sockets"];
