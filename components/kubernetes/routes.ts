/**
 * The routing table of the Kubernetes target, generated from the declared tenants
 * (docs/architecture.md#erp-and-routing):
 * every tenant host with where it goes — the ERP when the tenant is active, the 503 page when it
 * is suspended, archived or being restored. Hosts not in the table go to the 404 page. Pure: the
 * Gateway API and Ingress variants of KubernetesRouter both render from it.
 */
import type { TenantState } from "../../lib/registry/tenantState";

export type RouterTenantState = TenantState | "restoring";

export interface RouterTenant {
  subdomain: string;
  state: RouterTenantState;
  /** Also serve `<subdomain>--preview.<domain>` (the tenant's preview database, same ERP). */
  preview?: boolean;
}

export interface HostRoute {
  host: string;
  tenant: string;
  kind: "tenant" | "preview";
  backend: "erp" | "unavailable";
  /** The first label of the host: Odoo's `%d`, i.e. the database `dbfilter = ^%d$` selects. */
  database: string;
  /** Kubernetes name of the host's HTTPRoute. */
  routeName: string;
}

export const PREVIEW_SUFFIX = "--preview";
const SUBDOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function tenantHost(subdomain: string, domain: string): string {
  return `${subdomain}.${domain}`;
}

export function previewHost(subdomain: string, domain: string): string {
  return `${subdomain}${PREVIEW_SUFFIX}.${domain}`;
}

/** Hosts of the declared tenants, sorted by host; throws on a subdomain no router may serve. */
export function routingTable(domain: string, tenants: readonly RouterTenant[]): HostRoute[] {
  const seen = new Set<string>();
  const routes: HostRoute[] = [];
  for (const t of tenants) {
    if (!SUBDOMAIN.test(t.subdomain) || t.subdomain.includes("--")) {
      throw new Error(`tenant "${t.subdomain}": not a routable subdomain (RFC 1123 label without "--")`);
    }
    if (seen.has(t.subdomain)) throw new Error(`tenant "${t.subdomain}": declared twice`);
    seen.add(t.subdomain);
    const backend = t.state === "active" ? "erp" : "unavailable";
    const hosts: [HostRoute["kind"], string, string][] = [
      ["tenant", tenantHost(t.subdomain, domain), t.subdomain],
    ];
    if (t.preview) {
      const label = `${t.subdomain}${PREVIEW_SUFFIX}`;
      if (label.length > 63) {
        throw new Error(
          `tenant "${t.subdomain}": preview host label "${label}" is longer than 63 characters`,
        );
      }
      hosts.push(["preview", previewHost(t.subdomain, domain), label]);
    }
    for (const [kind, host, database] of hosts) {
      if (host.length > 253)
        throw new Error(`tenant "${t.subdomain}": host ${host} is longer than 253 characters`);
      routes.push({
        host,
        tenant: t.subdomain,
        kind,
        backend,
        database,
        routeName: kind === "tenant" ? `tenant-${t.subdomain}` : `tenant-${t.subdomain}-preview`,
      });
    }
  }
  return routes.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
}
