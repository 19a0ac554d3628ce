/**
 * Operator notifications (lib/notify): the webhook's JSON body, retries and timeout against a real
 * HTTP receiver on 127.0.0.1 (node:http), the settings the jobs read, the events built from what the
 * jobs compute, and `platform.notify` in the stack configuration.
 */
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, parseStackConfig } from "../../infra/config/load";
import { notifyOnFailure, notifyRestore, storageNotifications } from "../../lib/notify/events";
import { schedulerPaths } from "../../lib/backup/scheduler";
import {
  notifierFor,
  notifierFrom,
  notifySettingsFromEnv,
  readNotifySettings,
} from "../../lib/notify/settings";
import { createNotifier, sendWebhook, type Notification } from "../../lib/notify/webhook";
import type { StorageCheckResult } from "../../lib/quota/storage";
import type { RestoreResult } from "../../lib/restore/restore";
import { listenOnLoopback } from "../helpers/loopback-server";

interface Received {
  method: string;
  url: string;
  contentType: string;
  body: unknown;
}

interface Receiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** A receiver answering each request with the next of `statuses` (the last one repeats); "hang" never answers. */
async function receiver(statuses: Array<number | "hang">): Promise<Receiver> {
  const received: Received[] = [];
  const server = await listenOnLoopback((req, res) => {
    let text = "";
    req.on("data", (d: Buffer) => (text += d.toString()));
    req.on("end", () => {
      received.push({
        method: req.method ?? "",
        url: req.url ?? "",
        contentType: String(req.headers["content-type"]),
        body: JSON.parse(text) as unknown,
      });
      const status = statuses[Math.min(received.length - 1, statuses.length - 1)];
      if (status === "hang") return;
      res.writeHead(status, { "content-type": "text/plain" }).end("thanks");
    });
  });
  return {
    url: `${server.origin}/hooks/loomworks?token=s3cret-T0KEN`,
    received,
    close: server.close,
  };
}

const open: Receiver[] = [];
async function start(statuses: Array<number | "hang">): Promise<Receiver> {
  const r = await receiver(statuses);
  open.push(r);
  return r;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

const NOTIFICATION: Notification = {
  event: "backup.failed",
  severity: "critical",
  message: "backup failed: stanza missing",
  details: { type: "diff" },
  at: "2026-12-07T10:00:00.000Z",
  stack: "prod",
};
const FAST = { backoffMs: 10, timeoutMs: 2000 };

function logSink(): { lines: string[]; log: { info(m: string): void; warn(m: string): void } } {
  const lines: string[] = [];
  return { lines, log: { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) } };
}

describe("sendWebhook", () => {
  it("POSTs the JSON body once when the receiver accepts", async () => {
    const r = await start([204]);
    const result = await sendWebhook(r.url, NOTIFICATION, FAST);
    expect(result).toEqual({ delivered: true, attempts: 1, status: 204 });
    expect(r.received).toEqual([
      {
        method: "POST",
        url: "/hooks/loomworks?token=s3cret-T0KEN",
        contentType: "application/json",
        body: NOTIFICATION,
      },
    ]);
  });

  it("retries a receiver that fails twice (503, 500) and is delivered on the third attempt", async () => {
    const r = await start([503, 500, 200]);
    const started = Date.now();
    const result = await sendWebhook(r.url, NOTIFICATION, { backoffMs: 50 });
    expect(result).toEqual({ delivered: true, attempts: 3, status: 200 });
    expect(r.received).toHaveLength(3);
    expect(r.received.every((x) => JSON.stringify(x.body) === JSON.stringify(NOTIFICATION))).toBe(true);
    // Backoff 50 ms, then 100 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
  });

  it("does not retry a 400", async () => {
    const r = await start([400, 200]);
    const result = await sendWebhook(r.url, NOTIFICATION, FAST);
    expect(result).toEqual({ delivered: false, attempts: 1, status: 400, error: "HTTP 400" });
    expect(r.received).toHaveLength(1);
  });

  it("retries 429 and stops after the bounded number of attempts", async () => {
    const r = await start([429]);
    const result = await sendWebhook(r.url, NOTIFICATION, { ...FAST, attempts: 3 });
    expect(result).toEqual({ delivered: false, attempts: 3, status: 429, error: "HTTP 429" });
    expect(r.received).toHaveLength(3);
  });

  it("gives up on a hanging receiver after the timeout of each attempt", async () => {
    const r = await start(["hang"]);
    const started = Date.now();
    const result = await sendWebhook(r.url, NOTIFICATION, { timeoutMs: 300, attempts: 2, backoffMs: 10 });
    const elapsed = Date.now() - started;
    expect(result).toEqual({ delivered: false, attempts: 2, error: "no answer within 300 ms" });
    expect(r.received).toHaveLength(2);
    expect(elapsed).toBeGreaterThanOrEqual(600);
    expect(elapsed).toBeLessThan(5000);
  });

  it("retries a refused connection and reports its code, never the URL", async () => {
    const r = await start([200]);
    const url = r.url;
    await r.close();
    const result = await sendWebhook(url, NOTIFICATION, { ...FAST, attempts: 2 });
    expect(result).toEqual({ delivered: false, attempts: 2, error: "ECONNREFUSED" });
  });

  it("refuses a URL that is not http(s) without sending anything", async () => {
    expect(await sendWebhook("ftp://example.com/x", NOTIFICATION)).toEqual({
      delivered: false,
      attempts: 0,
      error: "the webhook URL is not an http(s) URL",
    });
  });
});

