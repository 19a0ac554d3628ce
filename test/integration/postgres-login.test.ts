/**
 * Waiting for a rotated password to be in force (lib/pg/waitForLogin.ts and the PostgresLogin
 * provider), against the real integration cluster: a refused password is retried until the server
 * has it, an unreachable server is retried, anything else fails at once, and no message carries the
 * password.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import { waitForLogin } from "../../lib/pg/waitForLogin";
import { ensureRegistry } from "../../lib/registry/registry";
import { freePort } from "../../testkit/ports";
import { repoRoot } from "../../testkit/repo";

/** The compiled provider (global setup compiles bin/), as the engine loads it. */
const postgresLoginProvider = (
  createRequire(__filename)(path.join(repoRoot, "bin", "dynamic-providers", "postgresLogin.js")) as {
    postgresLoginProvider: Required<pulumi.dynamic.ResourceProvider>;
  }
).postgresLoginProvider;

const pg = inject("pg");
const ROLE = `lw_login_${randomBytes(3).toString("hex")}`;
const FIRST = randomBytes(18).toString("base64url");
/** The role's own database: the registry revokes CONNECT on `postgres` from PUBLIC once it exists. */
const DB = `${ROLE}_db`;

const dsnWith = (password: string, port = pg.port, database = DB) =>
  `postgres://${ROLE}:${password}@${pg.host}:${port}/${database}`;
const setPassword = (password: string) =>
  withClient(pg.adminDsn, (c) => c.query(`ALTER ROLE ${quoteIdent(ROLE)} PASSWORD '${password}'`));

beforeAll(async () => {
  // As in production, the registry exists (it revokes CONNECT on `postgres` from PUBLIC).
  await ensureRegistry(pg.adminDsn);
  await withClient(pg.adminDsn, async (c) => {
    await c.query(`CREATE ROLE ${quoteIdent(ROLE)} LOGIN PASSWORD '${FIRST}'`);
    await c.query(`CREATE DATABASE ${quoteIdent(DB)}`);
    await c.query(`GRANT CONNECT ON DATABASE ${quoteIdent(DB)} TO ${quoteIdent(ROLE)}`);
  });
});

afterAll(async () => {
  await withClient(pg.adminDsn, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(DB)}`);
    await c.query(`DROP ROLE IF EXISTS ${quoteIdent(ROLE)}`);
  });
});

describe("waitForLogin", () => {
  it("logs in at once with the password in force", async () => {
    expect(await waitForLogin(dsnWith(FIRST), { timeoutMs: 5_000 })).toBe(1);
  });

  it("retries a refused password until the server applies it", async () => {
    const rotated = randomBytes(18).toString("base64url");
    const reasons: string[] = [];
    const waiting = waitForLogin(dsnWith(rotated), {
      timeoutMs: 20_000,
      intervalMs: 200,
      onRetry: (r) => reasons.push(r),
    });
    await new Promise((r) => setTimeout(r, 1_000));
    await setPassword(rotated);
    try {
      expect(await waiting).toBeGreaterThan(1);
      expect(reasons[0]).toBe("the server refuses the password (not applied yet)");
    } finally {
      await setPassword(FIRST);
    }
  });

  it("gives up after the timeout, naming role, host and reason but never the password", async () => {
    const wrong = `${FIRST}-never-applied`;
    const began = Date.now();
    const err = await waitForLogin(dsnWith(wrong), { timeoutMs: 1_500, intervalMs: 200 }).catch(
      (e: Error) => e,
    );
    expect(Date.now() - began).toBeGreaterThanOrEqual(1_500);
    expect(String(err)).toContain(`${ROLE}@${pg.host}:${pg.port}/${DB}: no login within 2 s`);
    expect(String(err)).toContain("refuses the password");
    expect(String(err)).not.toContain(wrong);
  });

  it("retries an unreachable server, and fails at once on any other error", async () => {
    const port = await freePort();
    const unreachable = await waitForLogin(dsnWith(FIRST, port), { timeoutMs: 1_000, intervalMs: 200 }).catch(
      (e: Error) => e,
    );
    expect(String(unreachable)).toContain("the server is unreachable (ECONNREFUSED)");
    const began = Date.now();
    const other = await waitForLogin(dsnWith(FIRST, pg.port, `no_such_db_${ROLE}`), {
      timeoutMs: 10_000,
    }).catch((e: { code?: string }) => e);
    expect((other as { code?: string }).code).toBe("3D000");
    expect(Date.now() - began).toBeLessThan(5_000);
  });
});

describe("the PostgresLogin provider", () => {
  it("create and update wait for the login; a DSN change is a change", async () => {
    const inputs = { dsn: dsnWith(FIRST), timeoutSeconds: 5 };
    const created = await postgresLoginProvider.create(inputs);
    expect(created.outs).toEqual(inputs);
    const rotated = { ...inputs, dsn: dsnWith(`${FIRST}x`) };
    expect((await postgresLoginProvider.diff("postgres-login", inputs, rotated)).changes).toBe(true);
    expect((await postgresLoginProvider.diff("postgres-login", inputs, { ...inputs })).changes).toBe(false);
    await expect(
      postgresLoginProvider.update("postgres-login", inputs, { ...rotated, timeoutSeconds: 1 }),
    ).rejects.toThrow(/no login within 1 s: the server refuses the password/);
  });
});
