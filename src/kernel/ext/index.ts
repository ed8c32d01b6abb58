/**
 * The built-in host extensions: always known to the linker (as every WASI
 * call is), granted only by name (`capabilities.extensions`, `--ext`, the
 * API's `extensions.grants`). Each file is one extension: its guest ABI, the
 * provider interface it needs from above, and the limits of its ABI half.
 */
import type { Extension } from "../extensions.js";
import { envExtension } from "./env.js";
import { httpExtension } from "./http.js";
import { kvExtension } from "./kv.js";
import { logExtension } from "./log.js";
import { serviceExtension } from "./service.js";
import { variablesExtension } from "./variables.js";

export const BUILTIN_EXTENSIONS: readonly Extension<any, any>[] = [envExtension, logExtension, kvExtension, variablesExtension, httpExtension, serviceExtension];

export { envExtension, logExtension, kvExtension, variablesExtension, httpExtension, serviceExtension };
export type { LogProvider, LogLevel } from "./log.js";
export type { KvProvider } from "./kv.js";
export type { VariablesProvider } from "./variables.js";
export type { HttpProvider, OutboundRequest, OutboundResponse } from "./http.js";
export type { ServiceProvider } from "./service.js";
