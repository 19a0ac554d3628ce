/**
 * The local target's router
 * (docs/architecture.md#erp-and-routing): nginx in front of the ERP, configured from the
 * declared tenants. config.ts renders, nginx.ts checks, loads and runs it, maintenance.ts
 * switches single tenants to the 503 page without a reload. dynamic-providers/localRouter.ts is
 * the Pulumi lifecycle over these.
 */
export * from "./config";
export * from "./maintenance";
export * from "./nginx";
