/** Public API of the wasm layer: reading, bounding, rewriting and explaining modules. */
export {
  WasmError,
  WasmFormatError,
  WasmUnsupportedError,
  WasmLimitError,
  WasmCompileError,
} from "./errors.js";
export {
  readModuleInfo,
  readFunctionBody,
  funcType,
  functionCount,
  importedFunctions,
  importedMemories,
  functionName,
  functionDisplayName,
  findExport,
  formatFuncType,
  ENGINE_MAXIMA,
  type ModuleInfo,
  type FuncType,
  type ValType,
  type ExternKind,
  type Limits,
  type TableType,
  type GlobalType,
  type Import,
  type Export,
  type FunctionImport,
  type SectionInfo,
  type CustomSection,
  type CodeBody,
  type NameInfo,
  type FunctionBody,
} from "./reader.js";
export { prepareModule, importTypes, functionNames, type PrepareOptions, type PreparedWasm, type ImportType } from "./prepare.js";
export { hookGrow, growRefused, resetGrowFailed, GROW_FAILED_EXPORT } from "./grow-hook.js";
export { exportMutableGlobals, type SnapshotGlobal } from "./export-globals.js";
export { importDefinedMemory, defineImportedMemory, linkView } from "./memory-import.js";
export {
  limitMemory,
  limitTables,
  type LimitedTable,
  type TableLimitResult,
  instrumentFuel,
  originalOffset,
  type OffsetMap,
  FUEL_EXPORT,
  START_EXPORT,
  type FuelGranularity,
  WASM_PAGE_BYTES,
  type MemoryLimitResult,
  type LimitedMemory,
  type ImportedMemoryRequirement,
  type FuelOptions,
  type FuelInstrumentation,
} from "./rewrite.js";
export { fuelGlobal, setFuel, remainingFuel, fuelConsumed, isFuelExhausted } from "./fuel.js";
export {
  checkModule,
  compileChecked,
  compileCheckedSync,
  toCompileError,
  DEFAULT_MODULE_LIMITS,
  type ModuleLimits,
  type CheckedModule,
} from "./validate.js";
export {
  describeTrap,
  parseWasmFrames,
  formatBacktrace,
  type TrapReason,
  type TrapInfo,
  type WasmFrame,
  type DescribeTrapOptions,
  frameOrigin,
  originalFrames,
  demangle,
  type FrameOrigin,
} from "./backtrace.js";
export { readLineTable, LineTable, type SourceLocation } from "./dwarf.js";
export { dataSegmentsEnd } from "./data.js";
