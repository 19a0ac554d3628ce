/**
 * A template's `fromCommand` on the kubernetes target runs in a pod of the ERP image
 * (lib/tenant/templatePod.ts). With no cluster here, a STAND-IN kubectl (test/helpers/
 * standin-kubectl-run.js, not kubectl) runs the pod's command on this machine with the pod's
 * environment, against the real test cluster: the command runs as the template's builder role (not
 * a superuser, owner of the building database, allowed into `postgres`), whose password reaches it
 * only through the pod's secretKeyRef to the builder's Secret (never on kubectl's command line nor
 * in the pod spec); afterwards the platform owns everything and the builder cannot log in; a
 * failing command leaves no template behind.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { dropTemplate, ensureTemplate, templateStatus, type TemplateSpec } from "../../lib/tenant/template";
import { builderSecretName, type KubernetesCommandRunner } from "../../lib/tenant/templatePod";
import { repoRoot } from "../../testkit/repo";

const pg = inject("pg");
const run = randomBytes(3).toString("hex");
const admin = new URL(pg.adminDsn);
/** The runner of template `name`: its pod reads the builder's password from the template's Secret. */
function runnerOf(name: string): KubernetesCommandRunner {
  return {
    namespace: "loomworks",
    image: "registry.example.com/loomworks/erp:18.0-1",
    host: "postgres.loomworks.svc",
    port: 5432,
    passwordSecret: { name: builderSecretName(name), key: "password" },
    labels: { "app.kubernetes.io/name": "loomworks-erp", "app.kubernetes.io/component": "module-update" },
    user: { uid: 1000, gid: 1000 },
  };
}
const runner = runnerOf("pod");
const superuserPassword = decodeURIComponent(admin.password);

/** What the stand-in cluster's Secrets hold: only the builders' passwords (no superuser's). */
function setSecrets(secrets: Record<string, string>): void {
  process.env.STANDIN_SECRETS = JSON.stringify(secrets);
}

function newPassword(): string {
  return randomBytes(18).toString("base64url");
}

/** A pod build of template `name` into database `database`, its builder's Secret holding `password`. */
function podSpec(name: string, database: string, fromCommand: string, password: string): TemplateSpec {
  setSecrets({ [`${builderSecretName(name)}/password`]: password });
  return {
    name,
    database,
    fromCommand,
    stateDir: workDir,
    commandRunner: runnerOf(name),
    builderPassword: password,
  };
}

async function kubectlCalls(): Promise<string[][]> {
  const text = await fs.readFile(kubectlLog, "utf8").catch(() => "");
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as string[]);
}

/** The builder role as the catalog shows it (pg_authid: the admin is a superuser). */
async function builderRow(
  role: string,
): Promise<{ rolcanlogin: boolean; rolsuper: boolean; haspassword: boolean } | undefined> {
  return withClient(
    pg.adminDsn,
    async (c) =>
      (
        await c.query(
          "SELECT rolcanlogin, rolsuper, rolpassword IS NOT NULL AS haspassword FROM pg_authid WHERE rolname = $1",
          [role],
        )
      ).rows[0],
  );
}

/** Runs `fn` in the (connection-closed) template database as the platform. */
async function inTemplate<T>(t: string, fn: (db: import("pg").Client) => Promise<T>): Promise<T> {
  return withClient(pg.adminDsn, async (c) => {
    await c.query(`ALTER DATABASE ${quoteIdent(t)} ALLOW_CONNECTIONS true`);
    try {
      return await withClient(dsnWithDatabase(pg.adminDsn, t), fn);
    } finally {
      await c.query(`ALTER DATABASE ${quoteIdent(t)} ALLOW_CONNECTIONS false`);
    }
  });
}
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
    STANDIN_PGHOST: admin.hostname,
    STANDIN_PGPORT: admin.port || "5432",
  });
});

afterAll(async () => {
  process.env = savedEnv;
  for (const t of templates) {
    await dropTemplate(pg.adminDsn, t).catch(() => undefined);
    // A failed build leaves its (retired) builder: dropTemplate only drops it with a template.
    await withClient(pg.adminDsn, (c) => c.query(`DROP ROLE IF EXISTS ${quoteIdent(`${t}_builder`)}`)).catch(
      () => undefined,
    );
  }
  await fs.rm(workDir, { recursive: true, force: true });
});

