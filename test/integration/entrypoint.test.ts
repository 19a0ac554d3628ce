/**
 * The ERP image's entrypoint (docker/entrypoint.sh) run here, outside any container, against the
 * real PostgreSQL of the integration cluster (test/integration/global-setup.ts). Odoo is not
 * installable in this environment: `odoo` on PATH is a STAND-IN (test/helpers/standin-odoo.sh) that
 * records its calls, "serves" until SIGTERM and exits with a chosen code. The databases are minimal
 * Odoo-shaped ones (an ir_config_parameter table), not Odoo databases.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import { ODOO_SECRET_ENV, parseOdooConfig, renderOdooConfig } from "../../lib/odoo/config";
import {
  renderTenantCredentials,
  renderTenantMap,
  tenantFilePaths,
  type ErpTenant,
} from "../../lib/odoo/tenantMap";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { freePort } from "../../testkit/ports";
import { repoRoot } from "../../testkit/repo";

const pg = inject("pg");
const ENTRYPOINT = path.join(repoRoot, "docker", "entrypoint.sh");
const STANDIN = path.join(repoRoot, "test", "helpers", "standin-odoo.sh");
const run = randomBytes(3).toString("hex");
const ROLE = `lw_ep_erp_${run}`;
const ROLE_PASSWORD = randomBytes(18).toString("base64url");
const ADMIN_PASSWD = randomBytes(24).toString("base64url");
const DB_A = `lw_ep_a_${run}`;
const DB_B = `lw_ep_b_${run}`;
const DB_PLAIN = `lw_ep_plain_${run}`;
const DB_MISSING = `lw_ep_missing_${run}`;
const MARKER = "loomworks.image_version";

let work: string;
let binDir: string;
let confPath: string;

interface Run {
  child: ChildProcess;
  stderr: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log: string;
  runtimeDir: string;
}

let runs = 0;

/** Starts the entrypoint with the stand-in `odoo` first on PATH. */
function start(args: string[], env: Record<string, string | undefined> = {}, conf = confPath): Run {
  runs += 1;
  const log = path.join(work, `calls-${runs}.log`);
  const runtimeDir = path.join(work, `runtime-${runs}`);
  const child = spawn("sh", [ENTRYPOINT, ...args], {
    env: {
      PATH: `${binDir}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      HOME: work,
      LOOMWORKS_ODOO_CONF: conf,
      LOOMWORKS_RUNTIME_DIR: runtimeDir,
      LOOMWORKS_IMAGE_VERSION: "18.0-lw1",
      LOOMWORKS_DB_WAIT_SECONDS: "20",
      [ODOO_SECRET_ENV.adminPasswd]: ADMIN_PASSWD,
      [ODOO_SECRET_ENV.dbPassword]: ROLE_PASSWORD,
      STANDIN_ODOO_LOG: log,
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, stderr: () => stderr, done, log, runtimeDir };
}

/** The stand-in's calls: each an argument list; TERM/EXIT/SERVING lines as [kind, pid, ...]. */
async function calls(log: string): Promise<string[][]> {
  const text = await fsp.readFile(log, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split("\t"));
}

const argvOf = (lines: string[][]) => lines.filter((l) => l[0] === "CALL").map((l) => l.slice(2));

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the stand-in serves; returns its pid. */
function serving(r: Run): Promise<number> {
  return until(`the server of ${r.log}`, async () => {
    const line = (await calls(r.log)).find((l) => l[0] === "SERVING");
    return line ? Number(line[1]) : undefined;
  });
}

async function marker(db: string): Promise<string | null> {
  return withClient(dsnWithDatabase(pg.adminDsn, db), async (c) => {
    const r = await c.query<{ value: string }>("SELECT value FROM ir_config_parameter WHERE key = $1", [
      MARKER,
    ]);
    return r.rows[0]?.value ?? null;
  });
}

async function setMarker(db: string, value: string | null): Promise<void> {
  await withClient(dsnWithDatabase(pg.adminDsn, db), async (c) => {
    await c.query("DELETE FROM ir_config_parameter WHERE key = $1", [MARKER]);
    if (value !== null)
      await c.query("INSERT INTO ir_config_parameter (key, value) VALUES ($1, $2)", [MARKER, value]);
  });
}

function renderConf(
  port: number,
  extra: { redisUrl?: string; tenantFiles?: { map: string; credentials: string } } = {},
): string {
  return renderOdooConfig({
    adminPasswd: { fromEnv: ODOO_SECRET_ENV.adminPasswd },
    dbHost: pg.host,
    dbPort: port,
    dbUser: ROLE,
    dbPassword: { fromEnv: ODOO_SECRET_ENV.dbPassword },
    dataDir: path.join(work, "data"),
    addonsPath: "/opt/odoo/addons",
    cpu: 1,
    memoryMb: 2048,
    ...(extra.redisUrl ? { redisUrl: extra.redisUrl } : {}),
    ...(extra.tenantFiles ? { tenantFiles: extra.tenantFiles } : {}),
  });
}

beforeAll(async () => {
  work = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-entrypoint-"));
  binDir = path.join(work, "bin");
  await fsp.mkdir(binDir);
  await fsp.copyFile(STANDIN, path.join(binDir, "odoo"));
  await fsp.chmod(path.join(binDir, "odoo"), 0o755);
  confPath = path.join(work, "odoo.conf");
  await fsp.writeFile(confPath, renderConf(pg.port));
  await withClient(pg.adminDsn, async (c) => {
    await c.query(`CREATE ROLE ${quoteIdent(ROLE)} LOGIN PASSWORD '${ROLE_PASSWORD}'`);
    for (const db of [DB_A, DB_B, DB_PLAIN]) {
      await c.query(`CREATE DATABASE ${quoteIdent(db)} OWNER ${quoteIdent(ROLE)}`);
    }
  });
  for (const db of [DB_A, DB_B]) {
    await withClient(dsnWithDatabase(pg.adminDsn, db), async (c) => {
      await c.query(`CREATE TABLE ir_config_parameter (
        id serial PRIMARY KEY, key varchar NOT NULL, value text NOT NULL,
        create_uid integer, write_uid integer,
        create_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
        write_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'),
        CONSTRAINT ir_config_parameter_key_uniq UNIQUE (key))`);
      await c.query(`ALTER TABLE ir_config_parameter OWNER TO ${quoteIdent(ROLE)}`);
    });
  }
});

afterAll(async () => {
  await withClient(pg.adminDsn, async (c) => {
    for (const db of [DB_A, DB_B, DB_PLAIN])
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${quoteIdent(ROLE)}`);
  });
  if (work) await fsp.rm(work, { recursive: true, force: true });
});

