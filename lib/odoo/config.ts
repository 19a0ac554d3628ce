/**
 * `odoo.conf` for the ERP, from templates/odoo.conf.tmpl, for every target
 * (docs/architecture.md#erp-and-routing): one
 * database per tenant chosen from the host (`dbfilter = ^%d$`), behind a proxy (`proxy_mode`), no
 * database manager (`list_db = False`), a strong `admin_passwd`, WebSockets on the gevent port, the
 * ERP's own database role, and workers and memory limits sized from the CPU and memory given.
 *
 * Secrets are either written into the file (the local target: `<stateDir>/odoo/odoo.conf`, mode
 * 0600) or left as references `${LOOMWORKS_...}` that the image's entrypoint fills in from the
 * environment or from secret files when the container starts (Docker and Kubernetes: the rendered
 * file is then no secret, so it can live in a ConfigMap or a mounted file). Either way the file
 * comes from this one template.
 */
import { loadTemplate, renderTemplate } from "../templates/render";
import { TENANTS_MODULE, TENANT_CREDENTIALS_OPTION, TENANT_MAP_OPTION } from "./tenantMap";

export const ODOO_HTTP_PORT = 8069;
export const ODOO_GEVENT_PORT = 8072;
/** Below this `limit_memory_hard` per worker the ERP does not run usefully: fewer workers instead. */
export const MIN_WORKER_MEMORY_MB = 512;
/** Share of the memory limit the workers' hard limits may add up to (the rest: the gevent process, cron, overhead). */
export const WORKER_MEMORY_SHARE = 0.8;
/** `limit_memory_soft` as a share of `limit_memory_hard`: a worker past it is recycled after its request. */
export const SOFT_MEMORY_SHARE = 0.8;

/** Environment variables (or `<NAME>_FILE` files) the entrypoint fills secret references from. */
export const ODOO_SECRET_ENV = {
  adminPasswd: "LOOMWORKS_ADMIN_PASSWD",
  dbPassword: "LOOMWORKS_DB_PASSWORD",
  redisUrl: "LOOMWORKS_REDIS_URL",
} as const;

/** What a secret reference looks like in a rendered file: the whole value is `${NAME}`. */
export const SECRET_REFERENCE = /^\$\{(LOOMWORKS_[A-Z0-9_]+)\}$/;

/** A value the entrypoint fills in at start (from `$NAME`, or from the file named by `$NAME_FILE`). */
export interface OdooSecretRef {
  fromEnv: string;
}

/** A secret written into the file as is, or a reference filled in by the entrypoint. */
export type OdooSecret = string | OdooSecretRef;

export interface OdooSizing {
  /** 0 = threaded mode (development: one process, `--dev` reloading, a debugger). */
  workers: number;
  maxCronThreads: number;
  /** Bytes. */
  limitMemorySoft: number;
  /** Bytes. workers × limitMemoryHard ≤ WORKER_MEMORY_SHARE × memory. */
  limitMemoryHard: number;
  /** Connections per ERP process pool (PostgreSQL `db_maxconn`). */
  dbMaxConn: number;
}

function checkResources(cpu: number, memoryMb: number): void {
  if (!(cpu > 0) || !(memoryMb > 0) || !Number.isFinite(cpu) || !Number.isFinite(memoryMb))
    throw new Error(`odoo sizing needs cpu > 0 and memory > 0 (got ${cpu}, ${memoryMb})`);
}

/**
 * Workers = 2 × CPU + 1 (CPU may be fractional: 0.5 → 2), then as many as the memory allows at
 * MIN_WORKER_MEMORY_MB each; the hard memory limit shares WORKER_MEMORY_SHARE of the memory
 * among them, the soft limit is SOFT_MEMORY_SHARE of it.
 */
