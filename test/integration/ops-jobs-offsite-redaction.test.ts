/**
 * The jobs CLI without `--state-dir` (the docker ops container's mode: pgbackrest.conf readable in
 * the container, pgBackRest run in place) redacts the offsite repository's secrets from its log,
 * as the local mode and the restore job do. pgBackRest quotes an S3 error's response body, and S3
 * names the access key in it (InvalidAccessKeyId, SignatureDoesNotMatch): here an HTTPS server on a
 * loopback port answers every request that way, and the expire and backup jobs must log the 403
 * without the key.
 */
import { execFileSync, spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { adminDsn } from "../../lib/pg/client";
import { makeStateDir } from "../../testkit/cluster";
import { repoRoot } from "../helpers/compile";

const pg = inject("pg");
const jobs = path.join(repoRoot, "bin", "infra", "ops", "jobs.js");
const ACCESS_KEY = "AKIAREDACTIONTEST4242";
const SECRET_KEY = "offsite-secret-key-redaction-test-4242";

let work: string;
let server: https.Server;

function runJobs(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [jobs, ...args], { env, cwd: "/" });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}

beforeAll(async () => {
  work = await makeStateDir("loomworks-ops-redact-it-");
  await fs.chmod(work, 0o755);
  const key = path.join(work, "key.pem");
  const cert = path.join(work, "cert.pem");
  execFileSync("openssl", [
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"],
    ...["-keyout", key, "-out", cert],
  ]);
  // An S3 endpoint that refuses every request and, as S3 does, names the access key it was given.
  server = https.createServer({ key: await fs.readFile(key), cert: await fs.readFile(cert) }, (req, res) => {
    const given = /Credential=([^/]+)\//.exec(req.headers.authorization ?? "")?.[1] ?? "";
    res.writeHead(403, { "content-type": "application/xml" });
    res.end(
      `<?xml version="1.0"?><Error><Code>InvalidAccessKeyId</Code>` +
        `<Message>The AWS Access Key Id you provided does not exist in our records.</Message>` +
        `<AWSAccessKeyId>${given}</AWSAccessKeyId></Error>`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  // pgbackrest.conf at <dir>/pgbackrest/pgbackrest.conf, as the ops container has it.
  const dir = path.join(work, "pgbackrest");
  for (const sub of ["repo", "log", "lock", "spool"])
    await fs.mkdir(path.join(dir, sub), { recursive: true });
  await fs.writeFile(
    path.join(dir, "pgbackrest.conf"),
    [
      "[global]",
      `repo1-path=${path.join(dir, "repo")}`,
      "repo1-retention-full-type=count",
      "repo1-retention-full=2",
      "repo2-type=s3",
      "repo2-path=/offsite",
      `repo2-s3-endpoint=127.0.0.1:${port}`,
      "repo2-s3-bucket=offsite",
      "repo2-s3-region=local",
      `repo2-s3-key=${ACCESS_KEY}`,
      `repo2-s3-key-secret=${SECRET_KEY}`,
      "repo2-s3-uri-style=path",
      "repo2-storage-verify-tls=n",
      "repo2-retention-full-type=count",
      "repo2-retention-full=2",
      `log-path=${path.join(dir, "log")}`,
      `lock-path=${path.join(dir, "lock")}`,
      `spool-path=${path.join(dir, "spool")}`,
      "",
      `[${pg.stanza}]`,
      `pg1-path=${path.join(work, "no-data-directory")}`,
      `pg1-port=${pg.port}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  // pgBackRest runs as postgres (the jobs use runuser when root).
  execFileSync("chown", ["-R", "postgres:postgres", dir]);
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe("jobs without --state-dir, with an S3 offsite repository in pgbackrest.conf", () => {
  it.each([["expire"], ["backup", "--type", "full"]])(
    "%s logs S3's refusal without the access key",
    async (...args: string[]) => {
      const base = { ...process.env };
      for (const k of Object.keys(base)) if (k.startsWith("LOOMWORKS_") || k.startsWith("PG")) delete base[k];
      const { code, out } = await runJobs(args, {
        ...base,
        LOOMWORKS_ADMIN_DSN: adminDsn({ host: pg.host, port: pg.port, user: "postgres" }),
        PGPASSWORD: pg.superuserPassword,
        LOOMWORKS_STANZA: pg.stanza,
        LOOMWORKS_PGBACKREST_CONFIG: path.join(work, "pgbackrest", "pgbackrest.conf"),
        LOOMWORKS_LOG_FORMAT: "json",
      });
      expect(code, out).toBe(1);
      // The request reached the endpoint and its answer is in the log...
      expect(out).toContain("<Code>InvalidAccessKeyId</Code>");
      expect(out).toContain("<AWSAccessKeyId><redacted></AWSAccessKeyId>");
      // ...without the key it names.
      expect(out).not.toContain(ACCESS_KEY);
      expect(out).not.toContain(SECRET_KEY);
    },
  );
});
