/**
 * Credential rotation on a local stack through the Automation API ("credential rotation on the
 * local stack drops no connection"): two tenants; sessions opened before the rotation with the
 * admin DSN, a tenant DSN and the ERP role's odoo.conf credentials run a query loop throughout the
 * rotating `up` and must never fail; the preview shows only in-place updates besides the password
 * replacements; afterwards the outputs carry new passwords that connect, the old ones are refused,
 * the server was not restarted and the scheduler's peer connection is unaffected. Then a tenant
 * trigger rotates that tenant's role password only. Tenants are copies of the Odoo-shaped FIXTURE
 * template (test/fixtures/odoo-shaped; not Odoo).
 */
import * as fs from "node:fs";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clearStaleLocks } from "../../lib/pulumi/staleLocks";
import { operatorAdminDsn } from "../../lib/ops/connect";
import { LocalTestStack } from "../../testkit/local-stack";

interface Outputs {
  adminDsn: string;
  acme: string;
  globex: string;
  /** The ERP role's connection (to `postgres`: it reaches no tenant), from the rendered odoo.conf. */
  erp: string;
}

const tenants = {
  acme: { tier: "pro", adminEmail: "boss@acme.example" },
  globex: { tier: "basic", adminEmail: "it@globex.example" },
};

/** The passwords the platform trigger rotates (RandomSecret replacements). */
const PLATFORM_ROTATED = [
  "postgres-superuser-password",
  "erp-role-password",
  "acme-role-password",
  "globex-role-password",
];

function odooConfValue(conf: string, key: string): string {
  const m = new RegExp(`^${key}\\s*=\\s*(.*)$`, "m").exec(conf);
  if (!m) throw new Error(`odoo.conf has no ${key}`);
  return m[1].trim();
}

async function currentOutputs(s: LocalTestStack): Promise<Outputs> {
  const outs = await s.outputs();
  const t = outs.tenants as Record<string, { dsn: string }>;
  const conf = fs.readFileSync((outs.router as { odooConfig: string }).odooConfig, "utf8");
  const erp = new URL("postgres://x@h/postgres"); // the ERP role reaches no tenant database
  erp.username = encodeURIComponent(odooConfValue(conf, "db_user"));
  erp.password = encodeURIComponent(odooConfValue(conf, "db_password"));
  erp.hostname = odooConfValue(conf, "db_host");
  erp.port = odooConfValue(conf, "db_port");
  return {
    adminDsn: (outs.postgres as { adminDsn: string }).adminDsn,
    acme: t.acme.dsn,
    globex: t.globex.dsn,
    erp: erp.toString(),
  };
}