export function odooSizing(cpu: number, memoryMb: number): OdooSizing {
  checkResources(cpu, memoryMb);
  const budget = memoryMb * WORKER_MEMORY_SHARE;
  const byCpu = Math.floor(2 * cpu) + 1;
  const byMemory = Math.max(1, Math.floor(budget / MIN_WORKER_MEMORY_MB));
  const workers = Math.min(byCpu, byMemory);
  const hardMb = Math.floor(budget / workers);
  const hard = hardMb * 1024 * 1024;
  return {
    workers,
    maxCronThreads: 1,
    limitMemoryHard: hard,
    limitMemorySoft: Math.floor(hard * SOFT_MEMORY_SHARE),
    dbMaxConn: Math.max(8, workers * 2 + 4),
  };
}

/**
 * Threaded mode (workers = 0) for development: one process serving HTTP and WebSockets on the HTTP
 * port, so `--dev=all` reloads and a debugger sees every request. The memory limits only apply to
 * workers; they are still given the whole budget so that switching modes changes nothing else.
 */
export function odooThreadedSizing(cpu: number, memoryMb: number): OdooSizing {
  checkResources(cpu, memoryMb);
  const hard = Math.floor(memoryMb * WORKER_MEMORY_SHARE) * 1024 * 1024;
  return {
    workers: 0,
    maxCronThreads: 1,
    limitMemoryHard: hard,
    limitMemorySoft: Math.floor(hard * SOFT_MEMORY_SHARE),
    dbMaxConn: 32,
  };
}

export interface OdooConfigOptions {
  /** Master password of the (disabled) database manager: a strong secret all the same (≥ 16 characters). */
  adminPasswd: OdooSecret;
  dbHost: string;
  dbPort: number;
  /** The ERP's own role: not a superuser, a member of no tenant role (tenants are opened as their own roles). */
  dbUser: string;
  dbPassword: OdooSecret;
  dbSslmode?: "disable" | "prefer" | "require" | "verify-full";
  dataDir: string;
  addonsPath: string;
  cpu: number;
  memoryMb: number;
  /** `prefork` (default: workers sized from CPU and memory) or `threaded` (development). */
  mode?: "prefork" | "threaded";
  httpInterface?: string;
  /** Sessions in Redis (`redis://host:port/db`); without it sessions stay on the data dir (one replica only). */
  redisUrl?: OdooSecret;
  redisPrefix?: string;
  /** Modules loaded before any database is chosen (default base, web); the Redis session addon belongs here. */
  serverWideModules?: readonly string[];
  /** HTTP port (default 8069) and WebSocket (gevent) port (default 8072): what the router sends to. */
  httpPort?: number;
  geventPort?: number;
  /**
   * The tenant map and credentials the loomworks_tenants addon reads (lib/odoo/tenantMap.ts); given,
   * the addon is loaded server-wide and the ERP serves exactly the map's tenants, each as its own role.
   */
  tenantFiles?: { map: string; credentials: string };
  /** Log file; empty (default) logs to stderr, as containers want. */
  logfile?: string;
  logLevel?: "debug" | "info" | "warn" | "error" | "critical";
}

/** Characters odoo.conf (Python's configparser) would misread in a value. */
function checkValue(name: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new Error(`odoo.conf: ${name} must not contain a line break`);
  if (value !== value.trim()) throw new Error(`odoo.conf: ${name} must not start or end with whitespace`);
  return value;
}

function checkRequired(name: string, value: string): string {
  if (value === "") throw new Error(`odoo.conf: ${name} must not be empty`);
  return checkValue(name, value);
}

/** The text written for a secret: the value itself, or `${NAME}` for the entrypoint to fill in. */
function secretValue(name: string, value: OdooSecret, minLength = 1): string {
  if (typeof value === "string") {
    if (SECRET_REFERENCE.test(value))
      throw new Error(`odoo.conf: ${name} looks like a secret reference; pass { fromEnv } instead`);
    if (value.length < minLength)
      throw new Error(`odoo.conf: ${name} must be at least ${minLength} characters`);
    return checkValue(name, value);
  }
  const reference = `\${${value.fromEnv}}`;
  if (!SECRET_REFERENCE.test(reference))
    throw new Error(
      `odoo.conf: ${name} reference must name a LOOMWORKS_[A-Z0-9_]+ variable (got ${value.fromEnv})`,
    );
  return reference;
}

