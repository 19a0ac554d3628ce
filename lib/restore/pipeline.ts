/**
 * How restoreTenant orders its work (docs/operations/backup-and-restore.md#where-the-time-goes):
 *   overlapped  independent work runs at the same time: the WAL archive wait beside the scratch
 *               files; pg_amcheck beside the dump, whose definitions are loaded into the copy
 *               meanwhile; the scratch instance stopped while the rows and indexes are loaded;
 *               indexes built by parallel jobs (the default);
 *   sequential  each piece after the previous one, indexes in one transaction: the pipeline
 *               before, kept as the benchmark's baseline.
 */
export type RestorePipeline = "overlapped" | "sequential";

/** `LOOMWORKS_RESTORE_PIPELINE`: `overlapped` (default) or `sequential`. */
export function restorePipelineSetting(env: NodeJS.ProcessEnv = process.env): RestorePipeline {
  const v = (env.LOOMWORKS_RESTORE_PIPELINE ?? "").trim().toLowerCase();
  if (v === "" || v === "overlapped") return "overlapped";
  if (v === "sequential") return "sequential";
  throw new Error(`LOOMWORKS_RESTORE_PIPELINE must be overlapped or sequential (got "${v}")`);
}

/** pg_restore jobs of the post-data section in the overlapped pipeline (measured: 8 beat 4 and 1). */
export const INDEX_JOBS = 8;

/** Sessions creating the tables of the definitions at once in the overlapped pipeline. */
export const SCHEMA_JOBS = 4;
