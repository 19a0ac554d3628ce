/**
 * The jobs' log lines (lib/ops/log.ts): the plain format the local scheduler's logs hold, the JSON
 * format of the Kubernetes jobs (one object a line with time, level, job, msg and fields), and
 * redaction of secrets and connection-URL passwords in both.
 */
import { describe, expect, it } from "vitest";
import {
  createJobLogger,
  formatLogLine,
  logFormatFromEnv,
  redactSecrets,
  type LogFormat,
} from "../../lib/ops/log";

const PASSWORD = "s3cr:et/pa@ss word";
const DSN = `postgres://postgres:${encodeURIComponent(PASSWORD)}@postgres.loom.svc:5432/postgres`;
const CIPHER = 'cipher"pass\\with-quotes';
const AT = new Date("2026-11-26T10:00:00.000Z");

function capture(format: LogFormat, secrets: string[] = []) {
  const out: string[] = [];
  const err: string[] = [];
  const log = createJobLogger({
    job: "backup",
    format,
    secrets,
    stdout: (l) => out.push(l),
    stderr: (l) => err.push(l),
    now: () => AT,
  });
  return { log, out, err };
}

describe("log format selection", () => {
  it("defaults to text, accepts json, refuses anything else", () => {
    expect(logFormatFromEnv({})).toBe("text");
    expect(logFormatFromEnv({ LOOMWORKS_LOG_FORMAT: "text" })).toBe("text");
    expect(logFormatFromEnv({ LOOMWORKS_LOG_FORMAT: " JSON " })).toBe("json");
    expect(() => logFormatFromEnv({ LOOMWORKS_LOG_FORMAT: "yaml" })).toThrow(/must be "text" or "json"/);
  });
});

describe("plain text lines", () => {
  it("keep the historical `<ISO time> <msg>` shape on stdout; errors go to stderr", () => {
    const { log, out, err } = capture("text");
    log("backup 20261126-010000F (full) recorded");
    log.warn("slow", { seconds: 12 });
    log.error("quota check of acme failed: boom", { tenant: "acme" });
    expect(out).toEqual([
      "2026-11-26T10:00:00.000Z backup 20261126-010000F (full) recorded\n",
      "2026-11-26T10:00:00.000Z WARN slow seconds=12\n",
    ]);
    expect(err).toEqual(["2026-11-26T10:00:00.000Z ERROR quota check of acme failed: boom tenant=acme\n"]);
  });
});

describe("JSON lines", () => {
  it("are one object a line: time, level, job, msg and the fields", () => {
    const { log, out, err } = capture("json");
    log("auto snapshots: 3 tenants ok, 1 failed\nsecond line", { ok: 3, failed: 1 });
    log.error("auto snapshot of acme failed", { tenant: "acme", msg: "a field named msg" });
    expect(out).toHaveLength(1);
    expect(out[0].endsWith("\n")).toBe(true);
    expect(out[0].trimEnd().includes("\n")).toBe(false);
    expect(JSON.parse(out[0])).toEqual({
      time: "2026-11-26T10:00:00.000Z",
      level: "info",
      job: "backup",
      msg: "auto snapshots: 3 tenants ok, 1 failed\nsecond line",
      ok: 3,
      failed: 1,
    });
    // A field may not overwrite the reserved keys.
    expect(JSON.parse(err[0])).toEqual({
      time: "2026-11-26T10:00:00.000Z",
      level: "error",
      job: "backup",
      msg: "auto snapshot of acme failed",
      tenant: "acme",
      "field.msg": "a field named msg",
    });
  });
});

describe("redaction", () => {
  it("removes listed secrets (plain and URL-encoded) and any DSN password", () => {
    const text = `connect ${DSN} failed; cipher ${CIPHER}; raw ${PASSWORD}`;
    const redacted = redactSecrets(text, [PASSWORD, CIPHER]);
    expect(redacted).not.toContain(PASSWORD);
    expect(redacted).not.toContain(encodeURIComponent(PASSWORD));
    expect(redacted).not.toContain(CIPHER);
    expect(redacted).toContain("postgres://postgres:<redacted>@postgres.loom.svc:5432/postgres");
    // A DSN password nobody listed is still removed.
    expect(redactSecrets("postgres://u:hunter2@h/db and postgresql://v:x@h2/db", [])).toBe(
      "postgres://u:<redacted>@h/db and postgresql://v:<redacted>@h2/db",
    );
    // A DSN without password is left alone.
    expect(redactSecrets("postgres://postgres@h:5432/postgres")).toBe("postgres://postgres@h:5432/postgres");
  });

  it.each(["text", "json"] as const)(
    "a DSN password never appears in a %s line (message or fields)",
    (format) => {
      const { log, out, err } = capture(format, [CIPHER]);
      log.addSecrets(PASSWORD);
      log(`connecting to ${DSN}`, { dsn: DSN, nested: { list: [PASSWORD, CIPHER] } });
      log.error(new Error(`cannot connect to ${DSN}: password ${PASSWORD} refused`).message);
      const all = [...out, ...err].join("");
      expect(all).not.toContain(PASSWORD);
      expect(all).not.toContain(encodeURIComponent(PASSWORD));
      expect(all).not.toContain(CIPHER);
      expect(all).not.toContain(JSON.stringify(CIPHER).slice(1, -1));
      expect(all).toContain("<redacted>");
      expect(log.redact(`x ${PASSWORD} y`)).toBe("x <redacted> y");
    },
  );

  it("formatLogLine redacts the encoded JSON line too", () => {
    const line = formatLogLine("json", { time: AT, level: "info", job: "verify", msg: "ok" }, ["verify"]);
    expect(JSON.parse(line)).toMatchObject({ job: "<redacted>", msg: "ok" });
  });
});