describe("a template command on the kubernetes target", () => {
  it("builds the template through a pod as the template's builder, its password only by secretKeyRef", async () => {
    const t = `loomworks_template_pod_${run}`;
    const builder = `${t}_builder`;
    templates.push(t);
    const password = newPassword();
    // Like Odoo's initializer: looks into `postgres` first, then fills {db} as whoever PG* names.
    const fromCommand = [
      `echo "data_dir={data_dir}"`,
      `psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "SELECT 1" >/dev/null`,
      `psql -X -q -v ON_ERROR_STOP=1 -d {db} -c "CREATE TABLE made_in_pod AS SELECT current_database()::text AS db, current_user::text AS who, '$PGUSER'::text AS env_user, current_setting('is_superuser') AS superuser, pg_get_userbyid(datdba) = current_user AS owns_db FROM pg_database WHERE datname = current_database()" -c "CREATE SEQUENCE made_in_pod_seq" -c "CREATE SCHEMA pod_schema"`,
    ].join(" && ");
    const logs: string[] = [];
    await ensureTemplate(pg.adminDsn, podSpec("pod", t, fromCommand, password), (m) => logs.push(m));
    expect(logs.join("\n")).toContain(`in a pod of ${runner.image}`);

    const built = await inTemplate(t, async (db) => ({
      rows: (await db.query("SELECT db, who, env_user, superuser, owns_db FROM made_in_pod")).rows,
      owners: (
        await db.query<{ kind: string; owner: string }>(
          `SELECT 'table' AS kind, tableowner AS owner FROM pg_tables WHERE tablename = 'made_in_pod'
           UNION ALL SELECT 'sequence', sequenceowner FROM pg_sequences WHERE sequencename = 'made_in_pod_seq'
           UNION ALL SELECT 'schema', pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'pod_schema'
           UNION ALL SELECT 'database', pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()
           ORDER BY 1`,
        )
      ).rows,
      builderOwns: Number(
        (
          await db.query(
            "SELECT count(*) AS n FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = $1)",
            [builder],
          )
        ).rows[0].n,
      ),
    }));
    // The command ran as the builder (not a superuser) that owned the building database.
    expect(built.rows).toEqual([
      { db: `${t}__building`, who: builder, env_user: builder, superuser: "off", owns_db: true },
    ]);
    // Afterwards the platform owns all of it, and the builder can no longer log in.
    const platform = decodeURIComponent(admin.username);
    expect(built.owners).toEqual([
      { kind: "database", owner: platform },
      { kind: "schema", owner: platform },
      { kind: "sequence", owner: platform },
      { kind: "table", owner: platform },
    ]);
    expect(built.builderOwns).toBe(0);
    expect(await builderRow(builder)).toEqual({ rolcanlogin: false, rolsuper: false, haspassword: false });

    const calls = await kubectlCalls();
    expect(calls).toHaveLength(1);
    expect(calls[0].slice(0, 2)).toEqual(["run", expect.stringMatching(/^loomworks-template-[0-9a-f]{10}$/)]);
    expect(calls[0]).toContain("--namespace=loomworks");
    const overrides = JSON.parse(calls[0].find((a) => a.startsWith("--overrides="))!.slice(12));
    const env = overrides.spec.containers[0].env as { name: string; value?: string; valueFrom?: unknown }[];
    expect(env.find((e) => e.name === "PGUSER")?.value).toBe(builder);
    expect(env.find((e) => e.name === "PGPASSWORD")).toEqual({
      name: "PGPASSWORD",
      valueFrom: { secretKeyRef: { name: "loomworks-template-builder-pod", key: "password" } },
    });
    const buildLog = await fs.readFile(path.join(workDir, "templates", "pod.build.log"), "utf8");
    // {data_dir} is a directory of the pod's writable /tmp.
    expect(buildLog).toContain("data_dir=/tmp/loomworks-build-data\n");
    for (const secret of [password, superuserPassword]) {
      expect(JSON.stringify(calls)).not.toContain(secret);
      expect(buildLog).not.toContain(secret);
    }
  });

  it("rebuilds with the builder's rotated password, the role reset and retired again", async () => {
    const t = `loomworks_template_podrot_${run}`;
    templates.push(t);
    const command = (n: number) =>
      `psql -X -q -v ON_ERROR_STOP=1 -d {db} -c "CREATE TABLE v${n} (who text DEFAULT current_user)" -c "INSERT INTO v${n} DEFAULT VALUES"`;
    await ensureTemplate(pg.adminDsn, podSpec("podrot", t, command(1), newPassword()));
    // The Secret's value rotated and the command changed: the next build logs in with the new one.
    const r = await ensureTemplate(pg.adminDsn, podSpec("podrot", t, command(2), newPassword()));
    expect(r.rebuilt).toBe(true);
    const who = await inTemplate(t, async (db) => (await db.query("SELECT who FROM v2")).rows);
    expect(who).toEqual([{ who: `${t}_builder` }]);
    expect(await builderRow(`${t}_builder`)).toEqual({
      rolcanlogin: false,
      rolsuper: false,
      haspassword: false,
    });
  });

  it("fails with the pod's output and leaves no template, and a builder that cannot log in, when the command fails", async () => {
    const t = `loomworks_template_podfail_${run}`;
    templates.push(t);
    const fromCommand = `echo "initializer says no" >&2; exit 3`;
    await expect(
      ensureTemplate(pg.adminDsn, podSpec("podfail", t, fromCommand, newPassword())),
    ).rejects.toThrow(/template podfail: building .* failed[\s\S]*initializer says no/);
    expect((await templateStatus(pg.adminDsn, t)).exists).toBe(false);
    expect(await builderRow(`${t}_builder`)).toMatchObject({ rolcanlogin: false, haspassword: false });
  });

  it("refuses a pod build without the builder's password, before any pod runs", async () => {
    const t = `loomworks_template_podnopw_${run}`;
    templates.push(t);
    const before = (await kubectlCalls()).length;
    const { builderPassword: _unused, ...spec } = podSpec("podnopw", t, "true", newPassword());
    await expect(ensureTemplate(pg.adminDsn, spec)).rejects.toThrow(
      /podnopw: a pod build needs builderPassword/,
    );
    expect((await kubectlCalls()).length).toBe(before);
    expect(await templateStatus(pg.adminDsn, t)).toMatchObject({ exists: false, building: false });
  });
});
