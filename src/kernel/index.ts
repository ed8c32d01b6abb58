/** Public API of the kernel: the WASI preview 1 host, its options and its syscall table. */
export { Kernel, defaultGrants } from "./kernel.js";
export type { KernelOptions, KernelLimits, PreopenSpec, ListenerSpec, InputSpec, OutputSpec, MemoryDirSeed } from "./options.js";
export { SYSCALLS, SYSCALL_BY_NAME, SYSCALL_COUNT, DEFAULT_CAPABILITIES, WASI_MODULE, type SyscallSpec, type SyscallName, type Capability, type Subsystem } from "./syscalls.js";
export { Errno, Rights, FileType, ClockId } from "./abi.js";
export { WasiError, ProcExit, InstanceLimitError, KernelFault, LinkError, type LimitReason } from "./errors.js";
export { MemoryFs } from "./fs-memory.js";
export { HostFs } from "./fs-host.js";
export { fileTimesSupport, type FileTimesSupport, type TimeSpec } from "./file-times.js";
export { FileSystem } from "./fs.js";
export { resolve as resolvePath, type FsBackend, type FileHandle, type Stat, type DirHandle } from "./vfs.js";
export { IoServer, SyncIoClient, parseAddress, type BlockingIo } from "./io-bridge.js";
export { IoThread } from "./io-thread.js";
export { moduleSurface, inspectModuleFile, type ModuleSurface } from "./surface.js";
export { linkImports, expectedSignature, type LinkReport, type ImportSignature } from "./linker.js";
export { defineExtension, isGranted, remoteProviders, type Extension, type ExtensionSpec, type ExtensionFunction, type ExtensionContext, type ExtValType, type HostCalls } from "./extensions.js";
export type { ExtensionOptions } from "./options.js";
export { ExtensionTable, type MemoryImportInfo } from "./extension-linker.js";
export { BUILTIN_EXTENSIONS } from "./ext/index.js";
