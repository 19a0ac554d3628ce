/**
 * The platform's SQL APIs inside tenant databases (snapshot, quota, undo) as modules: the files of
 * each under `sql/<name>/`, rendered with named placeholders by lib/templates/render.ts, and one
 * installer for all of them. What every API needs is written once, in `sql/common/`, and added by
 * the installer around the API's own files:
 *
 *   owner-role.sql  the NOLOGIN owner role exists and is inert (it runs SECURITY DEFINER code)
 *   schema.sql      the schema, the owner's, nothing on it for PUBLIC
 *   <definitions>   the API's tables and functions (`{{definer}}` / `{{pinned}}` in their headers)
 *   functions.sql   every function of the schema the owner's, none executable by PUBLIC
 *   <grants>        what the tenant role and the other platform roles may use
 *   version.sql     the version, in the schema's COMMENT ("loomworks quota api v2")
 *
 * Values every file gets: `schema` (quoted) and `schema_name`, `owner` (quoted) and `owner_name`,
 * `api`, `version`, `version_comment`, `definer`, `pinned`, `tenant_role` (the tenant role's name, an
 * expression) and `sqlstate.<key>` (lib/sql/sqlstates.ts); a module adds its own.
 */
import type { Client } from "pg";
import { quoteIdent } from "../pg/client";
import { TENANT_ROLE_SQL } from "../pg/ownerRole";
import { renderSqlFile, type TemplateValues } from "../templates/render";
import { sqlstateValues } from "./sqlstates";

/** A fixed search path: the caller's cannot redirect what a function resolves. */
const PINNED = "SET search_path = pg_catalog, pg_temp";

/** The header clauses shared by the APIs' functions. */
export const FUNCTION_CLAUSES = {
  /** Runs as the API's owner role (never as the caller), with a fixed search path. */
  definer: `SECURITY DEFINER ${PINNED}`,
  /** Runs as the caller, with a fixed search path. */
  pinned: PINNED,
} as const;

export interface SqlModule {
  /** The API's name: its folder under sql/, its schema's version comment ("loomworks <name> api v<n>"). */
  name: string;
  schema: string;
  /** Recorded in the schema's COMMENT; lib/guards/install.ts reads it back. */
  version: number;
  /** The NOLOGIN role owning the schema and everything in it. */
  owner: string;
  /** Advisory lock (per database) serializing installations of this API. */
  lockKey?: number;
  /** Files in sql/<name>/ creating the API's objects, in order. */
  definitions: readonly string[];
  /** Files in sql/<name>/ granting what others may use (after every function is the owner's). */
  grants: readonly string[];
  /** Files in sql/<name>/ removing the API. */
  removal?: readonly string[];
  /** The module's own placeholder values. */
  values?: TemplateValues;
}

/** The start of the schema COMMENT carrying the version ("loomworks quota api v"). */
export function versionCommentPrefix(name: string): string {
  return `loomworks ${name} api v`;
}

/** Every value the module's files get. */
export function sqlModuleValues(m: SqlModule): TemplateValues {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(m.owner))
    throw new Error(`owner role name ${JSON.stringify(m.owner)} is not plain`);
  return {
    ...FUNCTION_CLAUSES,
    tenant_role: TENANT_ROLE_SQL,
    ...sqlstateValues(),
    api: m.name,
    version: m.version,
    version_comment: `${versionCommentPrefix(m.name)}${m.version}`,
    schema: quoteIdent(m.schema),
    schema_name: m.schema,
    owner: quoteIdent(m.owner),
    owner_name: m.owner,
    ...m.values,
  };
}

function render(m: SqlModule, files: readonly string[]): string {
  const values = sqlModuleValues(m);
  return files.map((f) => renderSqlFile(f, values)).join("\n");
}

/** The module's own files, by their paths under sql/. */
const ownFiles = (m: SqlModule, files: readonly string[] = []): string[] =>
  files.map((f) => `${m.name}/${f}`);

/** The module's installation script (idempotent; one transaction, as a superuser). */
export function renderSqlModule(m: SqlModule): string {
  return render(m, [
    "common/owner-role.sql",
    "common/schema.sql",
    ...ownFiles(m, m.definitions),
    "common/functions.sql",
    ...ownFiles(m, m.grants),
    "common/version.sql",
  ]);
}

/** The module's removal script. */
export function renderSqlModuleRemoval(m: SqlModule): string {
  return render(m, ownFiles(m, m.removal));
}

/** What an installation transaction offers its body. */
export interface SqlModuleInstaller {
  install(m: SqlModule): Promise<void>;
  remove(m: SqlModule): Promise<void>;
}

export interface InstallTransactionOptions {
  /** BEGIN READ WRITE (default): the database may be read-only by default (storage quota reached). */
  readWrite?: boolean;
  /** Advisory lock (per database) taken first, serializing whole installations. */
  lockKey?: number;
}

/**
 * Runs `body` in one transaction of `db` (a superuser connected to the tenant database), warnings
 * only: what it installs or removes is all there or not at all.
 */
export async function inInstallTransaction<T>(
  db: Client,
  opts: InstallTransactionOptions,
  body: (modules: SqlModuleInstaller) => Promise<T>,
): Promise<T> {
  const lock = (key: number | undefined) =>
    key === undefined ? undefined : db.query("SELECT pg_catalog.pg_advisory_xact_lock($1)", [key]);
  await db.query(opts.readWrite === false ? "BEGIN" : "BEGIN READ WRITE");
  try {
    await db.query("SET LOCAL client_min_messages = warning");
    await lock(opts.lockKey);
    const result = await body({
      install: async (m) => {
        await lock(m.lockKey);
        await db.query(renderSqlModule(m));
      },
      remove: async (m) => {
        await db.query(renderSqlModuleRemoval(m));
      },
    });
    await db.query("COMMIT");
    return result;
  } catch (err) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** Installs (or upgrades, or repairs) the modules, in order, in one transaction. */
export async function installSqlModules(
  db: Client,
  modules: readonly SqlModule[],
  opts: InstallTransactionOptions = {},
): Promise<void> {
  await inInstallTransaction(db, opts, async (installer) => {
    for (const m of modules) await installer.install(m);
  });
}
