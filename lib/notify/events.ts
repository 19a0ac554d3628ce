/** The notifications the jobs send, built from what they already compute (lib/notify/webhook.ts). */
import type { StorageCheckResult } from "../quota/storage";
import type { RestoreResult } from "../restore/restore";
import type { RestoreTarget } from "../restore/target";
import type { Notifier, NotifyInput } from "./webhook";

/**
 * A storage check's crossings: the check records `storage_warning` / `storage_read_only` only on a
 * transition (lib/quota/storage.ts storageEvents), so a tenant that stays above 80 % is told once.
 */
export function storageNotifications(results: readonly StorageCheckResult[]): NotifyInput[] {
  const out: NotifyInput[] = [];
  for (const r of results) {
    const details = {
      database: r.database,
      bytes: r.bytes,
      maxBytes: r.maxBytes,
      percent: r.percent,
      previousState: r.previousState ?? null,
      state: r.state,
    };
    for (const kind of r.events ?? []) {
      if (kind === "storage_warning")
        out.push({
          event: "storage.warning",
          tenant: r.subdomain,
          message: `${r.subdomain} uses ${r.percent ?? "?"} % of its storage limit`,
          details,
        });
      if (kind === "storage_read_only")
        out.push({
          event: "storage.read_only",
          tenant: r.subdomain,
          message: `${r.subdomain} reached its storage limit (${r.percent ?? "?"} %): its database is read-only`,
          details,
        });
    }
  }
  return out;
}

/** Sends each notification in turn (the notifier never throws). */
export async function notifyAll(notifier: Notifier, inputs: readonly NotifyInput[]): Promise<void> {
  for (const input of inputs) await notifier.notify(input);
}

/** Runs a scheduled job's work; when it throws, sends `event` with the error, then rethrows. */
export async function notifyOnFailure<T>(
  notifier: Notifier,
  event: "backup.failed" | "verify.failed",
  details: Record<string, unknown>,
  work: () => Promise<T>,
  redact: (text: string) => string = (t) => t,
): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const error = redact((err as Error).message);
    await notifier.notify({
      event,
      message: `${event === "backup.failed" ? "backup" : "repository verify"} failed: ${firstLine(error)}`,
      details: { ...details, error },
    });
    throw err;
  }
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/**
 * Runs a tenant's restore and tells its outcome: `restore.finished` when it ended `done`,
 * `restore.failed` when it threw or ended otherwise. Returns or throws what the restore did.
 */
export async function notifyRestore(
  notifier: Notifier,
  tenant: { subdomain: string; target: RestoreTarget },
  restore: () => Promise<RestoreResult>,
  redact: (text: string) => string = (t) => t,
): Promise<RestoreResult> {
  const target = { ...tenant.target };
  let result: RestoreResult;
  try {
    result = await restore();
  } catch (err) {
    const error = redact((err as Error).message);
    await notifier.notify({
      event: "restore.failed",
      tenant: tenant.subdomain,
      message: `restore of ${tenant.subdomain} failed: ${firstLine(error)}`,
      details: { target, error },
    });
    throw err;
  }
  const details = {
    restore: result.id,
    target,
    state: result.state,
    targetLsn: result.targetLsn,
    backup: result.backup,
    preRestoreDatabase: result.preRestoreDatabase,
    totalMs: result.timings.totalMs,
  };
  const done = result.state === "done";
  await notifier.notify({
    event: done ? "restore.finished" : "restore.failed",
    tenant: tenant.subdomain,
    message: done
      ? `restore ${result.id} of ${tenant.subdomain} finished`
      : `restore ${result.id} of ${tenant.subdomain} ended ${result.state}`,
    details,
  });
  return result;
}
