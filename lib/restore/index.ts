/** Point-in-time restore of one tenant in a shared cluster (docs/architecture.md#snapshots-and-restore). */
export * from "./names";
export * from "./target";
export * from "./restore";
export { databaseAclSummary, splitByLoader, splitGucList, setClause, type FilestoreSources } from "./copy";
export { scratchProcesses, selectiveRestoreOptions, scratchSettings } from "./scratch";
