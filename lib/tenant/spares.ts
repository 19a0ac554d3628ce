/**
 * Spare tenant databases: a template's copy made ahead of time, so that creating a tenant renames
 * a database instead of copying one (the copy is ≈ 80 % of provisioning: BENCHMARKS.md).
 *
 * A spare is made by {@link prepareSpare}: a NOLOGIN role `loomworks_spare_<template oid>_<hex>`
 * with no membership and no privilege, and a database of the same name copied from the template
 * (STRATEGY WAL_LOG, like a tenant's), owned by the platform, with no PUBLIC privilege, that role
 * owning schema `public` and every object in it (what the `ownership` step gives a tenant), every
 * sequence re-logged in the copy's own WAL (lib/pg/sequences.ts: the `sequences` step's work),
 * connections refused. Only then does its comment mark it ready, naming its template, the
 * template's oid and a digest of the template's comment (its source hash): a spare whose template
 * was rebuilt or dropped since is stale, never claimed, and dropped by the next preparation.
 *
 * {@link claimSpare} turns a ready spare into a new tenant in one transaction: the database and
 * its role are renamed to the tenant's names (oids, files and ownership stay; nothing is copied).
 * The rest of provisioning then runs as for a fresh copy and finds its work done: the role step
 * gives the role its password, LOGIN and group, ownership finds every object owned, sequences
 * were re-logged. A claim is journaled before it runs (`spare:<name>`), which is also how a
 * point-in-time restore learns that the tenant's database had another name in a backup taken
 * before the claim (lib/restore/scratch.ts includes it under that name).
 *
 * Crash safety: a preparation killed midway leaves a database and/or role without the ready mark;
 * the next preparation for that template (serialized by an advisory lock) drops them. A claim is
 * one transaction.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Client } from "pg";
import { quoteIdent, quoteLiteral, withClient } from "../pg/client";
import { withDatabase } from "../pg/database";
import { relogSequences } from "../pg/sequences";
import { reassignPublicObjectsSql } from "./sql";
import { copyTemplate } from "./templateCopy";
import { revokeForeignMemberships } from "./memberships";
import { terminateSessions } from "../pg/sessions";

/** Prefix of every spare's database and role name. */
export const SPARE_PREFIX = "loomworks_spare_";
/** Advisory lock class serializing the preparation of one template's spares. */
const SPARE_LOCK_CLASS = 7_314_205;

type Log = (message: string) => void;

interface SpareMark {
  template: string;
  templateOid: number;
  stamp: string;
}

interface TemplateIdentity {
  oid: number;
  stamp: string;
}

interface SpareRow {
  name: string;
  mark?: SpareMark;
}

/** A digest of the template's comment (its source hash: lib/tenant/sql.ts templateComment). */
const stampOf = (comment: string | null): string =>
  createHash("sha256")
    .update(comment ?? "")
    .digest("hex")
    .slice(0, 16);

function readyComment(m: SpareMark): string {
  return `loomworks spare of ${m.template}: template-oid=${m.templateOid} stamp=${m.stamp} ready`;
}

/** The comment a claimed spare carries until the tenant is initialized (its sequences are re-logged). */
export function claimedComment(subdomain: string): string {
  return `loomworks spare claimed by ${subdomain}: sequences re-logged`;
}

export function parseSpareComment(comment: string | null | undefined): SpareMark | undefined {
  const m = /^loomworks spare of (\S+): template-oid=(\d+) stamp=([0-9a-f]{16}) ready$/.exec(comment ?? "");
  return m ? { template: m[1], templateOid: Number(m[2]), stamp: m[3] } : undefined;
}

