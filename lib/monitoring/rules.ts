/**
 * The platform's Prometheus alerting rules as plain objects: the Kubernetes Monitoring component
 * puts them into a PrometheusRule and the promtool unit tests (test/monitoring/) run against the
 * very same objects, so what is tested is what is deployed.
 *
 * Metric sources: kube-state-metrics (pod restarts, CronJob runs), the kubelet (volume stats) and
 * postgres_exporter v0.15 (`pg_up`, `pg_stat_activity_count`, `pg_settings_max_connections`,
 * `pg_stat_archiver_*`) and the ops jobs' own metrics, pushed to a Pushgateway
 * (lib/notify/job-metrics.ts). Every expression is restricted to the platform's namespace.
 */
import { DEFAULT_WARNING_PERCENT } from "../quota/storage";
import {
  QUOTA_CHECK_FAILED_METRIC,
  READ_ONLY_METRIC,
  STORAGE_RATIO_METRIC,
  outcomeMetricName,
  type OutcomeSubject,
} from "../notify/job-metrics";

/** `info`: something the operator should know happened (a restore finished), nothing to repair. */
export type Severity = "info" | "warning" | "critical";

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: Severity } & Record<string, string>;
  annotations: { summary: string; description: string; runbook_url: string };
}

export interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

export interface BackupCronJob {
  /** CronJob name in the platform's namespace. */
  name: string;
  /** Alert when its last successful run is older than this. */
  maxAgeHours: number;
}

export interface AlertRuleOptions {
  /** The platform's namespace (every expression is limited to it). */
  namespace: string;
  /** The monitoring runbook; each alert links to `<runbookUrl>#<alert name in lower case>`. */
  runbookUrl: string;
  /** PostgreSQL's `archive_timeout`: the "WAL archiving late" threshold derives from it. */
  archiveTimeoutSeconds: number;
  podRestarts?: { threshold?: number; windowMinutes?: number };
  connections?: { warningRatio?: number; criticalRatio?: number };
  walArchive?: {
    /** Failures in every window of this length for `failingForMinutes` count as "failing". */
    failureWindowMinutes?: number;
    failingForMinutes?: number;
    /** Default: 5 × archiveTimeoutSeconds, at least 600. */
    lateAfterSeconds?: number;
  };
  backups?: { cronJobs?: BackupCronJob[] };
  volumes?: { claims?: string[]; warningFreeRatio?: number; criticalFreeRatio?: number };
  jobs?: {
    /** A tenant's used share of its storage limit that warns (default: the quota check's 80 %). */
    storageWarningRatio?: number;
    /** How long LoomworksRestoreFinished stays firing after a restore finished. */
    restoreFinishedWindowMinutes?: number;
  };
}

/**
 * Full backups run weekly (Sunday), differential ones Monday to Saturday (lib/backup/schedule-defaults.ts):
 * a week plus a day of slack, and the Saturday→Monday gap of the differentials plus two hours.
 */
export const DEFAULT_BACKUP_CRONJOBS: readonly BackupCronJob[] = [
  { name: "loomworks-backup-full", maxAgeHours: 8 * 24 },
  { name: "loomworks-backup-diff", maxAgeHours: 50 },
];

/** The PostgreSQL volumes and the ERP filestore (components/kubernetes/common.ts NAMES). */
export const DEFAULT_VOLUME_CLAIMS: readonly string[] = [
  "postgres-data",
  "postgres-wal-archive",
  "postgres-backups",
  "loomworks-filestore",
];

export const RULE_DEFAULTS = {
  podRestarts: { threshold: 3, windowMinutes: 15 },
  connections: { warningRatio: 0.8, criticalRatio: 0.95 },
  walArchive: { failureWindowMinutes: 5, failingForMinutes: 10 },
  volumes: { warningFreeRatio: 0.15, criticalFreeRatio: 0.05 },
  jobs: { storageWarningRatio: DEFAULT_WARNING_PERCENT / 100, restoreFinishedWindowMinutes: 60 },
} as const;

/** `5 × archive_timeout`, never below 10 minutes (a quiet cluster switches WAL segments only that often). */
export function walLateThresholdSeconds(archiveTimeoutSeconds: number): number {
  return Math.max(5 * archiveTimeoutSeconds, 600);
}

function percent(ratio: number): string {
  return `${Math.round(ratio * 1000) / 10}%`;
}

/** PromQL label matcher value: a plain string in double quotes. */
function quote(value: string): string {
  return JSON.stringify(value);
}

/** Regex alternation of literal names (PromQL regexes are fully anchored). */
function alternation(names: readonly string[]): string {
  return names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
}