describe("entrypoint: configuration", () => {
  it("fills the secret references from the environment and from *_FILE into a private copy", async () => {
    const secretFile = path.join(work, "db-password");
    await fsp.writeFile(secretFile, `${ROLE_PASSWORD}\n`, { mode: 0o600 });
    const r = start(["update"], {
      [ODOO_SECRET_ENV.dbPassword]: undefined,
      [`${ODOO_SECRET_ENV.dbPassword}_FILE`]: secretFile,
    });
    expect(await r.done).toEqual({ code: 0, signal: null });
    const runtimeConf = path.join(r.runtimeDir, "odoo.conf");
    const options = parseOdooConfig(await fsp.readFile(runtimeConf, "utf8"));
    expect(options.admin_passwd).toBe(ADMIN_PASSWD);
    expect(options.db_password).toBe(ROLE_PASSWORD);
    // Everything else is the platform's file unchanged.
    const source = parseOdooConfig(await fsp.readFile(confPath, "utf8"));
    expect({ ...options, admin_passwd: "", db_password: "" }).toEqual({
      ...source,
      admin_passwd: "",
      db_password: "",
    });
    expect((await fsp.stat(runtimeConf)).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(r.runtimeDir)).mode & 0o777).toBe(0o700);
    expect(r.stderr()).toContain("no databases listed");
    expect(await calls(r.log)).toEqual([]);
  });

  it("refuses to start when a referenced secret has no value, naming the option and the variables", async () => {
    const r = start(["odoo"], { [ODOO_SECRET_ENV.adminPasswd]: undefined });
    expect((await r.done).code).toBe(78);
    expect(r.stderr()).toContain(
      "odoo.conf: no value for the secret(s): admin_passwd($LOOMWORKS_ADMIN_PASSWD or $LOOMWORKS_ADMIN_PASSWD_FILE)",
    );
    expect(await calls(r.log)).toEqual([]);
  });

  it("refuses a missing odoo.conf", async () => {
    const r = start(["odoo"], {}, path.join(work, "nowhere.conf"));
    expect((await r.done).code).toBe(78);
    expect(r.stderr()).toMatch(/odoo\.conf not found or not readable: .*nowhere\.conf/);
  });
});