describe("createNotifier", () => {
  it("fills in severity, time and stack; logs the host only (the URL's token never)", async () => {
    const r = await start([500, 200]);
    const sink = logSink();
    const notifier = createNotifier({ url: r.url, stack: "dev", log: sink.log, ...FAST });
    const at = new Date("2026-12-07T11:00:00Z");
    const result = await notifier.notify({
      event: "storage.warning",
      tenant: "acme",
      message: "acme uses 85 % of its storage limit",
      details: { percent: 85 },
      at,
    });
    expect(result).toMatchObject({ delivered: true, attempts: 2 });
    expect(r.received[1].body).toEqual({
      event: "storage.warning",
      tenant: "acme",
      severity: "warning",
      message: "acme uses 85 % of its storage limit",
      details: { percent: 85 },
      at: at.toISOString(),
      stack: "dev",
    });
    expect(sink.lines).toEqual([
      `info notification storage.warning (acme) delivered to ${new URL(r.url).host} (attempt 2)`,
    ]);
  });

  it("a failed delivery is a warning line without the URL; nothing throws", async () => {
    const r = await start([400]);
    const sink = logSink();
    const url = r.url.replace("http://", "http://user:pa55@");
    const notifier = createNotifier({ url, log: sink.log, ...FAST });
    const result = await notifier.notify({ event: "verify.failed", message: "verify failed" });
    expect(result).toMatchObject({ delivered: false, status: 400 });
    expect(sink.lines).toHaveLength(1);
    expect(sink.lines[0]).toMatch(
      /^warn notification verify\.failed not delivered to 127\.0\.0\.1:\d+ after 1 attempt\(s\): HTTP 400$/,
    );
    expect(sink.lines.join("\n")).not.toMatch(/s3cret|pa55|token/);
  });

  it("without a URL, sends nothing", async () => {
    const notifier = createNotifier({});
    expect(notifier.enabled).toBe(false);
    expect(await notifier.notify({ event: "restore.finished", message: "x" })).toBeUndefined();
  });
});

