/** Public library API: `import { ... } from "uniwasm"`. One export line per layer. */
export * from "./wasm/index.js";
