/** Check and diff of the LocalScheduler dynamic provider (dynamic-providers/localScheduler.ts); the lifecycle is in daemon.ts. */
import type * as pulumi from "@pulumi/pulumi";
import { diffLocalService } from "../pg/provider";
import type { KeyDiffResult } from "../pulumi/diff";
import { CheckFailures } from "../pulumi/failures";
import { cronProblem } from "./cron";

/** check: every schedule entry a valid cron expression. */
export function checkLocalScheduler(news: { schedule?: object }): pulumi.dynamic.CheckFailure[] {
  const failures = new CheckFailures();
  for (const [key, expr] of Object.entries(news.schedule ?? {})) {
    const problem = cronProblem(String(expr));
    if (problem) failures.add(`schedule.${key}`, problem);
  }
  return failures.list;
}

/**
 * diff: a new stateDir replaces the daemon (the old one is stopped first); the cluster settings, the
 * schedule, the quota-check schedule, the undo retention, the spares job and the webhook, or a daemon found stopped by read, update
 * it (diffLocalService).
 */
export function diffLocalScheduler(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): KeyDiffResult {
  return diffLocalService(olds, news, [
    "port",
    "stanza",
    "archiveTimeoutSeconds",
    "retentionFull",
    "schedule",
    "quotaCheck",
    "undoRetentionDays",
    "spares",
    "notify",
  ]);
}
