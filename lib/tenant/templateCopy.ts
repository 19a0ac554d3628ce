/**
 * `CREATE DATABASE ... TEMPLATE`, retried while the template is briefly in use: the copy made for a
 * new tenant (lib/tenant/provision.ts) and for a spare made ahead of one (lib/tenant/spares.ts).
 */
import type { Client } from "pg";
import { quoteIdent } from "../pg/client";
import { terminateSessions } from "../pg/sessions";
import { createDatabaseFromTemplateSql } from "./sql";

/** CREATE DATABASE retries while the template is briefly in use. */
const CREATE_DB_ATTEMPTS = 5;

/**
 * Copies `template` into the new database `database` (owned by the connected platform role, no
 * PUBLIC privileges). True when created now; false when it already existed (created concurrently).
 */
export async function copyTemplate(
  admin: Client,
  database: string,
  template: string,
  log: (message: string) => void,
): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    // Templates refuse connections anyway; end any session that got in (or lingers from a build).
    await terminateSessions(admin, { database: template, waitMs: 5000 });
    try {
      await admin.query(createDatabaseFromTemplateSql(database, template));
      // Nobody but its own role may connect, from the first moment (connect-grants converges it too).
      await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM PUBLIC`);
      // CREATE DATABASE committed with PUBLIC's CONNECT: end any session that got in before the REVOKE.
      await terminateSessions(admin, { database, waitMs: 5000 });
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === "42P04") return false; // created concurrently: adopt
      // 55006: "source database is being accessed by other users"
      if (code !== "55006" || attempt >= CREATE_DB_ATTEMPTS) throw err;
      log(`template ${template} busy, retrying CREATE DATABASE (${attempt}/${CREATE_DB_ATTEMPTS})`);
      await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
    }
  }
}
