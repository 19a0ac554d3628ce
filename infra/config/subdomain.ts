/**
 * Subdomain rules (docs/architecture.md#tenants). A tenant's subdomain is also the name of its PostgreSQL
 * database, so the rules serve both DNS (an RFC 1123 label) and PostgreSQL (an identifier of
 * at most 63 bytes that must not clash with a system or platform database).
 */

/** Shortest and longest subdomain accepted. */
export const SUBDOMAIN_MIN_LENGTH = 3;
export const SUBDOMAIN_MAX_LENGTH = 63;

/**
 * Names no tenant may take: host names the platform or common tooling uses, plus the names of
 * PostgreSQL's system databases and the platform's own database prefix (the subdomain is the
 * database name).
 */
export const RESERVED_SUBDOMAINS: ReadonlySet<string> = new Set([
  "www",
  "admin",
  "api",
  "portal",
  "mail",
  "static",
  "app",
  "auth",
  "cdn",
  "docs",
  "status",
  "support",
  "help",
  "billing",
  "dashboard",
  "ftp",
  "smtp",
  "imap",
  "pop",
  "ns1",
  "ns2",
  "mx",
  "localhost",
  "test",
  "dev",
  "staging",
  "preview",
  "assets",
  "media",
  "files",
  "blog",
  "shop",
  // PostgreSQL system databases and the platform's own database name prefix.
  "postgres",
  "template0",
  "template1",
  "loomworks",
]);

/** The human-readable rule messages `checkSubdomain` returns, one per rule. */
export const SUBDOMAIN_RULES = {
  notString: "must be a string",
  tooShort: `must be at least ${SUBDOMAIN_MIN_LENGTH} characters long`,
  tooLong: `must be at most ${SUBDOMAIN_MAX_LENGTH} characters long (an RFC 1123 DNS label and a PostgreSQL database name)`,
  uppercase: "must be lowercase (no uppercase letters)",
  invalidChar: "may contain only lowercase letters a-z, digits 0-9 and hyphens",
  edgeHyphen: "must not start or end with a hyphen",
  doubleHyphen: 'must not contain "--" (reserved for preview hosts)',
  reserved: "is a reserved name",
} as const;

/**
 * Checks one subdomain against the rules, in this order: string, length, lowercase, allowed
 * characters, leading/trailing hyphen, `--`, reserved names. Returns the first violated rule's
 * message (see `SUBDOMAIN_RULES`), or `undefined` when the subdomain is valid.
 */
export function checkSubdomain(s: unknown): string | undefined {
  if (typeof s !== "string") return SUBDOMAIN_RULES.notString;
  if (s.length < SUBDOMAIN_MIN_LENGTH) return SUBDOMAIN_RULES.tooShort;
  if (s.length > SUBDOMAIN_MAX_LENGTH) return SUBDOMAIN_RULES.tooLong;
  if (/[A-Z]/.test(s)) return SUBDOMAIN_RULES.uppercase;
  if (!/^[a-z0-9-]+$/.test(s)) return SUBDOMAIN_RULES.invalidChar;
  if (s.startsWith("-") || s.endsWith("-")) return SUBDOMAIN_RULES.edgeHyphen;
  if (s.includes("--")) return SUBDOMAIN_RULES.doubleHyphen;
  if (RESERVED_SUBDOMAINS.has(s)) return SUBDOMAIN_RULES.reserved;
  return undefined;
}
