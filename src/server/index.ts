export { startNode, type NodeOptions, type RunningNode } from "./node.js";
export { ERROR_CATALOGUE, ERROR_CODES, ApiError, type ErrorCode, type ErrorBody } from "./errors.js";
export { Gateway, RouteTable } from "./gateway.js";
export { CgiResponseParser, cgiEnv, cgiArgs, parseHead, CgiError } from "./wagi.js";
export { resolveAppConfig, DEFAULT_APP_LIMITS, DEFAULT_SCALE } from "../manager/index.js";
export { basicImageSource, type ImageSource, type LoadedModule, type SignaturePolicy } from "./image-source.js";
export { NodeMetrics } from "./metrics.js";
export { NodeClient, ClientError, clientFrom, cliAction, table, type NodeFlags, resolveClientConfig, readClientConfig, writeClientConfig, clientConfigPath, type ClientConfig } from "./client.js";
export { imageLayerSource, imageConfigOf } from "./image-layer-source.js";
