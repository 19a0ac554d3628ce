/**
 * Sequences after a point-in-time restore of a tenant (issue 11, item 5), with both scratch
 * methods, against the shared integration cluster.
 *
 * Both tenants are copied from a template whose sequences hold pre-logged values, and the ERP
 * writes (advancing every sequence) just before the restore target. A tenant made by createTenant
 * has its sequences re-logged in its own WAL, so the scratch instance recovers them as they were.
 * A tenant made before that (no `sequences` step) recovers its sequences at the template's
 * values, below the ids in its tables: the restore raises every owned sequence to its column's
 * maximum. A sequence of no column cannot be raised (nothing records how far it went): see
 * docs/operations/backup-and-restore.md.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Client } from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import { restoreTenant, type RestoreResult } from "../../lib/restore";
import type { ScratchMethod } from "../../lib/restore/scratch";
import { createTenant, deleteTenant, tenantDsn, type TenantSpec } from "../../lib/tenant/provision";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { dropTemplate, ensureTemplate } from "../../lib/tenant/template";
import {
  RESERVED_SEQUENCES_SQL,
  createLegacyTenant,
  erpWrites,
  sequenceStates,
  type SequenceState,
} from "./sequence-fixtures";
import { randomTenantSpec, restoreOptionsFor } from "../helpers/tenants";

const pg = inject("pg");
const ADMIN = pg.adminDsn;
const run = randomBytes(3).toString("hex");
const TEMPLATE = `loomworks_template_rseq_${run}`;
const filestoreRoot = clusterPaths(pg.stateDir).filestoreDir;

let workDir: string;
let fresh: TenantSpec;
let legacy: TenantSpec;
let targetLsn: string;
/** No checkpoint between the legacy tenant's copy and the target: else PostgreSQL logs its sequences' next use. */
let legacyExposed = false;
const atTarget = new Map<string, Map<string, SequenceState>>();

const inDb = <T>(db: string, fn: (c: Client) => Promise<T>): Promise<T> =>
  withClient(dsnWithDatabase(ADMIN, db), fn);
const asTenant = <T>(t: TenantSpec, fn: (c: Client) => Promise<T>): Promise<T> =>
  withClient(tenantDsn(pg.host, pg.port, t.roleName, t.rolePassword, t.database), fn);

const redoLsn = (): Promise<string> =>
  inDb(
    "postgres",
    async (c) =>
      (await c.query<{ l: string }>("SELECT redo_lsn::text AS l FROM pg_control_checkpoint()")).rows[0].l,
  );

async function restoreWith(method: ScratchMethod, t: TenantSpec): Promise<RestoreResult> {
  const before = process.env.LOOMWORKS_RESTORE_METHOD;
  process.env.LOOMWORKS_RESTORE_METHOD = method;
  try {
    return await restoreTenant(restoreOptionsFor(pg, t, { lsn: targetLsn }));
  } finally {
    if (before === undefined) delete process.env.LOOMWORKS_RESTORE_METHOD;
    else process.env.LOOMWORKS_RESTORE_METHOD = before;
  }
}

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-restore-seq-it-"));
  const dump = path.join(workDir, "reserved-sequences.sql");
  await fs.writeFile(dump, RESERVED_SEQUENCES_SQL);
  await ensureTemplate(ADMIN, { name: "default", database: TEMPLATE, fromDump: dump, stateDir: workDir });
  legacy = randomTenantSpec("ql", TEMPLATE, filestoreRoot);
  fresh = randomTenantSpec("qf", TEMPLATE, filestoreRoot);
  await createLegacyTenant(ADMIN, legacy);
  const redoBefore = await redoLsn();
  await createTenant(ADMIN, fresh);

  // Just before the target: the ERP writes, every sequence advances.
  for (const t of [fresh, legacy]) await asTenant(t, (c) => erpWrites(c));
  for (const t of [fresh, legacy]) atTarget.set(t.database, await inDb(t.database, sequenceStates));
  targetLsn = await inDb(
    "postgres",
    async (c) => (await c.query<{ l: string }>("SELECT pg_current_wal_lsn()::text AS l")).rows[0].l,
  );
  legacyExposed = (await redoLsn()) === redoBefore;
  // After it: writes the restore must not bring back.
  for (const t of [fresh, legacy]) await asTenant(t, (c) => erpWrites(c, 2));
}, 180_000);

afterAll(async () => {
  for (const t of [fresh, legacy]) {
    if (t) await deleteTenant(ADMIN, { ...t, forceDestroy: true }).catch(() => undefined);
  }
  await dropTemplate(ADMIN, TEMPLATE).catch(() => undefined);
  await fs.rm(workDir, { recursive: true, force: true });
}, 180_000);

/** Each sequence at or past its value at the target (`owned`: only those of a column) and its column's maximum. */
function expectNotBehind(t: TenantSpec, now: Map<string, SequenceState>, which: "all" | "owned"): void {
  const was = atTarget.get(t.database) as Map<string, SequenceState>;
  expect([...now.keys()]).toEqual([...was.keys()]);
  for (const [name, s] of now) {
    const target = was.get(name) as SequenceState;
    // The tables are as at the target.
    expect({ name, columnMax: s.columnMax }).toEqual({ name, columnMax: target.columnMax });
    if (s.columnMax !== undefined && s.columnMax !== null) {
      expect({ name, pastColumn: s.last >= s.columnMax }).toEqual({ name, pastColumn: true });
    }
    if (which === "all" || s.column !== undefined) {
      expect({ name, pastTarget: s.last >= target.last }).toEqual({ name, pastTarget: true });
    }
  }
}

describe.each(["selective", "pgbackrest"] as const)(
  "sequences after a restore, %s scratch method",
  (method) => {
    const results = new Map<string, RestoreResult>();

    beforeAll(async () => {
      for (const t of [fresh, legacy]) results.set(t.database, await restoreWith(method, t));
    }, 600_000);

    it("restores both tenants with that method", () => {
      for (const t of [fresh, legacy]) {
        const r = results.get(t.database) as RestoreResult;
        expect(r.state).toBe("done");
        expect(r.timings.scratchMethod).toBe(method);
      }
    });

    it("a tenant made by createTenant: every sequence at or past its value at the target and its column's maximum", async () => {
      expectNotBehind(fresh, await inDb(fresh.database, sequenceStates), "all");
      expect(results.get(fresh.database)?.timings.sequencesRaised).toBe(0);
      await asTenant(fresh, (c) => erpWrites(c, 1));
    });

    it("a tenant made before the fix: its owned sequences raised to their column's maximum", async () => {
      expectNotBehind(legacy, await inDb(legacy.database, sequenceStates), "owned");
      // Recovered at the template's values (ir_attachment, bus_bus): the restore had to raise them.
      if (legacyExposed) expect(results.get(legacy.database)?.timings.sequencesRaised).toBe(2);
      await asTenant(legacy, (c) => erpWrites(c, 1));
    });
  },
);
