/**
 * The built-in host extensions: always known to the linker (as every WASI
 * call is), granted only by name (`capabilities.extensions`, `--ext`, the
 * API's `extensions.grants`). Each file is one extension: its guest ABI, the
 * provider interface it needs from above, and the limits of its ABI half.
 */
import type { Extension } from "../extensions.js";
import { envExtension } from "./env.js";
import { logExtension } from "./log.js";

export const BUILTIN_EXTENSIONS: readonly Extension<any, any>[] = [envExtension, logExtension];

export { envExtension, logExtension };