const MODULE_NAME = /^[a-z][a-z0-9_]*$/;

function checkPort(name: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`odoo.conf: ${name} must be an integer from 1 to 65535 (got ${port})`);
  return port;
}

export function renderOdooConfig(o: OdooConfigOptions): string {
  const threaded = o.mode === "threaded";
  const size = threaded ? odooThreadedSizing(o.cpu, o.memoryMb) : odooSizing(o.cpu, o.memoryMb);
  checkPort("db_port", o.dbPort);
  const modules = o.tenantFiles
    ? [...new Set([...(o.serverWideModules ?? ["base", "web"]), TENANTS_MODULE])]
    : (o.serverWideModules ?? ["base", "web"]);
  for (const m of modules) {
    if (!MODULE_NAME.test(m)) throw new Error(`odoo.conf: server_wide_modules: "${m}" is not a module name`);
  }
  return renderTemplate(loadTemplate("odoo.conf.tmpl"), {
    admin_passwd: secretValue("admin_passwd", o.adminPasswd, 16),
    db_host: checkRequired("db_host", o.dbHost),
    db_port: o.dbPort,
    db_user: checkRequired("db_user", o.dbUser),
    db_password: secretValue("db_password", o.dbPassword),
    db_sslmode: o.dbSslmode ?? "prefer",
    db_maxconn: size.dbMaxConn,
    http_interface: checkRequired("http_interface", o.httpInterface ?? "0.0.0.0"),
    http_port: checkPort("http_port", o.httpPort ?? ODOO_HTTP_PORT),
    gevent_port: checkPort("gevent_port", o.geventPort ?? ODOO_GEVENT_PORT),
    tenant_files: o.tenantFiles
      ? `${TENANT_MAP_OPTION} = ${checkRequired(TENANT_MAP_OPTION, o.tenantFiles.map)}\n` +
        `${TENANT_CREDENTIALS_OPTION} = ${checkRequired(TENANT_CREDENTIALS_OPTION, o.tenantFiles.credentials)}`
      : "; (no tenant map: the ERP lists and connects as stock Odoo)",
    data_dir: checkRequired("data_dir", o.dataDir),
    addons_path: checkRequired("addons_path", o.addonsPath),
    cpu: o.cpu,
    memory_mb: o.memoryMb,
    mode: threaded ? "threaded (development)" : "prefork",
    workers: size.workers,
    max_cron_threads: size.maxCronThreads,
    limit_memory_soft: size.limitMemorySoft,
    limit_memory_hard: size.limitMemoryHard,
    session_store: o.redisUrl ? "redis" : "filesystem",
    session_redis_url: o.redisUrl ? secretValue("session_redis_url", o.redisUrl) : "False",
    session_redis_prefix: checkRequired("session_redis_prefix", o.redisPrefix ?? "loomworks"),
    server_wide_modules: modules.join(","),
    log_level: o.logLevel ?? "info",
    logfile: o.logfile ? checkValue("logfile", o.logfile) : "",
  });
}

/** The `${NAME}` references of a rendered odoo.conf, by option (what the entrypoint must be given). */
export function secretReferences(conf: string): Record<string, string> {
  const refs: Record<string, string> = {};
  for (const [key, value] of Object.entries(parseOdooConfig(conf))) {
    const m = SECRET_REFERENCE.exec(value);
    if (m) refs[key] = m[1];
  }
  return refs;
}

/**
 * The `[options]` of an odoo.conf as strings (`key = value` lines; `;`/`#` comments and blank
 * lines skipped), for tests and drift checks. Later keys win, as in Python's configparser.
 */
export function parseOdooConfig(conf: string): Record<string, string> {
  const options: Record<string, string> = {};
  let section = "";
  for (const raw of conf.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith(";") || line.startsWith("#")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    if (section !== "options") continue;
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`odoo.conf: not a "key = value" line: ${line}`);
    options[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return options;
}
