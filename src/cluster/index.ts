export { joinCluster, Cluster, type ClusterOptions, type LocalNode, type ClusterLog } from "./cluster.js";
export { connectCluster, parseServers, ClusterConfigError, type ClusterCredentials, type ClusterTls } from "./connection.js";
export { JetStreamControlState, ClusterUnavailable, ForeignState } from "./control-log.js";
export { place, type Placement, type PlacementApp, type PlacementNode } from "./placement.js";
export { DuplicateNode, type MemberInfo } from "./membership.js";
export type { PlacementRecord, ReplicaStatus } from "./scheduler.js";
export type { ForwardRequest, ForwardResult } from "./routing.js";
export type { AppLogs, ClusterLogEntry } from "./logs.js";
