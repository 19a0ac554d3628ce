/**
 * How a template's `fromCommand` (the ERP's initializer, e.g. `odoo -d {db} -i base --stop-after-init`)
 * runs on this machine: as a builder role of its own, never as a superuser (Odoo refuses the
 * `postgres` role, and nothing a build runs should have the platform's rights).
 *
 * The builder role `<template>_builder` logs in with a password made for this build, owns the
 * building database (so the initializer can create its tables and schema), and may connect to the
 * `postgres` database (Odoo checks there whether the database exists, and keeps its LISTEN/NOTIFY
 * channels there). The command gets `PGHOST`/`PGPORT`/`PGUSER`/`PGPASSWORD`/`PGDATABASE` naming it, and
 * `ODOO_RC` naming an odoo.conf whose `data_dir` is a build directory: the files the ERP writes
 * while it builds (company logo, images, icons) are collected as the template's filestore
 * (`<filestoreRoot>/<template>`) and carried into every tenant copied from it. After the build every
 * object the builder made is handed to the platform and the role can no longer log in.
 *
 * On the kubernetes target the command runs in a pod (templatePod.ts) as the same builder role; its
 * password is then the one the program keeps in the builder's Secret (the pod reads it by
 * secretKeyRef), and there is no build directory here: the files the ERP writes in the pod are not
 * collected.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { quoteIdent, withClient } from "../pg/client";
import { terminateSessions } from "../pg/sessions";
import { writePrivateFile } from "../fs/privateFile";
import { checkRoleName } from "../pg/names";
import { dsnToPgEnv, dsnWithDatabase } from "../pg/dsn";
import { passwordClause } from "../pg/scram";

const NOTIFY_DATABASE = "postgres";

export interface BuilderRole {
  role: string;
  password: string;
}

/** A builder on this machine: its role and the build's odoo.conf (ODOO_RC) and data_dir. */
export interface TemplateBuilder extends BuilderRole {
  odooRc: string;
  dataDir: string;
}

/** `<template database>_builder`. */
export function builderRoleName(templateDatabase: string): string {
  const role = `${templateDatabase}_builder`;
  checkRoleName(role);
  return role;
}

/** `<stateDir>/templates/<name>.build`: the build's odoo.conf and data_dir (removed after the build). */
export function buildDir(stateDir: string, templateName: string): string {
  return path.join(
    path.resolve(stateDir),
    "templates",
    `${templateName.replace(/[^A-Za-z0-9_.-]/g, "_")}.build`,
  );
}

/**
 * Creates (or resets) the builder role and gives it the building database. Its password is
 * `password` when given (kubernetes: the value of the builder's Secret), else a new one.
 */
export async function prepareBuilderRole(
  admin: Client,
  o: { templateDatabase: string; building: string; password?: string },
): Promise<BuilderRole> {
  const role = builderRoleName(o.templateDatabase);
  const password = o.password ?? randomBytes(24).toString("base64url");
  const attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT";
  const exists = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
  if (exists.rowCount === 0)
    await admin.query(`CREATE ROLE ${quoteIdent(role)} ${attrs} ${passwordClause(password)}`);
  else await admin.query(`ALTER ROLE ${quoteIdent(role)} ${attrs} ${passwordClause(password)}`);
  await admin.query(`GRANT CONNECT ON DATABASE ${quoteIdent(NOTIFY_DATABASE)} TO ${quoteIdent(role)}`);
  await admin.query(`ALTER DATABASE ${quoteIdent(o.building)} OWNER TO ${quoteIdent(role)}`);
  return { role, password };
}

/** The builder role with a new password, and the build's directory on this machine. */
export async function prepareBuilder(
  admin: Client,
  o: { templateDatabase: string; building: string; stateDir: string; templateName: string },
): Promise<TemplateBuilder> {
  const { role, password } = await prepareBuilderRole(admin, o);
  const dir = buildDir(o.stateDir, o.templateName);
  await fs.rm(dir, { recursive: true, force: true });
  const dataDir = path.join(dir, "data");
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const odooRc = path.join(dir, "odoo.conf");
  await writePrivateFile(odooRc, `[options]\ndata_dir = ${dataDir}\n`);
  return { role, password, odooRc, dataDir };
}

