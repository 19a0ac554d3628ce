/**
 * How the platform's own commands (scheduled jobs, the operator command) reach PostgreSQL on the
 * local target: `LOOMWORKS_ADMIN_DSN` when set; otherwise as `postgres` over the cluster's unix
 * socket with peer authentication (the `loomworks_operator` ident map admits root and postgres), the
 * socket found in `<stateDir>/scheduler/cluster.json` (written by the LocalScheduler provider). No
 * password is stored anywhere for them.
 */
import { readClusterFile } from "../backup/daemon";
import { adminDsn as buildDsn } from "../pg/client";

export async function operatorAdminDsn(stateDir: string): Promise<string> {
  if (process.env.LOOMWORKS_ADMIN_DSN) return process.env.LOOMWORKS_ADMIN_DSN;
  const cluster = await readClusterFile(stateDir);
  return buildDsn({ host: cluster.socketDir, port: cluster.port, user: "postgres" });
}

/**
 * The tenant's own connection string from the stack outputs (`tenants.<subdomain>.dsn`, a secret
 * output: what scripts/tenant-dsn.sh prints). The operator's undo connects with it, so that nothing
 * the tenant put in its database (a trigger) ever runs with the platform's rights.
 */
export function tenantDsnFromOutputs(
  outputs: Record<string, { value: unknown } | undefined>,
  subdomain: string,
  stackName: string,
): string {
  const tenants = outputs.tenants?.value as Record<string, { dsn?: unknown } | undefined> | undefined;
  const dsn = tenants?.[subdomain]?.dsn;
  if (typeof dsn !== "string" || dsn === "") {
    throw new Error(
      `no tenant "${subdomain}" with a dsn in the outputs of stack "${stackName}" (run pulumi up first)`,
    );
  }
  return dsn;
}
