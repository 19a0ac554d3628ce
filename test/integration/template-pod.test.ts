/**
 * A template's `fromCommand` on the kubernetes target runs in a pod of the ERP image
 * (lib/tenant/templatePod.ts). With no cluster here, a STAND-IN kubectl (test/helpers/
 * standin-kubectl-run.js, not kubectl) runs the pod's command on this machine with the pod's
 * environment, against the real test cluster: the template is built as on the local target, the
 * password reaches the command only through the pod's secretKeyRef (never on kubectl's command
 * line), and a failing command leaves no template behind.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { quoteIdent, withClient } from "../../lib/pg/client";
import { dsnWithDatabase } from "../../lib/tenant/sql";
import { dropTemplate, ensureTemplate, templateStatus } from "../../lib/tenant/template";
import type { KubernetesCommandRunner } from "../../lib/tenant/templatePod";
import { repoRoot } from "../helpers/repo";

const pg = inject("pg");
const run = randomBytes(3).toString("hex");
const admin = new URL(pg.adminDsn);
const runner: KubernetesCommandRunner = {
  namespace: "loomworks",
  image: "registry.example.com/loomworks/erp:18.0-1",
  host: "postgres.loomworks.svc",
  port: 5432,
  passwordSecret: { name: "loomworks-postgres-secrets", key: "superuser-password" },
  labels: { "app.kubernetes.io/name": "loomworks-erp", "app.kubernetes.io/component": "module-update" },
  user: { uid: 1000, gid: 1000 },
};
let workDir = "";
let kubectlLog = "";
const templates: string[] = [];
const savedEnv = { ...process.env };

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), "lw-template-pod-"));
  const bin = path.join(workDir, "bin");
  await fs.mkdir(bin);
  await fs.symlink(
    path.join(repoRoot, "test", "helpers", "standin-kubectl-run.js"),
    path.join(bin, "kubectl"),
  );
  kubectlLog = path.join(workDir, "kubectl.log");
  Object.assign(process.env, {
    PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    STANDIN_KUBECTL_LOG: kubectlLog,
    STANDIN_SECRET_VALUE: decodeURIComponent(admin.password),
    STANDIN_PGHOST: admin.hostname,
    STANDIN_PGPORT: admin.port || "5432",
  });
});

afterAll(async () => {
  process.env = savedEnv;
  for (const t of templates) await dropTemplate(pg.adminDsn, t).catch(() => undefined);
  await fs.rm(workDir, { recursive: true, force: true });
});

describe("a template command on the kubernetes target", () => {
  it("builds the template through a pod, the password only by secretKeyRef", async () => {
    const t = `loomworks_template_pod_${run}`;
    templates.push(t);
    const fromCommand = `psql -X -q -v ON_ERROR_STOP=1 -d {db} -c "CREATE TABLE made_in_pod (db text DEFAULT current_database(), who text DEFAULT current_user)" -c "INSERT INTO made_in_pod DEFAULT VALUES"`;
    const logs: string[] = [];
    await ensureTemplate(
      pg.adminDsn,
      { name: "pod", database: t, fromCommand, stateDir: workDir, commandRunner: runner },
      (m) => logs.push(m),
    );
    expect(logs.join("\n")).toContain(`in a pod of ${runner.image}`);
    const rows = await withClient(pg.adminDsn, async (c) => {
      await c.query(`ALTER DATABASE ${quoteIdent(t)} ALLOW_CONNECTIONS true`);
      try {
        return await withClient(
          dsnWithDatabase(pg.adminDsn, t),
          async (db) => (await db.query("SELECT db, who FROM made_in_pod")).rows,
        );
      } finally {
        await c.query(`ALTER DATABASE ${quoteIdent(t)} ALLOW_CONNECTIONS false`);
      }
    });
    expect(rows).toEqual([{ db: `${t}__building`, who: "postgres" }]);
    const calls = (await fs.readFile(kubectlLog, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as string[]);
    expect(calls).toHaveLength(1);
    expect(calls[0].slice(0, 2)).toEqual(["run", expect.stringMatching(/^loomworks-template-[0-9a-f]{10}$/)]);
    expect(calls[0]).toContain("--namespace=loomworks");
    const password = decodeURIComponent(admin.password);
    expect(JSON.stringify(calls)).not.toContain(password);
    expect(await fs.readFile(path.join(workDir, "templates", "pod.build.log"), "utf8")).not.toContain(
      password,
    );
  });

  it("fails with the pod's output and leaves no template when the command fails", async () => {
    const t = `loomworks_template_podfail_${run}`;
    templates.push(t);
    const fromCommand = `echo "initializer says no" >&2; exit 3`;
    await expect(
      ensureTemplate(pg.adminDsn, {
        name: "podfail",
        database: t,
        fromCommand,
        stateDir: workDir,
        commandRunner: runner,
      }),
    ).rejects.toThrow(/template podfail: building .* failed[\s\S]*initializer says no/);
    expect((await templateStatus(pg.adminDsn, t)).exists).toBe(false);
  });
});