/** "ok" or the SQLSTATE of a fresh connection (28P01: password authentication failed). */
async function connectCode(dsn: string): Promise<string> {
  const c = new Client({ connectionString: dsn });
  c.on("error", () => undefined);
  try {
    await c.connect();
    await c.query("SELECT 1");
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code ?? (e as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** A long-lived session running `SELECT 1` every 50 ms, counting successes and failures. */
class QueryLoop {
  ok = 0;
  readonly failures: string[] = [];
  private running = true;
  private done?: Promise<void>;

  private constructor(
    readonly name: string,
    readonly client: Client,
  ) {}

  static async start(name: string, dsn: string): Promise<QueryLoop> {
    const client = new Client({ connectionString: dsn });
    const loop = new QueryLoop(name, client);
    client.on("error", (e) => loop.failures.push(`${name}: session error ${e.message}`));
    await client.connect();
    loop.done = loop.run();
    return loop;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.client.query("SELECT 1");
        this.ok++;
      } catch (e) {
        this.failures.push(`${this.name}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** Resource name (last URN segment) → the step ops the engine reported for it. */
function collectOps(ops: Map<string, Set<string>>): (e: EngineEvent) => void {
  return (e) => {
    const meta = e.resourcePreEvent?.metadata;
    // The engine's provider resources are not the program's.
    if (!meta || meta.type.startsWith("pulumi:providers:")) return;
    const name = meta.urn.split("::").pop() ?? meta.urn;
    if (!ops.has(name)) ops.set(name, new Set());
    ops.get(name)?.add(meta.op);
  };
}

/** Names of the resources with any step other than same/update (replace, create, delete, ...). */
function notInPlace(ops: Map<string, Set<string>>): string[] {
  return [...ops]
    .filter(([, set]) => [...set].some((op) => op !== "same" && op !== "update"))
    .map(([name]) => name)
    .sort();
}

function updated(ops: Map<string, Set<string>>): string[] {
  return [...ops]
    .filter(([, set]) => set.has("update"))
    .map(([name]) => name)
    .sort();
}

async function postmasterStart(dsn: string): Promise<string> {
  const c = new Client({ connectionString: dsn });
  await c.connect();
  try {
    return (await c.query<{ t: string }>("SELECT pg_postmaster_start_time()::text AS t")).rows[0].t;
  } finally {
    await c.end();
  }
}

describe("credential rotation on a local stack", () => {
  let s: LocalTestStack;
  let before: Outputs;
  let afterPlatform: Outputs;
  const loops: QueryLoop[] = [];

  beforeAll(async () => {
    s = await LocalTestStack.create("rotation");
    await s.configure(tenants);
    expect((await s.up()).summary.result).toBe("succeeded");
    before = await currentOutputs(s);
  });

  afterAll(async () => {
    for (const loop of loops) {
      await loop.stop().catch(() => undefined);
      await loop.client.end().catch(() => undefined);
    }
    await s?.dispose();
  });

  it("a platform rotation changes all three passwords in place and drops no session", async () => {
    for (const dsn of Object.values(before)) expect(await connectCode(dsn)).toBe("ok");
    const startedAt = await postmasterStart(before.adminDsn);
    loops.push(
      await QueryLoop.start("admin", before.adminDsn),
      await QueryLoop.start("tenant acme", before.acme),
      await QueryLoop.start("erp role", before.erp),
    );

    await s.configure(tenants, { credentialRotation: "2026-11-26" });
    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    const previewOps = new Map<string, Set<string>>();
    await s.stack.preview({ color: "never", onEvent: collectOps(previewOps) });
    expect(notInPlace(previewOps)).toEqual([...PLATFORM_ROTATED].sort());
    expect(updated(previewOps)).toEqual(
      expect.arrayContaining([
        "postgres-server",
        "erp-role",
        "erp-odoo-config",
        "erp-tenants",
        "acme",
        "globex",
      ]),
    );

    const upOps = new Map<string, Set<string>>();
    const okBeforeUp = loops.map((loop) => loop.ok);
    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    const result = await s.stack.up({ color: "never", onEvent: collectOps(upOps) });
    const okDuringUp = loops.map((loop, i) => loop.ok - okBeforeUp[i]);
    expect(result.summary.result).toBe("succeeded");
    expect(notInPlace(upOps)).toEqual([...PLATFORM_ROTATED].sort());
    for (const name of PLATFORM_ROTATED) {
      // Create-before-delete: the new secret exists before anything uses it.
      expect([...(upOps.get(name) ?? [])]).toEqual(
        expect.arrayContaining(["create-replacement", "replace", "delete-replaced"]),
      );
    }

    for (const loop of loops) await loop.stop();
    for (const [i, loop] of loops.entries()) {
      expect(loop.failures, loop.name).toEqual([]);
      expect(okDuringUp[i], `${loop.name} kept querying during the up`).toBeGreaterThan(10);
      expect((await loop.client.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    }

    afterPlatform = await currentOutputs(s);
    for (const key of ["adminDsn", "acme", "globex", "erp"] as const) {
      expect(afterPlatform[key], key).not.toBe(before[key]);
      expect(await connectCode(afterPlatform[key]), `${key} new`).toBe("ok");
      expect(await connectCode(before[key]), `${key} old`).toBe("28P01");
    }
    expect(await postmasterStart(afterPlatform.adminDsn)).toBe(startedAt);
    // The scheduler's jobs connect over the unix socket by peer authentication: unaffected.
    expect(await connectCode(await operatorAdminDsn(s.stateDir))).toBe("ok");

    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    const again = await s.stack.preview({ color: "never" });
    expect(Object.keys(again.changeSummary)).toEqual(["same"]);
  });

  it("a tenant rotation changes only that tenant's role password", async () => {
    await s.configure(
      { ...tenants, globex: { ...tenants.globex, credentialRotation: "globex-1" } },
      { credentialRotation: "2026-11-26" },
    );
    const upOps = new Map<string, Set<string>>();
    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    const result = await s.stack.up({ color: "never", onEvent: collectOps(upOps) });
    expect(result.summary.result).toBe("succeeded");
    expect(notInPlace(upOps)).toEqual(["globex-role-password"]);
    // The tenant's database role, and the ERP's copy of its credentials (no ERP restart).
    expect(updated(upOps)).toEqual(["erp-tenants", "globex"]);

    const after = await currentOutputs(s);
    expect(after).toEqual({ ...afterPlatform, globex: after.globex });
    expect(after.globex).not.toBe(afterPlatform.globex);
    expect(await connectCode(after.globex)).toBe("ok");
    expect(await connectCode(afterPlatform.globex)).toBe("28P01");
    expect(await connectCode(after.acme)).toBe("ok");
  });

  it("a rotation killed half-way (superuser done, a tenant role not yet) converges on the next up", async () => {
    const previous = await currentOutputs(s);
    await s.configure(
      { ...tenants, globex: { ...tenants.globex, credentialRotation: "globex-1" } },
      { credentialRotation: "2026-12-01" },
    );
    const killed = await s.cli(["up", "--yes", "--skip-preview"], {
      LOOMWORKS_CRASH_AT: "tenant:update:role",
    });
    expect(killed.signal, killed.output).toBe("SIGKILL");
    // Killed between the owners' updates: the superuser and the ERP role rotated, no tenant role yet.
    expect(await connectCode(previous.adminDsn)).toBe("28P01");
    expect(await connectCode(previous.erp)).toBe("28P01");
    expect(await connectCode(previous.acme)).toBe("ok");
    expect(await connectCode(previous.globex)).toBe("ok");

    expect((await s.up()).summary.result).toBe("succeeded");
    const after = await currentOutputs(s);
    for (const key of ["adminDsn", "acme", "globex", "erp"] as const) {
      expect(after[key], key).not.toBe(previous[key]);
      expect(await connectCode(after[key]), `${key} new`).toBe("ok");
      expect(await connectCode(previous[key]), `${key} old`).toBe("28P01");
    }
    clearStaleLocks(s.env.PULUMI_BACKEND_URL);
    const again = await s.stack.preview({ color: "never" });
    expect(Object.keys(again.changeSummary)).toEqual(["same"]);
  });
});