describe("entrypoint: waiting for PostgreSQL and Redis", () => {
  it("gives up after LOOMWORKS_DB_WAIT_SECONDS on a port nothing listens on, with a clear message", async () => {
    const port = await freePort();
    const conf = path.join(work, "wrong-port.conf");
    await fsp.writeFile(conf, renderConf(port));
    const began = Date.now();
    const r = start(["odoo"], { LOOMWORKS_DB_WAIT_SECONDS: "2", LOOMWORKS_DATABASES: DB_A }, conf);
    expect((await r.done).code).toBe(69);
    const elapsed = Date.now() - began;
    expect(elapsed).toBeGreaterThanOrEqual(2_000);
    expect(elapsed).toBeLessThan(15_000);
    expect(r.stderr()).toContain(
      `error: PostgreSQL at ${pg.host}:${port} did not accept connections within 2s (last answer:`,
    );
    expect(await calls(r.log)).toEqual([]);
  });

  it("keeps waiting while the server refuses the ERP role's password, naming the role", async () => {
    const r = start(["odoo"], {
      LOOMWORKS_DB_WAIT_SECONDS: "2",
      [ODOO_SECRET_ENV.dbPassword]: `${ROLE_PASSWORD}-not-yet-applied`,
    });
    expect((await r.done).code).toBe(69);
    expect(r.stderr()).toContain(`the server refuses the password of role ${ROLE}`);
    expect(await calls(r.log)).toEqual([]);
  });

  it("starts once a rotated password is in force on the server (pods rolled before the server applied it)", async () => {
    const rotated = randomBytes(18).toString("base64url");
    const r = start(["odoo"], { [ODOO_SECRET_ENV.dbPassword]: rotated });
    try {
      await new Promise((res) => setTimeout(res, 1_500));
      expect(await calls(r.log)).toEqual([]);
      await withClient(pg.adminDsn, (c) => c.query(`ALTER ROLE ${quoteIdent(ROLE)} PASSWORD '${rotated}'`));
      await serving(r);
      expect(r.stderr()).toContain(`accepts connections as ${ROLE}`);
    } finally {
      await withClient(pg.adminDsn, (c) =>
        c.query(`ALTER ROLE ${quoteIdent(ROLE)} PASSWORD '${ROLE_PASSWORD}'`),
      );
      r.child.kill("SIGTERM");
      await r.done;
    }
  });

  it("waits for Redis when sessions are stored there", async () => {
    const redisPort = await freePort();
    const conf = path.join(work, "redis.conf");
    await fsp.writeFile(conf, renderConf(pg.port, { redisUrl: `redis://127.0.0.1:${redisPort}/0` }));
    const r = start(["odoo"], { LOOMWORKS_DB_WAIT_SECONDS: "1" }, conf);
    expect((await r.done).code).toBe(69);
    expect(r.stderr()).toContain(`PostgreSQL at ${pg.host}:${pg.port} accepts connections`);
    expect(r.stderr()).toContain(
      `error: Redis at 127.0.0.1:${redisPort} (session_redis_url) did not accept connections within 1s`,
    );
    expect(await calls(r.log)).toEqual([]);
  });
});

