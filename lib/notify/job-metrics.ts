/**
 * The metrics the ops jobs push (lib/notify/metrics.ts), one Pushgateway group per job, and the
 * alerts of lib/monitoring/rules.ts that read them (docs/operations/monitoring.md#job-metrics-kubernetes):
 *
 *   quota-check  PUT  job=loomworks_quota_check  loomworks_tenant_storage_used_ratio{tenant}
 *                                                loomworks_tenant_read_only{tenant}
 *                                                loomworks_tenant_quota_check_failed{tenant}
 *   backup       POST job=loomworks_backup, type loomworks_backup_last_{success,failure}_timestamp_seconds
 *   verify       POST job=loomworks_verify        loomworks_verify_last_{success,failure}_timestamp_seconds
 *   restore      POST job=loomworks_restore, tenant loomworks_restore_last_{success,failure}_timestamp_seconds
 *
 * Every group also carries the platform's `namespace`.
 */
import type { StorageCheckResult } from "../quota/storage";
import type { MetricFamily, MetricsPusher } from "./metrics";

export const STORAGE_RATIO_METRIC = "loomworks_tenant_storage_used_ratio";
export const READ_ONLY_METRIC = "loomworks_tenant_read_only";
export const QUOTA_CHECK_FAILED_METRIC = "loomworks_tenant_quota_check_failed";

export type OutcomeSubject = "backup" | "verify" | "restore";
export type Outcome = "success" | "failure";

export const PUSH_JOBS = {
  storage: "loomworks_quota_check",
  backup: "loomworks_backup",
  verify: "loomworks_verify",
  restore: "loomworks_restore",
} as const;

export function outcomeMetricName(subject: OutcomeSubject, outcome: Outcome): string {
  return `loomworks_${subject}_last_${outcome}_timestamp_seconds`;
}

/**
 * Each checked tenant's used share of its limit (tenants with a limit), whether it is read-only, and
 * whether its check failed. The group is replaced by every run (PUT): a tenant whose check failed
 * keeps the read-only state the catalog shows and is flagged, so its alerts neither clear
 * nor go silent while it cannot be measured.
 */
export function storageMetrics(results: readonly StorageCheckResult[]): MetricFamily[] {
  const checked = results.filter((r) => !r.error && r.state !== undefined);
  const known = results.flatMap((r) => {
    const readOnly = r.error ? r.readOnly : r.state === undefined ? undefined : r.state === "read_only";
    return readOnly === undefined ? [] : [{ subdomain: r.subdomain, readOnly }];
  });
  return [
    {
      name: STORAGE_RATIO_METRIC,
      help: "Storage used by the tenant (database, undo log and filestore) over its limit, at the last quota check.",
      type: "gauge",
      samples: checked
        .filter((r) => typeof r.maxBytes === "number" && r.maxBytes > 0 && typeof r.bytes === "number")
        .map((r) => ({
          labels: { tenant: r.subdomain },
          value: (r.bytes as number) / (r.maxBytes as number),
        })),
    },
    {
      name: READ_ONLY_METRIC,
      help: "1 when the tenant's database is read-only because it reached its storage limit, else 0.",
      type: "gauge",
      samples: known.map((r) => ({
        labels: { tenant: r.subdomain },
        value: r.readOnly ? 1 : 0,
      })),
    },
    {
      name: QUOTA_CHECK_FAILED_METRIC,
      help: "1 when the last quota check could not measure the tenant (its error is in the job's log), else 0.",
      type: "gauge",
      samples: results.map((r) => ({ labels: { tenant: r.subdomain }, value: r.error ? 1 : 0 })),
    },
  ];
}

/** The time of a run's success or failure (seconds since the epoch). */
export function outcomeMetric(subject: OutcomeSubject, outcome: Outcome, at: Date): MetricFamily {
  return {
    name: outcomeMetricName(subject, outcome),
    help: `Unix time of the last ${outcome === "success" ? "successful" : "failed"} ${subject} run.`,
    type: "gauge",
    samples: [{ value: Math.floor(at.getTime() / 1000) }],
  };
}

/** Replaces the storage group with this check's tenants (never throws). */
export async function pushStorageMetrics(
  pusher: MetricsPusher,
  results: readonly StorageCheckResult[],
): Promise<void> {
  await pusher.push({ job: PUSH_JOBS.storage }, storageMetrics(results), "PUT");
}

/**
 * Runs a job's work and pushes the time of its success or failure to the subject's group
 * (`labels` add to the grouping key); returns or throws what the work did. The push never throws.
 */
export async function withOutcomeMetrics<T>(
  pusher: MetricsPusher,
  subject: OutcomeSubject,
  labels: Record<string, string>,
  work: () => Promise<T>,
  now: () => Date = () => new Date(),
): Promise<T> {
  const group = { job: PUSH_JOBS[subject], labels };
  let result: T;
  try {
    result = await work();
  } catch (err) {
    await pusher.push(group, [outcomeMetric(subject, "failure", now())], "POST");
    throw err;
  }
  await pusher.push(group, [outcomeMetric(subject, "success", now())], "POST");
  return result;
}