describe("settings", () => {
  it("from the environment (Kubernetes) and from notify.json (local); none without a URL", async () => {
    expect(notifySettingsFromEnv({})).toBeUndefined();
    expect(
      notifySettingsFromEnv({
        LOOMWORKS_NOTIFY_WEBHOOK_URL: "https://hooks.example.com/x",
        LOOMWORKS_NOTIFY_STACK: "prod",
        LOOMWORKS_NOTIFY_TIMEOUT_SECONDS: "5",
        LOOMWORKS_NOTIFY_ATTEMPTS: "3",
      }),
    ).toEqual({ webhookUrl: "https://hooks.example.com/x", stack: "prod", timeoutSeconds: 5, attempts: 3 });
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-notify-"));
    try {
      const file = path.join(dir, "notify.json");
      expect(await readNotifySettings(file)).toBeUndefined();
      await fs.writeFile(file, JSON.stringify({ webhookUrl: "http://127.0.0.1:9/x", attempts: 2 }));
      expect(await readNotifySettings(file)).toEqual({ webhookUrl: "http://127.0.0.1:9/x", attempts: 2 });
      // A damaged file: the error names the file, not its content (the parser's message quotes it).
      await fs.writeFile(file, "https://hooks.example.com/t0ken-in-a-broken-file");
      const damaged = await readNotifySettings(file).then(
        () => "",
        (err: Error) => err.message,
      );
      expect(damaged).toBe(`${file}: not JSON`);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
    expect(notifierFor(undefined).enabled).toBe(false);
    expect(notifierFor({ webhookUrl: "http://127.0.0.1:9/x" }).enabled).toBe(true);
  });

  it("notifierFrom: a damaged notify.json turns notifications off with a warning, never fails the caller", async () => {
    const stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-notify-"));
    const warnings: string[] = [];
    const urls: string[] = [];
    const log = { info: () => undefined, warn: (m: string) => void warnings.push(m) };
    try {
      const file = schedulerPaths(stateDir).notifyFile;
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, JSON.stringify({ webhookUrl: "http://127.0.0.1:9/t0ken" }));
      expect((await notifierFrom({ stateDir }, log, (u) => void urls.push(u))).enabled).toBe(true);
      expect(urls).toEqual(["http://127.0.0.1:9/t0ken"]);
      await fs.writeFile(file, "http://127.0.0.1:9/t0ken-in-a-broken-file");
      expect((await notifierFrom({ stateDir }, log)).enabled).toBe(false);
      expect(warnings).toEqual([`notifications off for this run: ${file}: not JSON`]);
      const fromEnv = await notifierFrom(
        { env: { LOOMWORKS_NOTIFY_WEBHOOK_URL: "https://hooks.example.com/x" } },
        log,
      );
      expect(fromEnv.enabled).toBe(true);
    } finally {
      await fs.rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe("events", () => {
  const base: StorageCheckResult = {
    subdomain: "acme",
    database: "tenant_acme",
    bytes: 850,
    maxBytes: 1000,
    percent: 85,
    state: "warning",
    previousState: "ok",
    events: [],
  };

  it("storage: one notification per recorded crossing, none while the state stays", () => {
    expect(storageNotifications([base, { ...base, subdomain: "x", error: "down" }])).toEqual([]);
    const crossed = storageNotifications([
      { ...base, events: ["storage_warning"] },
      { ...base, subdomain: "globex", state: "read_only", percent: 101, events: ["storage_read_only"] },
      { ...base, subdomain: "initech", state: "ok", events: ["storage_ok"] },
    ]);
    expect(crossed.map((n) => [n.event, n.tenant])).toEqual([
      ["storage.warning", "acme"],
      ["storage.read_only", "globex"],
    ]);
    expect(crossed[0]).toMatchObject({
      message: "acme uses 85 % of its storage limit",
      details: { bytes: 850, maxBytes: 1000, percent: 85, previousState: "ok", state: "warning" },
    });
  });

  it("a failed job: the event with the redacted error, then the job's own error again", async () => {
    const r = await start([200]);
    const notifier = createNotifier({ url: r.url, ...FAST });
    const failing = notifyOnFailure(
      notifier,
      "backup.failed",
      { type: "full" },
      () => Promise.reject(new Error("pgbackrest: stanza 'nope' does not exist\nmore")),
      (t) => t.replace("nope", "<redacted>"),
    );
    await expect(failing).rejects.toThrow("stanza 'nope' does not exist");
    expect(r.received.map((x) => x.body)).toEqual([
      expect.objectContaining({
        event: "backup.failed",
        severity: "critical",
        message: "backup failed: pgbackrest: stanza '<redacted>' does not exist",
        details: { type: "full", error: "pgbackrest: stanza '<redacted>' does not exist\nmore" },
      }),
    ]);
    expect(await notifyOnFailure(notifier, "verify.failed", {}, () => Promise.resolve(7))).toBe(7);
    expect(r.received).toHaveLength(1);
  });

  it("a restore: finished, failed by a throw, failed by its end state", async () => {
    const r = await start([200]);
    const notifier = createNotifier({ url: r.url, ...FAST });
    const result = (state: RestoreResult["state"]): RestoreResult => ({
      id: "r1",
      subdomain: "acme",
      target: { lsn: "0/5A3B2C10" },
      targetLsn: "0/5A3B2C10",
      backup: "20261207-010000F",
      state,
      restoreDatabase: "tenant_acme__restore",
      preRestoreDatabase: "tenant_acme__pre_r1",
      timings: { totalMs: 1234 },
    });
    const tenant = { subdomain: "acme", target: { lsn: "0/5A3B2C10" } };
    expect((await notifyRestore(notifier, tenant, () => Promise.resolve(result("done")))).state).toBe("done");
    await notifyRestore(notifier, tenant, () => Promise.resolve(result("rolled_back")));
    await expect(
      notifyRestore(notifier, tenant, () => Promise.reject(new Error("no backup"))),
    ).rejects.toThrow("no backup");
    const bodies = r.received.map((x) => x.body as Notification);
    expect(bodies.map((b) => [b.event, b.severity, b.tenant, b.message])).toEqual([
      ["restore.finished", "info", "acme", "restore r1 of acme finished"],
      ["restore.failed", "critical", "acme", "restore r1 of acme ended rolled_back"],
      ["restore.failed", "critical", "acme", "restore of acme failed: no backup"],
    ]);
    expect(bodies[0].details).toMatchObject({ restore: "r1", target: { lsn: "0/5A3B2C10" }, totalMs: 1234 });
  });
});

describe("platform.notify in the stack configuration", () => {
  it("defaults, and a webhook URL kept as given", () => {
    expect(parseStackConfig({}).platform.notify).toEqual({ timeoutSeconds: 10, attempts: 4 });
    const url = "https://hooks.example.com/services/T0/B0/xyz";
    expect(
      parseStackConfig({ platform: { notify: { webhookUrl: url, attempts: "2" } } }).platform.notify,
    ).toEqual({ webhookUrl: url, timeoutSeconds: 10, attempts: 2 });
  });

  it("refuses a URL that is not http(s) without showing it, and out-of-range bounds", () => {
    let problems: readonly string[] = [];
    try {
      parseStackConfig({
        platform: {
          notify: { webhookUrl: "ftp://hooks.example.com/tok3n", timeoutSeconds: 0, attempts: 11 },
        },
      });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      problems = (e as ConfigError).problems;
    }
    expect(problems).toEqual([
      'platform: key "notify.webhookUrl": must be an http:// or https:// URL (got a secret value)',
      'platform: key "notify.timeoutSeconds": must be an integer from 1 to 120 (seconds) (got 0)',
      'platform: key "notify.attempts": must be an integer from 1 to 10 (got 11)',
    ]);
  });
});
