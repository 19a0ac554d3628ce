/**
 * The local target's template builder (lib/tenant/templateBuilder.ts) against the real integration
 * cluster: no tenant can reach a template while it is built, and no builder role keeps a login —
 * not after a build that was killed before it could retire its role, nor after a failed first build
 * whose template is then deleted.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import { dropTemplate, ensureTemplate } from "../../lib/tenant/template";
import { builderRoleName } from "../../lib/tenant/templateBuilder";

const pg = inject("pg");
const ADMIN = pg.adminDsn;
const run = randomBytes(3).toString("hex");
let stateDir: string;

const login = async (role: string): Promise<boolean | undefined> =>
  withClient(ADMIN, (c) =>
    c.query<{ l: boolean }>("SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1", [role]),
  ).then((r) => r.rows[0]?.l);

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-builder-it-"));
});
afterAll(async () => {
  await fs.rm(stateDir, { recursive: true, force: true });
});

describe("the template builder", () => {
  it("builds with PUBLIC kept out of the building database, and retires a builder a killed build left", async () => {
    const database = `loomworks_template_b1_${run}`;
    const role = builderRoleName(database);
    // What a build killed before its retire leaves: the role, still able to log in.
    await withClient(ADMIN, (c) => c.query(`CREATE ROLE ${quoteIdent(role)} LOGIN PASSWORD 'left-over'`));
    const probe =
      `test "$(psql -XAtc "select has_database_privilege('public', current_database(), 'CONNECT')")" = f` +
      ` && psql -X -v ON_ERROR_STOP=1 -c "CREATE TABLE public.built (id int)"`;
    try {
      await ensureTemplate(ADMIN, { name: `b1${run}`, database, fromCommand: probe, stateDir });
      expect(await login(role)).toBe(false);
      const r = await withClient(ADMIN, (c) =>
        c.query<{ p: boolean }>("SELECT has_database_privilege('public', $1, 'CONNECT') AS p", [database]),
      );
      expect(r.rows[0].p).toBe(false);
    } finally {
      await dropTemplate(ADMIN, database);
    }
    expect(await login(role)).toBeUndefined(); // dropped with the template
  });

  it("drops the builder of a template whose first build failed, when the template is deleted", async () => {
    const database = `loomworks_template_b2_${run}`;
    const role = builderRoleName(database);
    await expect(
      ensureTemplate(ADMIN, { name: `b2${run}`, database, fromCommand: "exit 3", stateDir }),
    ).rejects.toThrow(/building .* failed/);
    expect(await login(role)).toBe(false);
    await dropTemplate(ADMIN, database);
    expect(await login(role)).toBeUndefined();
  });
});