function requirePositive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new Error(`${name} must be a positive number (got ${value})`);
  return value;
}

function requireRatio(name: string, value: number): number {
  if (!(value > 0 && value < 1)) throw new Error(`${name} must be between 0 and 1 (got ${value})`);
  return value;
}

export function alertRuleGroups(opts: AlertRuleOptions): RuleGroup[] {
  const ns = `namespace=${quote(opts.namespace)}`;
  const rule = (
    alert: string,
    severity: Severity,
    expr: string,
    forDuration: string,
    summary: string,
    description: string,
  ): AlertRule => ({
    alert,
    expr,
    for: forDuration,
    labels: { severity },
    annotations: { summary, description, runbook_url: `${opts.runbookUrl}#${alert.toLowerCase()}` },
  });

  const restarts = { ...RULE_DEFAULTS.podRestarts, ...opts.podRestarts };
  requirePositive("podRestarts.threshold", restarts.threshold);
  requirePositive("podRestarts.windowMinutes", restarts.windowMinutes);

  const conn = { ...RULE_DEFAULTS.connections, ...opts.connections };
  requireRatio("connections.warningRatio", conn.warningRatio);
  requireRatio("connections.criticalRatio", conn.criticalRatio);
  if (conn.warningRatio >= conn.criticalRatio) {
    throw new Error("connections.warningRatio must be below connections.criticalRatio");
  }

  const wal = { ...RULE_DEFAULTS.walArchive, ...opts.walArchive };
  const lateAfter = wal.lateAfterSeconds ?? walLateThresholdSeconds(opts.archiveTimeoutSeconds);
  requirePositive("walArchive.lateAfterSeconds", lateAfter);
  requirePositive("walArchive.failureWindowMinutes", wal.failureWindowMinutes);

  const cronJobs = opts.backups?.cronJobs ?? DEFAULT_BACKUP_CRONJOBS;
  if (cronJobs.length === 0) throw new Error("backups.cronJobs must name at least one CronJob");
  for (const job of cronJobs) requirePositive(`backups.cronJobs[${job.name}].maxAgeHours`, job.maxAgeHours);

  const vol = {
    ...RULE_DEFAULTS.volumes,
    ...opts.volumes,
    claims: opts.volumes?.claims ?? DEFAULT_VOLUME_CLAIMS,
  };
  requireRatio("volumes.warningFreeRatio", vol.warningFreeRatio);
  requireRatio("volumes.criticalFreeRatio", vol.criticalFreeRatio);
  if (vol.criticalFreeRatio >= vol.warningFreeRatio) {
    throw new Error("volumes.criticalFreeRatio must be below volumes.warningFreeRatio");
  }
  if (vol.claims.length === 0) throw new Error("volumes.claims must name at least one PersistentVolumeClaim");

  const jobs = { ...RULE_DEFAULTS.jobs, ...opts.jobs };
  requireRatio("jobs.storageWarningRatio", jobs.storageWarningRatio);
  requirePositive("jobs.restoreFinishedWindowMinutes", jobs.restoreFinishedWindowMinutes);

  const connectionRatio =
    `sum by (namespace, pod) (pg_stat_activity_count{${ns}})` +
    ` / on (namespace, pod) max by (namespace, pod) (pg_settings_max_connections{${ns}})`;
  const connectionText = (threshold: number) =>
    `{{ $value | humanizePercentage }} of max_connections are in use on {{ $labels.pod }} (threshold ${percent(threshold)}); new tenant sessions will be refused once they are all taken.`;

  // One `or` branch per CronJob: each has its own maximum age.
  const backupAge = cronJobs
    .map(
      (j) =>
        `(time() - kube_cronjob_status_last_successful_time{${ns}, cronjob=${quote(j.name)}}) > ${j.maxAgeHours * 3600}`,
    )
    .join(" or ");
  const backupNever = cronJobs
    .map(
      (j) =>
        `((time() - kube_cronjob_created{${ns}, cronjob=${quote(j.name)}}) > ${j.maxAgeHours * 3600}` +
        ` unless on (namespace, cronjob) kube_cronjob_status_last_successful_time{${ns}})`,
    )
    .join(" or ");
  const backupLimits = cronJobs.map((j) => `${j.name} ${j.maxAgeHours}h`).join(", ");

  const claims = `persistentvolumeclaim=~${quote(alternation(vol.claims))}`;
  const freeRatio =
    `kubelet_volume_stats_available_bytes{${ns}, ${claims}}` +
    ` / kubelet_volume_stats_capacity_bytes{${ns}, ${claims}}`;

  // The jobs' metrics come through the Pushgateway, whose own target labels (pod, instance, ...)
  // are aggregated away: only the pushed grouping labels count.
  const latest = (metric: string, by: string) => `max by (${by}) (${metric}{${ns}})`;
  const lastRunFailed = (subject: OutcomeSubject, by: string) => {
    const failure = latest(outcomeMetricName(subject, "failure"), by);
    const success = latest(outcomeMetricName(subject, "success"), by);
    return `(${failure} > on (${by}) ${success}) or (${failure} unless on (${by}) ${success})`;
  };
  const readOnly = `${latest(READ_ONLY_METRIC, "namespace, tenant")} == 1`;
  const restoreWindow = jobs.restoreFinishedWindowMinutes * 60;
  const restoreSuccess = latest(outcomeMetricName("restore", "success"), "namespace, tenant");

  return [
    {
      name: "loomworks.pods",
      rules: [
        rule(
          "LoomworksPodRestarting",
          "warning",
          `increase(kube_pod_container_status_restarts_total{${ns}}[${restarts.windowMinutes}m]) >= ${restarts.threshold}`,
          "5m",
          "Container {{ $labels.container }} of pod {{ $labels.pod }} keeps restarting",
          `{{ $labels.container }} in {{ $labels.namespace }}/{{ $labels.pod }} restarted {{ printf "%.0f" $value }} times in the last ${restarts.windowMinutes} minutes (threshold ${restarts.threshold}).`,
        ),
      ],
    },
    {
      name: "loomworks.postgres",
      rules: [
        rule(
          "LoomworksPostgresDown",
          "critical",
          `pg_up{${ns}} == 0`,
          "2m",
          "PostgreSQL on {{ $labels.pod }} is unreachable",
          "postgres_exporter on {{ $labels.pod }} cannot connect to PostgreSQL: every tenant's ERP is down and the other PostgreSQL alerts are blind.",
        ),
        rule(
          "LoomworksPostgresConnectionsHigh",
          "warning",
          `${connectionRatio} > ${conn.warningRatio} and ${connectionRatio} <= ${conn.criticalRatio}`,
          "10m",
          "PostgreSQL connections on {{ $labels.pod }} are running out",
          connectionText(conn.warningRatio),
        ),
        rule(
          "LoomworksPostgresConnectionsExhausted",
          "critical",
          `${connectionRatio} > ${conn.criticalRatio}`,
          "2m",
          "PostgreSQL connections on {{ $labels.pod }} are exhausted",
          connectionText(conn.criticalRatio),
        ),
        rule(
          "LoomworksWalArchivingFailing",
          "critical",
          `increase(pg_stat_archiver_failed_count{${ns}}[${wal.failureWindowMinutes}m]) > 0`,
          `${wal.failingForMinutes}m`,
          "WAL archiving on {{ $labels.pod }} is failing",
          `archive_command failed {{ printf "%.0f" $value }} times in the last ${wal.failureWindowMinutes} minutes on {{ $labels.pod }}, continuously for ${wal.failingForMinutes} minutes: point-in-time recovery cannot go past the last archived segment and pg_wal is growing.`,
        ),
        rule(
          "LoomworksWalArchivingLate",
          "warning",
          `pg_stat_archiver_last_archive_age{${ns}} > ${lateAfter}`,
          "5m",
          "WAL archiving on {{ $labels.pod }} is late",
          `The last WAL segment was archived {{ $value | humanizeDuration }} ago on {{ $labels.pod }} (threshold ${lateAfter}s, archive_timeout ${opts.archiveTimeoutSeconds}s): a restore would lose everything written since.`,
        ),
      ],
    },
    {
      name: "loomworks.backups",
      rules: [
        rule(
          "LoomworksBackupTooOld",
          "critical",
          backupAge,
          "15m",
          "The last successful {{ $labels.cronjob }} run is too old",
          `CronJob {{ $labels.namespace }}/{{ $labels.cronjob }} last succeeded {{ $value | humanizeDuration }} ago (maximum ages: ${backupLimits}).`,
        ),
        rule(
          "LoomworksBackupNeverSucceeded",
          "critical",
          backupNever,
          "15m",
          "CronJob {{ $labels.cronjob }} has never succeeded",
          `CronJob {{ $labels.namespace }}/{{ $labels.cronjob }} was created {{ $value | humanizeDuration }} ago and has no successful run (maximum ages: ${backupLimits}).`,
        ),
      ],
    },
    {
      name: "loomworks.volumes",
      rules: [
        rule(
          "LoomworksVolumeSpaceLow",
          "warning",
          `${freeRatio} < ${vol.warningFreeRatio} and ${freeRatio} >= ${vol.criticalFreeRatio}`,
          "15m",
          "Volume {{ $labels.persistentvolumeclaim }} is filling up",
          `PersistentVolumeClaim {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} has {{ $value | humanizePercentage }} free (warning below ${percent(vol.warningFreeRatio)}).`,
        ),
        rule(
          "LoomworksVolumeSpaceCritical",
          "critical",
          `${freeRatio} < ${vol.criticalFreeRatio}`,
          "5m",
          "Volume {{ $labels.persistentvolumeclaim }} is almost full",
          `PersistentVolumeClaim {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} has {{ $value | humanizePercentage }} free (critical below ${percent(vol.criticalFreeRatio)}).`,
        ),
      ],
    },
    {
      name: "loomworks.jobs",
      rules: [
        rule(
          "LoomworksTenantStorageHigh",
          "warning",
          `${latest(STORAGE_RATIO_METRIC, "namespace, tenant")} >= ${jobs.storageWarningRatio} unless on (namespace, tenant) (${readOnly})`,
          "0m",
          "Tenant {{ $labels.tenant }} uses {{ $value | humanizePercentage }} of its storage limit",
          `The last quota check measured {{ $labels.tenant }} (database, undo log and filestore) at {{ $value | humanizePercentage }} of its limit (warning from ${percent(jobs.storageWarningRatio)}); at 100 % its database becomes read-only.`,
        ),
        rule(
          "LoomworksTenantReadOnly",
          "critical",
          readOnly,
          "0m",
          "Tenant {{ $labels.tenant }} is read-only: it reached its storage limit",
          "The quota check made {{ $labels.tenant }}'s database read-only (writes are refused) because it reached its storage limit; it is writable again once it is below the limit (raise the limit or free space).",
        ),
        rule(
          "LoomworksQuotaCheckFailed",
          "warning",
          `${latest(QUOTA_CHECK_FAILED_METRIC, "namespace, tenant")} == 1`,
          "0m",
          "The quota check could not measure tenant {{ $labels.tenant }}",
          "The last quota check failed for {{ $labels.tenant }}: its storage is not measured and its read-only state not updated until a check succeeds (the error is in the quota-check Job's log).",
        ),
        rule(
          "LoomworksBackupFailed",
          "critical",
          lastRunFailed("backup", "namespace, type"),
          "0m",
          "The last {{ $labels.type }} backup failed",
          "The last {{ $labels.type }} backup job in {{ $labels.namespace }} failed at {{ $value | humanizeTimestamp }} and none has succeeded since; its error is in the failed Job's log.",
        ),
        rule(
          "LoomworksVerifyFailed",
          "critical",
          lastRunFailed("verify", "namespace"),
          "0m",
          "The repository verify in {{ $labels.namespace }} failed",
          "The last pgBackRest verify in {{ $labels.namespace }} failed at {{ $value | humanizeTimestamp }} and none has succeeded since: a backup or WAL segment may be damaged or missing.",
        ),
        rule(
          "LoomworksRestoreFailed",
          "critical",
          lastRunFailed("restore", "namespace, tenant"),
          "0m",
          "The restore of tenant {{ $labels.tenant }} failed",
          "The last restore Job of {{ $labels.tenant }} in {{ $labels.namespace }} failed at {{ $value | humanizeTimestamp }} and no restore of it has finished since; the next `pulumi up` resumes or rolls it back.",
        ),
        rule(
          "LoomworksRestoreFinished",
          "info",
          `(time() - ${restoreSuccess}) < ${restoreWindow} unless on (namespace, tenant) (${lastRunFailed("restore", "namespace, tenant")})`,
          "0m",
          "The restore of tenant {{ $labels.tenant }} finished",
          `A restore of {{ $labels.tenant }} in {{ $labels.namespace }} finished {{ $value | humanizeDuration }} ago (this alert stays for ${jobs.restoreFinishedWindowMinutes} minutes).`,
        ),
      ],
    },
  ];
}

/** Every alert name of the groups, in order. */
export function alertNames(groups: readonly RuleGroup[]): string[] {
  return groups.flatMap((g) => g.rules.map((r) => r.alert));
}

/** A Prometheus rules file (JSON is valid YAML): what `promtool check rules` reads. */
export function rulesFile(groups: readonly RuleGroup[]): string {
  return `${JSON.stringify({ groups }, null, 2)}\n`;
}