describe("entrypoint: module updates, server start and SIGTERM", () => {
  const listed = `${DB_A},${DB_B} ${DB_PLAIN}\n${DB_MISSING}`;

  it("updates every listed Odoo database whose marker differs, then execs the server; SIGTERM ends it with the server's code", async () => {
    await setMarker(DB_A, null);
    await setMarker(DB_B, "18.0-lw0");
    const r = start(["odoo", "--log-level=warn"], {
      LOOMWORKS_DATABASES: listed,
      STANDIN_ODOO_EXIT_CODE: "3",
    });
    const pid = await serving(r);
    // exec: the process the test started is now the server itself, so signals reach it directly.
    expect(pid).toBe(r.child.pid);
    const conf = path.join(r.runtimeDir, "odoo.conf");
    expect(argvOf(await calls(r.log))).toEqual([
      ["-c", conf, "-d", DB_A, "-u", "all", "--stop-after-init", "--no-http"],
      ["-c", conf, "-d", DB_B, "-u", "all", "--stop-after-init", "--no-http"],
      ["-c", conf, "--log-level=warn"],
    ]);
    expect(await marker(DB_A)).toBe("18.0-lw1");
    expect(await marker(DB_B)).toBe("18.0-lw1");
    expect(r.stderr()).toContain(`${DB_A}: image version (none) -> 18.0-lw1: updating all modules`);
    expect(r.stderr()).toContain(`${DB_B}: image version 18.0-lw0 -> 18.0-lw1: updating all modules`);
    expect(r.stderr()).toContain(`${DB_PLAIN}: not an Odoo database (no ir_config_parameter): skipped`);
    expect(r.stderr()).toContain(`${DB_MISSING}: database does not exist: skipped`);

    r.child.kill("SIGTERM");
    expect(await r.done).toEqual({ code: 3, signal: null });
    const lines = await calls(r.log);
    expect(lines.slice(-2)).toEqual([
      ["TERM", String(pid)],
      ["EXIT", String(pid), "3"],
    ]);
  });

  it("skips databases already at this image version; LOOMWORKS_UPDATE_MODULES updates the named modules", async () => {
    const quiet = start(["odoo"], { LOOMWORKS_DATABASES: `${DB_A} ${DB_B}` });
    await serving(quiet);
    expect(argvOf(await calls(quiet.log))).toEqual([["-c", path.join(quiet.runtimeDir, "odoo.conf")]]);
    expect(quiet.stderr()).toContain(`${DB_A}: up to date (image 18.0-lw1)`);
    quiet.child.kill("SIGTERM");
    expect((await quiet.done).code).toBe(0);

    const r = start(["update"], { LOOMWORKS_DATABASES: DB_A, LOOMWORKS_UPDATE_MODULES: "loomworks_ai,web" });
    expect((await r.done).code).toBe(0);
    const conf = path.join(r.runtimeDir, "odoo.conf");
    expect(argvOf(await calls(r.log))).toEqual([
      ["-c", conf, "-d", DB_A, "-u", "loomworks_ai,web", "--stop-after-init", "--no-http"],
    ]);
    expect(await marker(DB_A)).toBe("18.0-lw1");
  });

  it("a new image version (here from the file the build writes) updates all modules again", async () => {
    const versionFile = path.join(work, "image-version");
    await fsp.writeFile(versionFile, "18.0-lw2\n");
    const r = start(["update"], {
      LOOMWORKS_DATABASES: DB_A,
      LOOMWORKS_IMAGE_VERSION: undefined,
      LOOMWORKS_IMAGE_VERSION_FILE: versionFile,
    });
    expect((await r.done).code).toBe(0);
    expect(argvOf(await calls(r.log))).toEqual([
      ["-c", path.join(r.runtimeDir, "odoo.conf"), "-d", DB_A, "-u", "all", "--stop-after-init", "--no-http"],
    ]);
    expect(await marker(DB_A)).toBe("18.0-lw2");
  });

  it("a failed update fails the start (exit 70) and keeps the old marker; with LOOMWORKS_UPDATE_STRICT=0 the server starts", async () => {
    await setMarker(DB_A, "old");
    await setMarker(DB_B, "old");
    const r = start(["odoo"], { LOOMWORKS_DATABASES: `${DB_A} ${DB_B}`, STANDIN_ODOO_FAIL_DB: DB_A });
    expect((await r.done).code).toBe(70);
    expect(r.stderr()).toContain(`${DB_A}: module update failed (odoo exited with status 1)`);
    expect(r.stderr()).toContain(`error: module update failed for: ${DB_A}`);
    expect(argvOf(await calls(r.log)).map((a) => a[3])).toEqual([DB_A, DB_B]);
    expect(await marker(DB_A)).toBe("old");
    expect(await marker(DB_B)).toBe("18.0-lw1");

    const lenient = start(["odoo"], {
      LOOMWORKS_DATABASES: DB_A,
      STANDIN_ODOO_FAIL_DB: DB_A,
      LOOMWORKS_UPDATE_STRICT: "0",
    });
    await serving(lenient);
    expect(lenient.stderr()).toContain("LOOMWORKS_UPDATE_STRICT=0: starting anyway");
    lenient.child.kill("SIGTERM");
    expect((await lenient.done).code).toBe(0);
  });

  it("forwards SIGTERM to a running update, waits for it and exits with its code; the server never starts", async () => {
    await setMarker(DB_A, "old");
    const r = start(["odoo"], {
      LOOMWORKS_DATABASES: DB_A,
      STANDIN_ODOO_UPDATE_SECONDS: "60",
      STANDIN_ODOO_EXIT_CODE: "7",
    });
    const updatePid = await until("the update call", async () => {
      const call = (await calls(r.log)).find((l) => l[0] === "CALL");
      return call ? Number(call[1]) : undefined;
    });
    expect(updatePid).not.toBe(r.child.pid);
    const began = Date.now();
    r.child.kill("SIGTERM");
    expect(await r.done).toEqual({ code: 7, signal: null });
    expect(Date.now() - began).toBeLessThan(10_000);
    const lines = await calls(r.log);
    expect(lines.filter((l) => l[0] !== "CALL")).toEqual([
      ["TERM", String(updatePid)],
      ["EXIT", String(updatePid), "7"],
    ]);
    expect(argvOf(lines)).toHaveLength(1);
    expect(r.stderr()).toContain("received SIGTERM: forwarding SIGTERM to pid");
    expect(await marker(DB_A)).toBe("old");
  });

  it("updates a database once when two replicas start together (advisory lock)", async () => {
    await setMarker(DB_B, "old");
    const env = { LOOMWORKS_DATABASES: DB_B, STANDIN_ODOO_UPDATE_SECONDS: "2" };
    const first = start(["update"], env);
    const second = start(["update"], env);
    const [a, b] = await Promise.all([first.done, second.done]);
    expect([a.code, b.code]).toEqual([0, 0]);
    const updates = [...argvOf(await calls(first.log)), ...argvOf(await calls(second.log))];
    expect(updates).toHaveLength(1);
    expect(updates[0]).toContain(DB_B);
    expect(first.stderr() + second.stderr()).toContain(`${DB_B}: updated meanwhile by another replica`);
    expect(await marker(DB_B)).toBe("18.0-lw1");
  });

  it("skips a database that refuses connections (a suspended tenant) without failing the start", async () => {
    await setMarker(DB_B, "old");
    await withClient(pg.adminDsn, (c) =>
      c.query(`ALTER DATABASE ${quoteIdent(DB_B)} ALLOW_CONNECTIONS false`),
    );
    try {
      const r = start(["update"], { LOOMWORKS_DATABASES: DB_B });
      expect((await r.done).code).toBe(0);
      expect(r.stderr()).toContain(`${DB_B}: does not accept connections (a suspended tenant): skipped`);
      expect(await calls(r.log)).toEqual([]);
    } finally {
      await withClient(pg.adminDsn, (c) =>
        c.query(`ALTER DATABASE ${quoteIdent(DB_B)} ALLOW_CONNECTIONS true`),
      );
    }
    expect(await marker(DB_B)).toBe("old");
  });

  it("runs an odoo subcommand with the config and without updates; other commands run as they are", async () => {
    await setMarker(DB_A, "old");
    const r = start(["odoo", "shell", "-d", DB_A], { LOOMWORKS_DATABASES: DB_A });
    await serving(r);
    expect(argvOf(await calls(r.log))).toEqual([
      ["shell", "-c", path.join(r.runtimeDir, "odoo.conf"), "-d", DB_A],
    ]);
    r.child.kill("SIGTERM");
    await r.done;
    expect(await marker(DB_A)).toBe("old");

    const other = start(["sh", "-c", "exit 42"]);
    expect((await other.done).code).toBe(42);
  });
});

