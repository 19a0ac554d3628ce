/**
 * Sequences of a tenant copied from a template survive a crash of the cluster (issue 11, item 5),
 * on a throw-away cluster of its own: the postmaster is SIGKILLed.
 *
 * A template's sequences hold values reserved by a WAL record of the template's history
 * (`log_cnt` > 0). A plain `CREATE DATABASE ... TEMPLATE` copy hands them out without writing
 * WAL, so crash recovery rewinds the copy's sequences below ids already in its tables: the
 * control database below shows PostgreSQL doing so. A tenant made by createTenant (its
 * `sequences` step), and an older tenant repaired once by updateTenant, come back intact.
 */
import { existsSync, promises as fs } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import {
  destroyCluster,
  localAdminDsn,
  localClusterLayout,
  startCluster,
  type LocalClusterSpec,
} from "../../lib/pg/cluster";
import { ensureCluster } from "../../lib/pg/ensureCluster";
import { createTenant, tenantDsn, updateTenant, type TenantSpec } from "../../lib/tenant/provision";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { ensureTemplate } from "../../lib/tenant/template";
import { throwawayClusterSpec } from "../../testkit/cluster";
import {
  RESERVED_SEQUENCES_SQL,
  createLegacyTenant,
  erpWrites,
  sequenceStates,
  sequenceSteps,
  type SequenceState,
} from "./sequence-fixtures";
import { randomTenantSpec } from "../helpers/tenants";

const TEMPLATE = "loomworks_template_seqcrash";
const CONTROL = "seqcrash_plain_copy";

let spec: LocalClusterSpec;
let dsn: string;
let fresh: TenantSpec;
let legacy: TenantSpec;
/** Sequence states just before the crash, per database. */
const before = new Map<string, Map<string, SequenceState>>();
/** No checkpoint between the copies (fresh tenant, control) and the crash: PostgreSQL would heal them. */
let noCheckpointSinceCopies = false;

const inDb = <T>(db: string, fn: (c: Client) => Promise<T>): Promise<T> =>
  withClient(dsnWithDatabase(dsn, db), fn);
const asTenant = <T>(t: TenantSpec, fn: (c: Client) => Promise<T>): Promise<T> =>
  withClient(tenantDsn("127.0.0.1", spec.port, t.roleName, t.rolePassword, t.database), fn);
const redoLsn = (): Promise<string> =>
  inDb(
    "postgres",
    async (c) =>
      (await c.query<{ l: string }>("SELECT redo_lsn::text AS l FROM pg_control_checkpoint()")).rows[0].l,
  );

beforeAll(async () => {
  spec = await throwawayClusterSpec("seqcrash", "seqcrash", { archiveTimeoutSeconds: 60 });
  dsn = localAdminDsn(spec);
  await ensureCluster(spec);
  const dump = path.join(spec.stateDir, "reserved-sequences.sql");
  await fs.writeFile(dump, RESERVED_SEQUENCES_SQL);
  await ensureTemplate(dsn, { name: "default", database: TEMPLATE, fromDump: dump, stateDir: spec.stateDir });
  const filestoreRoot = path.join(spec.stateDir, "filestore");
  fresh = randomTenantSpec("sc", TEMPLATE, filestoreRoot);
  legacy = randomTenantSpec("sl", TEMPLATE, filestoreRoot);

  // The legacy tenant first: replacing its database (DROP DATABASE) runs a checkpoint, after which
  // PostgreSQL would WAL-log the next nextval of every sequence copied before it.
  await createLegacyTenant(dsn, legacy);
  await updateTenant(dsn, legacy, legacy); // the one-time repair of a tenant made before the fix
  const redoBefore = await redoLsn();
  await createTenant(dsn, fresh);
  await inDb("postgres", (c) =>
    c.query(`CREATE DATABASE ${quoteIdent(CONTROL)} TEMPLATE ${quoteIdent(TEMPLATE)} STRATEGY WAL_LOG`),
  );

  // The ERP writes: values from the copied reserve, if nothing re-logged the sequences.
  await asTenant(fresh, (c) => erpWrites(c));
  await asTenant(legacy, (c) => erpWrites(c));
  await inDb(CONTROL, (c) => erpWrites(c));
  for (const db of [fresh.database, legacy.database, CONTROL]) before.set(db, await inDb(db, sequenceStates));
  noCheckpointSinceCopies = (await redoLsn()) === redoBefore;

  // The crash: the postmaster SIGKILLed, then started again (crash recovery from the last checkpoint).
  const { paths } = localClusterLayout(spec);
  const pid = Number((await fs.readFile(path.join(paths.dataDir, "postmaster.pid"), "utf8")).split("\n")[0]);
  process.kill(pid, "SIGKILL");
  while (existsSync(`/proc/${pid}`)) await new Promise((r) => setTimeout(r, 50));
  await startCluster(spec);
}, 300_000);

