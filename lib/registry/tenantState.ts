/** A tenant's declared lifecycle state (stack key `state`): the one declaration every layer imports. */
export const TENANT_STATES = ["active", "suspended", "archived"] as const;
export type TenantState = (typeof TENANT_STATES)[number];
