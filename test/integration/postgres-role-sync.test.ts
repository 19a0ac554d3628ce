/**
 * The PostgreSQL image's role-sync script (docker/postgres/scripts/loomworks-sync-roles: the
 * kubernetes target's `postgres-roles` sidecar and initdb hook) against a throw-away PostgreSQL 15
 * server of its own (the script changes the superuser's password, so never the shared test cluster):
 * roles created and their passwords applied from the Secret's files, a rotation applied, nothing
 * applied from a missing or empty file or when a statement fails, no password in the server log.
 */
import { spawnSync } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pgBin } from "../../lib/pg/cluster";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import { findFreePort, makeStateDir } from "../../testkit/cluster";
import { repoRoot } from "../../testkit/repo";

const SCRIPT = path.join(repoRoot, "docker", "postgres", "scripts", "loomworks-sync-roles");
type SecretFile = "superuser-password" | "replication-password" | "monitor-password" | "erp-password";

let dir = "";
let port = 0;
const secrets = () => path.join(dir, "secrets");
const socket = () => path.join(dir, "socket");

function asPostgres(file: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(
    "runuser",
    ["-u", "postgres", "--", "env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), file, ...args],
    {
      encoding: "utf8",
    },
  );
}

function sync(env: Record<string, string> = {}) {
  return asPostgres(SCRIPT, ["--once"], {
    PGPORT: String(port),
    LOOMWORKS_SECRETS_DIR: secrets(),
    LOOMWORKS_SOCKET_DIR: socket(),
    ...env,
  });
}

async function writeSecrets(values: Partial<Record<SecretFile, string>>): Promise<void> {
  for (const [name, value] of Object.entries(values)) {
    await fs.writeFile(path.join(secrets(), name), value, { mode: 0o644 });
  }
}

const newPassword = () => randomBytes(18).toString("base64url");
const login = (user: string, password: string) =>
  withClient(`postgres://${user}:${password}@127.0.0.1:${port}/postgres`, (c) => c.query("SELECT 1")).then(
    () => "ok",
    (e: { code?: string }) => e.code ?? "error",
  );

beforeAll(async () => {
  dir = await makeStateDir("lw-role-sync-");
  port = await findFreePort(26432);
  await fs.mkdir(secrets());
  await fs.mkdir(socket());
  spawnSync("chown", ["-R", "postgres", dir]);
  const init = asPostgres(pgBin("initdb"), [
    "-D",
    path.join(dir, "data"),
    "-U",
    "postgres",
    "--auth-local=peer",
    "--auth-host=scram-sha-256",
  ]);
  expect(init.status, init.stderr).toBe(0);
  const start = asPostgres(pgBin("pg_ctl"), [
    "-D",
    path.join(dir, "data"),
    "-l",
    path.join(dir, "server.log"),
    "-w",
    "-o",
    `-p ${port} -k ${socket()} -c listen_addresses=127.0.0.1 -c log_min_duration_statement=0 -c log_statement=all`,
    "start",
  ]);
  expect(start.status, start.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  if (!dir) return;
  asPostgres(pgBin("pg_ctl"), ["-D", path.join(dir, "data"), "-m", "immediate", "stop"]);
  await fs.rm(dir, { recursive: true, force: true });
});

describe("loomworks-sync-roles", () => {
  const first = { su: newPassword(), repl: newPassword(), mon: newPassword(), erp: newPassword() };

  it("creates the platform's roles and applies every password from the files", async () => {
    await writeSecrets({
      "superuser-password": first.su,
      "replication-password": first.repl,
      "monitor-password": first.mon,
      "erp-password": first.erp,
    });
    const r = sync({ LOOMWORKS_ERP_ROLE: "loomworks_erp" });
    expect(r.status, r.stderr).toBe(0);
    expect(await login("postgres", first.su)).toBe("ok");
    expect(await login("loomworks_monitor", first.mon)).toBe("ok");
    expect(await login("loomworks_erp", first.erp)).toBe("ok");
    const roles = await withClient(`postgres://postgres:${first.su}@127.0.0.1:${port}/postgres`, (c) =>
      c.query<{ rolname: string; rolsuper: boolean; rolreplication: boolean; monitor: boolean }>(
        `SELECT rolname, rolsuper, rolreplication, pg_has_role(oid, 'pg_monitor', 'member') AS monitor
           FROM pg_roles WHERE rolname LIKE 'loomworks%' ORDER BY rolname`,
      ),
    );
    expect(roles.rows).toEqual([
      { rolname: "loomworks_erp", rolsuper: false, rolreplication: false, monitor: false },
      { rolname: "loomworks_monitor", rolsuper: false, rolreplication: false, monitor: true },
      { rolname: "loomworks_replication", rolsuper: false, rolreplication: true, monitor: false },
    ]);
  });

  it("applies a rotation, keeps open sessions, and refuses the old passwords", async () => {
    const rotated = { su: newPassword(), erp: newPassword() };
    await withClient(`postgres://loomworks_erp:${first.erp}@127.0.0.1:${port}/postgres`, async (open) => {
      await writeSecrets({ "superuser-password": rotated.su, "erp-password": rotated.erp });
      const r = sync({ LOOMWORKS_ERP_ROLE: "loomworks_erp" });
      expect(r.status, r.stderr).toBe(0);
      expect((await open.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    });
    expect(await login("postgres", rotated.su)).toBe("ok");
    expect(await login("loomworks_erp", rotated.erp)).toBe("ok");
    expect(await login("postgres", first.su)).toBe("28P01");
    expect(await login("loomworks_erp", first.erp)).toBe("28P01");
    first.su = rotated.su;
    first.erp = rotated.erp;
  });

  it("keeps the ERP's role able to reach `postgres` (Odoo's LISTEN/NOTIFY) once PUBLIC may not", async () => {
    const admin = `postgres://postgres:${first.su}@127.0.0.1:${port}/postgres`;
    // What the tenant registry does when the first tenant is provisioned.
    await withClient(admin, (c) => c.query("REVOKE CONNECT ON DATABASE postgres FROM PUBLIC"));
    try {
      await withClient(admin, (c) => c.query("REVOKE CONNECT ON DATABASE postgres FROM loomworks_erp"));
      expect(await login("loomworks_erp", first.erp)).toBe("42501");
      const r = sync({ LOOMWORKS_ERP_ROLE: "loomworks_erp" });
      expect(r.status, r.stderr).toBe(0);
      expect(await login("loomworks_erp", first.erp)).toBe("ok");
      expect(await login("loomworks_monitor", first.mon)).toBe("42501"); // the grant is the ERP role's alone
    } finally {
      await withClient(admin, (c) => c.query("GRANT CONNECT ON DATABASE postgres TO PUBLIC"));
    }
  });

  it("applies nothing from a missing or empty file, or when a statement fails", async () => {
    const next = newPassword();
    await writeSecrets({ "superuser-password": next, "replication-password": "" });
    const empty = sync();
    expect(empty.status).not.toBe(0);
    expect(empty.stderr).toContain("replication-password is missing or empty: nothing applied");
    expect(await login("postgres", first.su)).toBe("ok");

    await writeSecrets({ "replication-password": newPassword() });
    const failing = sync({ LOOMWORKS_ERP_ROLE: "pg_reserved" });
    expect(failing.status).not.toBe(0);
    expect(failing.stderr).toContain('role name "pg_reserved" is reserved');
    // One transaction: the superuser's new password was not applied either.
    expect(await login("postgres", first.su)).toBe("ok");
    expect(await login("postgres", next)).toBe("28P01");
  });

  it("never lets a password reach the server log, even with every statement logged", async () => {
    const log = await fs.readFile(path.join(dir, "server.log"), "utf8");
    expect(log).toContain("SELECT 1"); // the log is live: the logins' statements are in it
    for (const password of [first.su, first.mon, first.repl, first.erp]) expect(log).not.toContain(password);
  });
});