/** The environment of the command: PG* naming the builder and the building database, ODOO_RC. */
export function builderEnv(adminDsn: string, building: string, b: TemplateBuilder): Record<string, string> {
  const env = dsnToPgEnv(dsnWithDatabase(adminDsn, building));
  return { ...env, PGUSER: b.role, PGPASSWORD: b.password, PGDATABASE: building, ODOO_RC: b.odooRc };
}

/** `{db}` and `{data_dir}` of a command. */
export function expandCommand(command: string, database: string, dataDir: string): string {
  return command.replace(/\{db\}/g, database).replace(/\{data_dir\}/g, dataDir);
}

/**
 * After a successful build: the files the ERP wrote on this machine for the building database
 * become `<filestoreRoot>/<building>` (renamed with the database when it is swapped in), the
 * builder's objects go to the platform (the database too), and the role cannot log in any more.
 * A builder without a build directory (kubernetes) only hands its objects over and is retired.
 */
export async function finishBuilder(
  admin: Client,
  adminDsn: string,
  o: { building: string; filestoreRoot?: string },
  b: BuilderRole | TemplateBuilder,
): Promise<void> {
  const local = "dataDir" in b;
  if (local && o.filestoreRoot) {
    const built = path.join(b.dataDir, "filestore", o.building);
    const dest = path.join(path.resolve(o.filestoreRoot), o.building);
    await fs.rm(dest, { recursive: true, force: true });
    await fs.mkdir(path.dirname(dest), { recursive: true });
    const exists = await fs.stat(built).then(
      () => true,
      () => false,
    );
    if (exists) await fs.rename(built, dest);
    else await fs.mkdir(dest, { mode: 0o750 });
  }
  await withClient(dsnWithDatabase(adminDsn, o.building), (db) =>
    db.query(`REASSIGN OWNED BY ${quoteIdent(b.role)} TO CURRENT_USER`),
  );
  await retireBuilder(admin, b.role);
  if (local) await fs.rm(path.dirname(b.odooRc), { recursive: true, force: true });
}

/** The builder can no longer log in (its password is gone too). */
export async function retireBuilder(admin: Client, role: string): Promise<void> {
  await admin.query(`ALTER ROLE ${quoteIdent(role)} NOLOGIN PASSWORD NULL`);
  await admin.query(`REVOKE CONNECT ON DATABASE ${quoteIdent(NOTIFY_DATABASE)} FROM ${quoteIdent(role)}`);
  await terminateSessions(admin, { role, waitMs: 0 });
}

/** Retires a template's builder role if it exists (under the template's build lock: no build runs). */
export async function retireLeftoverBuilder(admin: Client, templateDatabase: string): Promise<void> {
  const role = builderRoleName(templateDatabase);
  const r = await admin.query<{ rolcanlogin: boolean }>(
    "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
    [role],
  );
  if (r.rows[0]?.rolcanlogin) await retireBuilder(admin, role);
}

/** Drops the builder role of a template (with the template; no error when missing). */
export async function dropBuilder(admin: Client, templateDatabase: string): Promise<void> {
  const role = builderRoleName(templateDatabase);
  const exists = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
  if (exists.rowCount === 0) return;
  await retireBuilder(admin, role); // kept below when it still owns something: it cannot log in
  await admin.query(`REVOKE CONNECT ON DATABASE ${quoteIdent(NOTIFY_DATABASE)} FROM ${quoteIdent(role)}`);
  await admin.query(`DROP ROLE ${quoteIdent(role)}`).catch((err: { code?: string }) => {
    if (err.code !== "2BP01") throw err; // still owns objects somewhere: leave the (NOLOGIN) role
  });
}

/** `<filestoreRoot>/<name>` of a template or its building copy. */
export function templateFilestore(filestoreRoot: string, database: string): string {
  return path.join(path.resolve(filestoreRoot), database);
}