afterAll(async () => {
  if (!spec) return;
  await destroyCluster(spec).catch(() => undefined);
  await fs.rm(spec.stateDir, { recursive: true, force: true });
}, 120_000);

/** Every sequence at or past its value before the crash and its column's maximum. */
function expectIntact(now: Map<string, SequenceState>, was: Map<string, SequenceState>): void {
  expect([...now.keys()]).toEqual([...was.keys()]);
  for (const [name, s] of now) {
    const prior = was.get(name) as SequenceState;
    expect({ name, ok: s.last >= prior.last }).toEqual({ name, ok: true });
    if (s.columnMax !== undefined && s.columnMax !== null) {
      expect({ name, ok: s.last >= s.columnMax }).toEqual({ name, ok: true });
    }
  }
}

describe("a tenant's sequences after kill -9 of the postmaster (own cluster)", () => {
  it("PostgreSQL rewinds a plain template copy: its sequences fall behind its tables", async (ctx) => {
    if (!noCheckpointSinceCopies) {
      ctx.skip(); // a checkpoint ran between the copy and the crash: nothing left to show
      return;
    }
    const was = before.get(CONTROL) as Map<string, SequenceState>;
    const now = await inDb(CONTROL, sequenceStates);
    const attachments = now.get("public.ir_attachment_id_seq") as SequenceState;
    expect(was.get("public.ir_attachment_id_seq")?.last).toBe(22n);
    expect(attachments.last).toBe(19n);
    expect(attachments.columnMax).toBe(22n);
    await expect(
      inDb(CONTROL, (c) => c.query("INSERT INTO ir_attachment (name) VALUES ('next')")),
    ).rejects.toThrow(/duplicate key value violates unique constraint "ir_attachment_pkey"/);
  });

  it("a tenant made by createTenant: every sequence at or past its value before the crash; the next inserts succeed", async () => {
    expect(noCheckpointSinceCopies).toBe(true); // else this would pass without the sequences step
    expectIntact(
      await inDb(fresh.database, sequenceStates),
      before.get(fresh.database) as Map<string, SequenceState>,
    );
    await asTenant(fresh, (c) => erpWrites(c, 1));
  });

  it("a tenant made before the fix, repaired once by updateTenant: the same", async () => {
    expectIntact(
      await inDb(legacy.database, sequenceStates),
      before.get(legacy.database) as Map<string, SequenceState>,
    );
    await asTenant(legacy, (c) => erpWrites(c, 1));
    expect(await sequenceSteps(dsn, legacy.subdomain)).toEqual(["update:sequences"]);
    await updateTenant(dsn, legacy, { ...legacy, tier: "pro" });
    expect(await sequenceSteps(dsn, legacy.subdomain)).toEqual(["update:sequences"]);
    expect(await sequenceSteps(dsn, fresh.subdomain)).toEqual(["sequences"]);
  });
});