describe("entrypoint: a tenant database is read and updated as the tenant's own role", () => {
  const TENANT = `lw_ep_tenant_${run}`;
  const tenant: ErpTenant = {
    subdomain: TENANT,
    database: TENANT,
    roleName: TENANT,
    password: randomBytes(18).toString("base64url"),
    state: "active",
  };
  let tenantConf: string;
  let files: { map: string; credentials: string };

  beforeAll(async () => {
    const dir = path.join(work, "tenants");
    await fsp.mkdir(dir);
    files = tenantFilePaths(dir);
    await fsp.writeFile(files.map, renderTenantMap([tenant]));
    await fsp.writeFile(files.credentials, renderTenantCredentials([tenant]), { mode: 0o600 });
    tenantConf = path.join(work, "tenant-files.conf");
    await fsp.writeFile(tenantConf, renderConf(pg.port, { tenantFiles: files }));
    await withClient(pg.adminDsn, async (c) => {
      await c.query(`CREATE ROLE ${quoteIdent(TENANT)} LOGIN PASSWORD '${tenant.password}'`);
      await c.query(`CREATE DATABASE ${quoteIdent(TENANT)} OWNER ${quoteIdent(TENANT)}`);
      // As provisioning does: only the tenant's role may connect; the ERP's role reaches no tenant.
      await c.query(`REVOKE ALL ON DATABASE ${quoteIdent(TENANT)} FROM PUBLIC`);
    });
    await withClient(dsnWithDatabase(pg.adminDsn, TENANT), async (c) => {
      await c.query(`SET ROLE ${quoteIdent(TENANT)}`);
      await c.query(`CREATE TABLE ir_config_parameter (
        id serial PRIMARY KEY, key varchar NOT NULL UNIQUE, value text NOT NULL,
        write_date timestamp DEFAULT (now() AT TIME ZONE 'UTC'))`);
    });
  });

  afterAll(async () => {
    await withClient(pg.adminDsn, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(TENANT)} WITH (FORCE)`);
      await c.query(`DROP ROLE IF EXISTS ${quoteIdent(TENANT)}`);
    });
  });

  it("the ERP's own role cannot open it (the premise)", async () => {
    const asErp = `postgres://${ROLE}:${ROLE_PASSWORD}@${pg.host}:${pg.port}/${TENANT}`;
    await expect(withClient(asErp, (c) => c.query("SELECT 1"))).rejects.toMatchObject({ code: "42501" });
  });

  it("updates it with the credentials odoo.conf names, and gives odoo -u the same odoo.conf (the addon loads)", async () => {
    await setMarker(TENANT, null);
    const r = start(["update"], { LOOMWORKS_DATABASES: TENANT }, tenantConf);
    expect(await r.done).toEqual({ code: 0, signal: null });
    const conf = path.join(r.runtimeDir, "odoo.conf");
    expect(argvOf(await calls(r.log))).toEqual([
      ["-c", conf, "-d", TENANT, "-u", "all", "--stop-after-init", "--no-http"],
    ]);
    const options = parseOdooConfig(await fsp.readFile(conf, "utf8"));
    expect(options.loomworks_tenant_credentials).toBe(files.credentials);
    expect(options.server_wide_modules.split(",")).toContain("loomworks_tenants");
    expect(await marker(TENANT)).toBe("18.0-lw1");
    expect(r.stderr()).not.toContain(tenant.password);
  });

  it("without the tenant credentials the update cannot read the database and fails the start", async () => {
    await setMarker(TENANT, null);
    const r = start(["update"], { LOOMWORKS_DATABASES: TENANT });
    expect((await r.done).code).toBe(70);
    expect(r.stderr()).toContain(`${TENANT}: cannot read the update marker`);
    expect(r.stderr()).toContain("permission denied for database");
    expect(await marker(TENANT)).toBeNull();
  });

  it("LOOMWORKS_TENANT_CREDENTIALS overrides odoo.conf, as for the addon; an unreadable file is a configuration error", async () => {
    await setMarker(TENANT, null);
    const viaEnv = start(["update"], {
      LOOMWORKS_DATABASES: TENANT,
      LOOMWORKS_TENANT_CREDENTIALS: files.credentials,
    });
    expect((await viaEnv.done).code).toBe(0);
    expect(await marker(TENANT)).toBe("18.0-lw1");

    const missing = path.join(work, "no-such-credentials.json");
    const r = start(
      ["update"],
      { LOOMWORKS_DATABASES: TENANT, LOOMWORKS_TENANT_CREDENTIALS: missing },
      tenantConf,
    );
    expect((await r.done).code).toBe(78);
    expect(r.stderr()).toContain(`tenant credentials not found or not readable: ${missing}`);
    expect(await calls(r.log)).toEqual([]);
  });

  it("skips a suspended tenant (its role may not log in) without failing the start", async () => {
    await setMarker(TENANT, "old");
    await withClient(pg.adminDsn, (c) => c.query(`ALTER ROLE ${quoteIdent(TENANT)} NOLOGIN`));
    try {
      const r = start(["update"], { LOOMWORKS_DATABASES: TENANT }, tenantConf);
      expect((await r.done).code).toBe(0);
      expect(r.stderr()).toContain(`${TENANT}: does not accept connections (a suspended tenant): skipped`);
      expect(await calls(r.log)).toEqual([]);
    } finally {
      await withClient(pg.adminDsn, (c) => c.query(`ALTER ROLE ${quoteIdent(TENANT)} LOGIN`));
    }
    expect(await marker(TENANT)).toBe("old");
  });
});
