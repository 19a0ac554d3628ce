/** Point-in-time restore of one tenant in a shared cluster (docs/architecture.md#snapshots-and-restore). */
import { forwardTo } from "../pulumi/forward";
import type * as RestoreProvider from "./provider";
export * from "./names";
export * from "./target";
export * from "./restore";
export * from "./filestore";
export { databaseAclSummary, splitByLoader, splitGucList, setClause } from "./copy";
export { scratchProcesses, selectiveRestoreOptions, scratchSettings } from "./scratch";

// ---- Kept for the providers in existing stacks' state (lib/pulumi/forward.ts): loaded when called, so
// the ops jobs that import this module do not load the Pulumi runtime the provider support needs.
const restoreProvider = (): typeof RestoreProvider => require("./provider") as typeof RestoreProvider;
export const checkPitrRestore = forwardTo(restoreProvider, "checkPitrRestore");
export const pitrRestoreReplaceKeys = forwardTo(restoreProvider, "pitrRestoreReplaceKeys");
export const pitrRestoreChangedKeys = forwardTo(restoreProvider, "pitrRestoreChangedKeys");
export const pitrRestoreOutputs = forwardTo(restoreProvider, "pitrRestoreOutputs");