/** The template oid in a spare's name (`loomworks_spare_<oid>_<hex>`). */
function templateOidInName(name: string): number | undefined {
  const m = /^loomworks_spare_(\d+)_[0-9a-f]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

async function templateIdentity(admin: Client, template: string): Promise<TemplateIdentity | undefined> {
  const r = await admin.query<{ oid: string; comment: string | null }>(
    `SELECT oid::text, shobj_description(oid, 'pg_database') AS comment
     FROM pg_database WHERE datname = $1 AND datistemplate`,
    [template],
  );
  const row = r.rows[0];
  return row ? { oid: Number(row.oid), stamp: stampOf(row.comment) } : undefined;
}

async function spareDatabases(admin: Client): Promise<SpareRow[]> {
  const r = await admin.query<{ name: string; comment: string | null }>(
    `SELECT datname::text AS name, shobj_description(oid, 'pg_database') AS comment
     FROM pg_database WHERE starts_with(datname, $1) ORDER BY oid`,
    [SPARE_PREFIX],
  );
  return r.rows.map((row) => {
    const mark = parseSpareComment(row.comment);
    return { name: row.name, ...(mark ? { mark } : {}) };
  });
}

const isFresh = (s: SpareRow, template: string, id: TemplateIdentity): boolean =>
  s.mark?.template === template && s.mark.templateOid === id.oid && s.mark.stamp === id.stamp;

/** Drops a spare's database and role (either may be missing). */
async function dropSpare(admin: Client, name: string): Promise<void> {
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  // The role owned objects in that database only: nothing is left for it to own. A tenant may have
  // granted it privileges in its own database (2BP01): the role then stays, login-less and unclaimable
  // (it has no database), rather than a template rebuild or the spares job failing on it.
  await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`).catch((err: { code?: string }) => {
    if (err.code !== "2BP01") throw err;
  });
}

/**
 * Drops the spares nobody can claim: those of `template` that are stale or were never finished,
 * and those whose template no longer exists. Roles without their database are leftovers too.
 * Run under the template's spare lock.
 */
async function dropUnusableSpares(
  admin: Client,
  template: string,
  id: TemplateIdentity,
  log: Log,
): Promise<SpareRow[]> {
  const existing = await admin.query<{ oid: string }>("SELECT oid::text FROM pg_database");
  const oids = new Set(existing.rows.map((r) => Number(r.oid)));
  const mine = (name: string): boolean => templateOidInName(name) === id.oid;
  const orphan = (name: string): boolean => {
    const oid = templateOidInName(name);
    return oid !== undefined && !oids.has(oid);
  };
  const kept: SpareRow[] = [];
  for (const s of await spareDatabases(admin)) {
    const stale = s.mark ? s.mark.template === template && !isFresh(s, template, id) : mine(s.name);
    if (stale || orphan(s.name)) {
      log(`spare ${s.name}: ${s.mark ? "stale (its template changed)" : "unfinished"}; dropping it`);
      await dropSpare(admin, s.name);
    } else if (isFresh(s, template, id)) kept.push(s);
  }
  const roles = await admin.query<{ name: string }>(
    `SELECT rolname::text AS name FROM pg_roles r
     WHERE starts_with(rolname, $1) AND NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = r.rolname)`,
    [SPARE_PREFIX],
  );
  for (const { name } of roles.rows) if (mine(name) || orphan(name)) await dropSpare(admin, name);
  return kept;
}

/** Fills a fresh copy: ownership to the spare's role, sequences re-logged, connections refused, marked ready. */
async function finishSpare(admin: Client, adminDsn: string, name: string, mark: SpareMark): Promise<void> {
  await withDatabase(admin, adminDsn, name, async (db) => {
    await db.query(`ALTER SCHEMA public OWNER TO ${quoteIdent(name)}`);
    await db.query(reassignPublicObjectsSql(name));
    await relogSequences(db);
  });
  await admin.query(`ALTER DATABASE ${quoteIdent(name)} ALLOW_CONNECTIONS false`);
  await admin.query(`COMMENT ON DATABASE ${quoteIdent(name)} IS ${quoteLiteral(readyComment(mark))}`);
}

export interface PrepareSpareResult {
  /** The ready spare (undefined: the template does not exist, or another process is preparing one). */
  spare?: string;
  /** Made by this call (at least one). */
  made: boolean;
  /** Ready spares of the template after this call. */
  ready: number;
}

/**
 * Makes sure `count` ready spares of `template` exist (see the module comment): makes the missing
 * ones, one after the other, never drops a ready one beyond `count`. Returns at once when another
 * process holds the template's spare lock (it is preparing some).
 */
export async function prepareSpare(
  admin: Client,
  adminDsn: string,
  template: string,
  log: Log = () => undefined,
  count = 1,
): Promise<PrepareSpareResult> {
  const got = await admin.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok", [
    SPARE_LOCK_CLASS,
    template,
  ]);
  if (!got.rows[0].ok) return { made: false, ready: 0 };
  try {
    const id = await templateIdentity(admin, template);
    if (!id) return { made: false, ready: 0 };
    const ready = (await dropUnusableSpares(admin, template, id, log)).map((s) => s.name);
    const before = ready.length;
    while (ready.length < count) ready.push(await makeSpare(admin, adminDsn, template, id, log));
    return {
      ...(ready.length > 0 ? { spare: ready[0] } : {}),
      made: ready.length > before,
      ready: ready.length,
    };
  } finally {
    await admin
      .query("SELECT pg_advisory_unlock($1, hashtext($2))", [SPARE_LOCK_CLASS, template])
      .catch(() => undefined);
  }
}

/** One new ready spare of `template` (run under the template's spare lock). */
async function makeSpare(
  admin: Client,
  adminDsn: string,
  template: string,
  id: TemplateIdentity,
  log: Log,
): Promise<string> {
  const name = `${SPARE_PREFIX}${id.oid}_${randomBytes(4).toString("hex")}`;
  // The role first: a database without its role is never left behind by a crash in between.
  await admin.query(
    `CREATE ROLE ${quoteIdent(name)} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS`,
  );
  await copyTemplate(admin, name, template, log);
  await finishSpare(admin, adminDsn, name, { template, templateOid: id.oid, stamp: id.stamp });
  log(`spare ${name} of ${template} ready`);
  return name;
}

/** Drops every spare of `template` (it is about to change, or is gone). */
export async function dropSparesOf(admin: Client, template: string): Promise<void> {
  for (const s of await spareDatabases(admin)) {
    if (s.mark?.template === template) await dropSpare(admin, s.name);
  }
}

/** A ready spare of `template` made from its current content, if any. */
export async function findSpare(admin: Client, template: string): Promise<string | undefined> {
  const id = await templateIdentity(admin, template);
  if (!id) return undefined;
  return (await spareDatabases(admin)).find((s) => isFresh(s, template, id))?.name;
}

/**
 * Renames the spare `spare` and its role to `database` and `role` in one transaction. False (and
 * nothing changed) when it cannot: another claim took it first, or someone is connected to it.
 */
export async function claimSpare(
  admin: Client,
  spare: string,
  target: { subdomain: string; database: string; role: string },
): Promise<boolean> {
  // A session that got in before the copy's REVOKE would make the rename fail (55006).
  await terminateSessions(admin, { database: spare, waitMs: 5000 });
  await admin.query("BEGIN");
  try {
    // Memberships a tenant granted to the spare's role would come with it to the new tenant.
    await revokeForeignMemberships(admin, spare);
    await admin.query(`ALTER DATABASE ${quoteIdent(spare)} RENAME TO ${quoteIdent(target.database)}`);
    await admin.query(`ALTER ROLE ${quoteIdent(spare)} RENAME TO ${quoteIdent(target.role)}`);
    await admin.query(
      `COMMENT ON DATABASE ${quoteIdent(target.database)} IS ${quoteLiteral(claimedComment(target.subdomain))}`,
    );
    await admin.query("COMMIT");
    return true;
  } catch {
    await admin.query("ROLLBACK").catch(() => undefined);
    return false;
  }
}

/**
 * `count` ready spares of every template the platform built (`loomworks template ...` comment):
 * what a scheduled `jobs.js spares --count N` runs, so that the next tenants of each template find
 * one.
 */
export async function prepareSparesOfAllTemplates(
  adminDsn: string,
  log: Log = () => undefined,
  count = 1,
): Promise<Array<{ template: string } & PrepareSpareResult>> {
  return withClient(adminDsn, async (admin) => {
    const templates = await admin.query<{ name: string }>(
      `SELECT datname::text AS name FROM pg_database
       WHERE datistemplate AND starts_with(shobj_description(oid, 'pg_database'), 'loomworks template ')
       ORDER BY datname`,
    );
    const out: Array<{ template: string } & PrepareSpareResult> = [];
    for (const { name } of templates.rows)
      out.push({ template: name, ...(await prepareSpare(admin, adminDsn, name, log, count)) });
    return out;
  });
}
