/**
 * Child process of the restore crash tests (test/integration/restore.test.ts): runs restoreTenant
 * with the options in $LOOMWORKS_RESTORE_OPTS (JSON). With LOOMWORKS_CRASH_AT=restore:<step> and
 * LOOMWORKS_CRASH_SELF=1 it SIGKILLs itself at that step boundary (lib/process/crashPoint.ts),
 * leaving whatever it started (pgBackRest, the scratch PostgreSQL, pg_dump...) behind.
 * Run with vite-node: `node node_modules/vite-node/vite-node.mjs test/integration/restore-crash-child.ts`.
 */
import { restoreTenant, type RestoreTenantOptions } from "../../lib/restore";

const opts = JSON.parse(process.env.LOOMWORKS_RESTORE_OPTS ?? "{}") as RestoreTenantOptions;
restoreTenant({ ...opts, log: (m) => process.stdout.write(`${m}\n`) }).then(
  (r) => {
    process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
    process.exit(0);
  },
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
