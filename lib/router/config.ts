/**
 * The local router's nginx configuration
 * (docs/architecture.md#erp-and-routing), rendered from templates/nginx/: a
 * `map $host` from every declared tenant host to the database it serves (the tenant's subdomain;
 * `<sub>--preview` for its preview host) and a second one to the tenant's routing class. Active tenants are proxied (`/` to the ERP's HTTP port, `/websocket` to
 * its gevent port); suspended and archived tenants, and tenants under maintenance (a flag file,
 * see maintenance.ts: no reload needed), get a 503 page; unknown hosts and foreign domains a 404
 * page from a `default_server` that proxies nothing.
 *
 * Everything that reaches the configuration is validated here first (names, upstreams, paths),
 * so no input can add nginx syntax; rendering is deterministic (tenants sorted), so the text's
 * hash tells whether anything changed.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
import { loadTemplate, renderTemplate, renderTemplateFile } from "../templates/render";
import { TENANT_STATES } from "../registry/tenantState";
import { nginxStripLines } from "./forwarding";

/** The router's own pages: one template, the words of each (the marker lets tests tell them apart). */
const ERROR_PAGES = {
  "404": {
    title: "Not found",
    marker: "404 unknown host",
    heading: "No Loomworks workspace here",
    message:
      "There is no Loomworks ERP workspace at this address. Check the address you were given, or ask your\n" +
      "      administrator for your workspace's link.",
  },
  "503": {
    title: "Unavailable",
    marker: "503 tenant unavailable",
    heading: "This workspace is not available right now",
    message:
      "This Loomworks ERP workspace is paused or under maintenance. If maintenance is in progress, try again in\n" +
      "      a few minutes; otherwise, please contact your administrator.",
  },
} as const;

/**
 * `<sub>--preview.<domain>`: the preview host of a tenant (subdomains never contain `--`). It is
 * routed like the tenant (same ERP, same state) to the tenant's preview database `<sub>--preview`:
 * what Odoo's `dbfilter = ^%d$` selects for that host, `%d` being its first label. The Kubernetes
 * target routes preview hosts the same way (components/kubernetes/routes.ts).
 */
export const PREVIEW_SUFFIX = "--preview";
/** `restoring` routes like suspended (a static 503); a restore in progress uses maintenance.ts instead. */
export const ROUTER_TENANT_STATES = [...TENANT_STATES, "restoring"] as const;
export type RouterTenantState = (typeof ROUTER_TENANT_STATES)[number];
export const DEFAULT_LISTEN_ADDRESS = "127.0.0.1";
export const DEFAULT_CLIENT_MAX_BODY_SIZE = "128m";
/** One year: what HSTS preload lists ask for. */
export const DEFAULT_HSTS_MAX_AGE = 31_536_000;

export interface RouterTenant {
  /** The tenant's subdomain = its database name. */
  subdomain: string;
  state: RouterTenantState;
  /** Also route `<sub>--preview.<domain>` (to database `<sub>--preview`); default: RouterOptions.previews. */
  preview?: boolean;
}

export interface RouterOptions {
  /** The platform's state directory; the router lives in `<stateDir>/router`. Absolute. */
  stateDir: string;
  /** Tenants live at `<subdomain>.<domain>`. */
  domain: string;
  /** TCP port nginx listens on. */
  port: number;
  /** Address nginx listens on: an IPv4 address, `[IPv6]` or `*` (default 127.0.0.1). */
  listenAddress?: string;
  /**
   * The port clients use to reach the router (default: `port`; differs behind a port mapping).
   * Forwarded to the ERP in `Host` and `X-Forwarded-Host` unless it is 80, so the URLs the ERP
   * writes (`web.base.url`, redirects, e-mail links) carry it.
   */
  publicPort?: number;
  /** `host:port` of the ERP's HTTP port (Odoo 8069). */
  odooHttp: string;
  /** `host:port` of the ERP's WebSocket (gevent) port (Odoo 8072). */
  odooWebsocket: string;
  tenants: readonly RouterTenant[];
  /** Preview hosts for every tenant that does not set `preview` (default false). */
  previews?: boolean;
  /** `user` directive: the workers' system user, set only when nginx is started as root. */
  workerUser?: string;
  /** `worker_processes` (default "auto": one per CPU). */
  workerProcesses?: number | "auto";
  /** `client_max_body_size` (default 128m: attachment uploads). */
  clientMaxBodySize?: string;
  /** HTTPS on `tls.port`; the HTTP port then redirects tenants' hosts there. Absent: plain HTTP only. */
  tls?: RouterTls;
}

/** The router's HTTPS listener (a wildcard certificate for `*.<domain>`). */
export interface RouterTls {
  /** PEM certificate (chain) file, absolute. */
  certFile: string;
  /** PEM private key file of that certificate, absolute. */
  keyFile: string;
  /** TCP port nginx listens on for HTTPS. */
  port: number;
  /** The port clients use for HTTPS (default: `port`); the redirects point there. */
  publicPort?: number;
  /** `Strict-Transport-Security` max-age in seconds (default DEFAULT_HSTS_MAX_AGE; 0 tells browsers to forget). */
  hstsMaxAgeSeconds?: number;
  /**
   * sha256 (hex) of the certificate and key files, written into the configuration as a comment so
   * that a renewed certificate changes the configuration and `pulumi up` reloads nginx.
   */
  filesHash?: string;
}

/** Where the router keeps its files. All absolute. */
export interface RouterPaths {
  stateDir: string;
  /** `<stateDir>/router`: nginx's prefix directory. */
  dir: string;
  /** `<stateDir>/router/nginx.conf`: the configuration nginx runs. */
  config: string;
  /** `<stateDir>/router/html`: the 404 and 503 pages. */
  htmlDir: string;
  /** `<stateDir>/router/maintenance`: one empty file per tenant under maintenance. */
  maintenanceDir: string;
  logDir: string;
  errorLog: string;
  accessLog: string;
  /** nginx's own output while starting (before it opens its error log). */
  startupLog: string;
  runDir: string;
  pidFile: string;
  tempDir: string;
}

export function routerPaths(stateDir: string): RouterPaths {
  const root = path.resolve(stateDir);
  const dir = path.join(root, "router");
  const logDir = path.join(dir, "logs");
  const runDir = path.join(dir, "run");
  return {
    stateDir: root,
    dir,
    config: path.join(dir, "nginx.conf"),
    htmlDir: path.join(dir, "html"),
    maintenanceDir: path.join(dir, "maintenance"),
    logDir,
    errorLog: path.join(logDir, "error.log"),
    accessLog: path.join(logDir, "access.log"),
    startupLog: path.join(logDir, "startup.log"),
    runDir,
    pidFile: path.join(runDir, "nginx.pid"),
    tempDir: path.join(dir, "temp"),
  };
}

/**
 * The router's base URL: `http://<domain>:<port>/` (tenants: `http://<sub>.<domain>:<port>/`), or
 * `https://...` with the default port 443 when `scheme` is https.
 */
export function routerUrl(domain: string, port: number, scheme: "http" | "https" = "http"): string {
  const defaultPort = scheme === "https" ? 443 : 80;
  return port === defaultPort ? `${scheme}://${domain}/` : `${scheme}://${domain}:${port}/`;
}

// ---------------------------------------------------------------------------------------------
// Validation: every value that ends up in the configuration.

export interface RouterProblem {
  /** The input's name, e.g. `tenants[3].subdomain` or `odooHttp`. */
  property: string;
  reason: string;
}

/** One DNS label: RFC 1123, lowercase. */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_ANY_CASE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const MAX_HOST_LENGTH = 253;
/** Characters a path may have in the configuration (quoted there): no `"`, `$`, `\`, `;`, braces, `#`. */
const SAFE_PATH = /^\/[A-Za-z0-9 _./@+,:=~%-]*$/;
const SAFE_PATH_RULE =
  'may contain only letters, digits, spaces and _ . / @ + , : = ~ % - (no " $ \\ ; { } #)';
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const BODY_SIZE = /^[1-9][0-9]{0,5}[kKmMgG]?$/;

function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function isBracketedIPv6(s: string): boolean {
  return /^\[[0-9A-Fa-f:.]+\]$/.test(s) && s.includes(":");
}

function isDnsName(s: string, anyCase: boolean): boolean {
  const label = anyCase ? LABEL_ANY_CASE : LABEL;
  return s.length > 0 && s.length <= MAX_HOST_LENGTH && s.split(".").every((l) => label.test(l));
}

const isPort = (n: unknown): n is number =>
  Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;

/** Why `s` cannot be a tenant's subdomain in the router (undefined: it can). */
export function routerSubdomainProblem(s: unknown): string | undefined {
  if (typeof s !== "string") return "must be a string";
  if (!LABEL.test(s)) {
    return "must be a DNS label: 1 to 63 characters of a-z, 0-9 and inner hyphens, lowercase";
  }
  if (s.includes("--")) return `must not contain "--" (reserved for preview hosts <sub>${PREVIEW_SUFFIX})`;
  return undefined;
}

/** Why `s` cannot be an upstream `host:port` (undefined: it can). */
export function upstreamProblem(s: unknown): string | undefined {
  const rule = "must be host:port (a DNS name, an IPv4 address or [IPv6], and a port 1-65535)";
  if (typeof s !== "string") return rule;
  const m = /^(.+):([0-9]{1,5})$/.exec(s);
  if (!m || !isPort(Number(m[2]))) return rule;
  const host = m[1];
  const ok = isIPv4(host) || isBracketedIPv6(host) || (!/^[0-9.]+$/.test(host) && isDnsName(host, true));
  return ok ? undefined : rule;
}

/** Every problem with the options, each naming the input; empty when they can be rendered. */
export function routerOptionsProblems(o: RouterOptions): RouterProblem[] {
  const problems: RouterProblem[] = [];
  const add = (property: string, reason: string): void => {
    problems.push({ property, reason });
  };
  if (typeof o.stateDir !== "string" || !path.isAbsolute(o.stateDir)) {
    add("stateDir", "must be an absolute path");
  } else if (!SAFE_PATH.test(path.resolve(o.stateDir))) {
    add("stateDir", SAFE_PATH_RULE);
  }
  const domainOk = typeof o.domain === "string" && isDnsName(o.domain, false);
  if (!domainOk) {
    add(
      "domain",
      "must be a lowercase DNS name (labels of a-z, 0-9 and inner hyphens, at most 253 characters)",
    );
  }
  if (!isPort(o.port)) add("port", "must be an integer 1-65535");
  if (o.publicPort !== undefined && !isPort(o.publicPort)) add("publicPort", "must be an integer 1-65535");
  if (
    o.listenAddress !== undefined &&
    !(o.listenAddress === "*" || isIPv4(o.listenAddress) || isBracketedIPv6(o.listenAddress))
  ) {
    add("listenAddress", "must be an IPv4 address, [IPv6] or *");
  }
  for (const key of ["odooHttp", "odooWebsocket"] as const) {
    const problem = upstreamProblem(o[key]);
    if (problem) add(key, problem);
  }
  if (o.workerUser !== undefined && !USER_NAME.test(o.workerUser)) {
    add("workerUser", "must be a system user name");
  }
  if (
    o.workerProcesses !== undefined &&
    o.workerProcesses !== "auto" &&
    !(Number.isInteger(o.workerProcesses) && o.workerProcesses >= 1 && o.workerProcesses <= 256)
  ) {
    add("workerProcesses", 'must be "auto" or an integer 1-256');
  }
  if (o.clientMaxBodySize !== undefined && !BODY_SIZE.test(o.clientMaxBodySize)) {
    add("clientMaxBodySize", "must be a size such as 128m");
  }
  if (o.previews !== undefined && typeof o.previews !== "boolean") add("previews", "must be true or false");
  if (o.tls !== undefined) problems.push(...tlsOptionProblems(o.tls, o.port));
  if (!Array.isArray(o.tenants)) {
    add("tenants", "must be a list");
    return problems;
  }
  const seen = new Set<string>();
  o.tenants.forEach((t, i) => {
    const where = `tenants[${i}]`;
    if (typeof t !== "object" || t === null) {
      add(where, "must be { subdomain, state, preview? }");
      return;
    }
    const subProblem = routerSubdomainProblem(t.subdomain);
    if (subProblem) add(`${where}.subdomain`, `"${String(t.subdomain)}" ${subProblem}`);
    else if (seen.has(t.subdomain)) add(`${where}.subdomain`, `"${t.subdomain}" is declared twice`);
    else seen.add(t.subdomain);
    if (!ROUTER_TENANT_STATES.includes(t.state)) {
      add(
        `${where}.state`,
        `must be one of ${ROUTER_TENANT_STATES.join(", ")} (got ${JSON.stringify(t.state)})`,
      );
    }
    if (t.preview !== undefined && typeof t.preview !== "boolean") {
      add(`${where}.preview`, "must be true or false");
    }
    if (!subProblem && domainOk) {
      for (const { host } of tenantRoutes(t, o.domain, o.previews ?? false)) {
        const label = host.slice(0, host.indexOf("."));
        if (label.length > 63) {
          add(
            `${where}.subdomain`,
            `"${t.subdomain}": the preview host's label ${label} is longer than 63 characters`,
          );
        } else if (host.length > MAX_HOST_LENGTH) {
          add(
            `${where}.subdomain`,
            `"${t.subdomain}": host ${host} is longer than ${MAX_HOST_LENGTH} characters`,
          );
        }
      }
    }
  });
  return problems;
}

function tlsOptionProblems(tls: RouterTls, httpPort: number): RouterProblem[] {
  const problems: RouterProblem[] = [];
  const add = (property: string, reason: string): void => {
    problems.push({ property: `tls.${property}`, reason });
  };
  for (const key of ["certFile", "keyFile"] as const) {
    const file = tls[key];
    if (typeof file !== "string" || !path.isAbsolute(file)) add(key, "must be an absolute path");
    else if (!SAFE_PATH.test(file)) {
      add(key, SAFE_PATH_RULE);
    }
  }
  if (!isPort(tls.port)) add("port", "must be an integer 1-65535");
  else if (tls.port === httpPort) add("port", `must differ from the HTTP port (both are ${httpPort})`);
  if (tls.publicPort !== undefined && !isPort(tls.publicPort))
    add("publicPort", "must be an integer 1-65535");
  if (tls.filesHash !== undefined && !/^[0-9a-f]{64}$/.test(tls.filesHash)) {
    add("filesHash", "must be a sha256 in hex");
  }
  const maxAge = tls.hstsMaxAgeSeconds;
  if (maxAge !== undefined && !(Number.isInteger(maxAge) && maxAge >= 0 && maxAge <= 2 ** 31 - 1)) {
    add("hstsMaxAgeSeconds", "must be an integer 0-2147483647");
  }
  return problems;
}

/** Throws one error listing every problem (each naming its input). */
export function assertRouterOptions(o: RouterOptions): void {
  const problems = routerOptionsProblems(o);
  if (problems.length > 0) {
    throw new Error(
      `invalid router options:\n${problems.map((p) => `  ${p.property}: ${p.reason}`).join("\n")}`,
    );
  }
}

/**
 * The host names routed to a tenant and the database each serves: `<sub>.<domain>` → `<sub>`, and
 * with a preview `<sub>--preview.<domain>` → `<sub>--preview`.
 */
export function tenantRoutes(
  tenant: RouterTenant,
  domain: string,
  previewsDefault = false,
): Array<{ host: string; database: string }> {
  const routes = [{ host: `${tenant.subdomain}.${domain}`, database: tenant.subdomain }];
  if (tenant.preview ?? previewsDefault) {
    const database = `${tenant.subdomain}${PREVIEW_SUFFIX}`;
    routes.push({ host: `${database}.${domain}`, database });
  }
  return routes;
}

/** Why `name` is neither a tenant's database (its subdomain) nor its preview database (undefined: it is one). */
export function routerDatabaseProblem(name: unknown): string | undefined {
  if (typeof name === "string" && name.endsWith(PREVIEW_SUFFIX)) {
    return routerSubdomainProblem(name.slice(0, -PREVIEW_SUFFIX.length));
  }
  return routerSubdomainProblem(name);
}

// ---------------------------------------------------------------------------------------------
// Hash sizing

export interface HashSizing {
  /** `*_hash_max_size`: the largest table nginx may try. */
  maxSize: number;
  /** `*_hash_bucket_size`: bytes per bucket, a multiple of the 64-byte cache line. */
  bucketSize: number;
}

const align = (n: number, to: number): number => Math.ceil(n / to) * to;
/** Bytes one key takes in an nginx hash bucket (NGX_HASH_ELT_SIZE on 64-bit: value pointer, length, name). */
export const nginxHashEltSize = (key: string): number => 8 + align(Buffer.byteLength(key) + 2, 8);

/**
 * Sizes an nginx hash (map or server_names) for these keys so it is built in one try:
 *
 * - bucket size: room for 8 keys as long as the longest (plus the bucket's end marker), so at the
 *   table sizes below no bucket overflows (a bucket gets 0.5 keys on average; 9 or more in one is
 *   a ~1e-9 event per bucket). nginx allocates buckets by their real content, so a generous
 *   bucket size costs no memory.
 * - max size: twice the number of keys (at least 512). Above 10,000 nginx tries only the last
 *   1,000 sizes up to max size; below it starts from the smallest size that could fit.
 */
export function hashSizing(keys: readonly string[]): HashSizing {
  const longest = keys.reduce((m, k) => Math.max(m, nginxHashEltSize(k)), nginxHashEltSize("_"));
  return {
    maxSize: Math.max(512, 2 * keys.length),
    bucketSize: Math.max(64, align(8 * longest + 8, 64)),
  };
}

// ---------------------------------------------------------------------------------------------
// Rendering

export interface RenderedRouterConfig {
  /** nginx.conf */
  text: string;
  /** Static pages for `<stateDir>/router/html`. */
  pages: { "404.html": string; "503.html": string };
  tenantCount: number;
  hostCount: number;
  mapHash: HashSizing;
  serverNamesHash: HashSizing;
  /** sha256 of the configuration text and the pages. */
  hash: string;
}

/** sha256 (hex) of a configuration text and its pages: what the provider compares for drift. */
export function routerConfigHash(text: string, pages?: Record<string, string>): string {
  const h = createHash("sha256").update(text);
  for (const name of Object.keys(pages ?? {}).sort()) h.update(`\0${name}\0`).update(pages![name]);
  return h.digest("hex");
}

/**
 * `$host` or `$host:<port>`: the host the ERP is told it was reached at (never the client's header),
 * and the host HTTP requests are redirected to. The port is left out when it is the scheme's default.
 */
function forwardedHost(publicPort: number, defaultPort = 80): string {
  return publicPort === defaultPort ? "$host" : `$host:${publicPort}`;
}

/** The configuration lines of the HTTPS listener. */
function tlsLines(
  tls: RouterTls,
  address: string,
  domain: string,
): { listen: string; hsts: string; settings: string } {
  const listen = `${address}:${tls.port} ssl`;
  const maxAge = tls.hstsMaxAgeSeconds ?? DEFAULT_HSTS_MAX_AGE;
  return {
    listen,
    // A wildcard certificate covers every tenant's subdomain: so does the policy.
    hsts: `add_header Strict-Transport-Security "max-age=${maxAge}; includeSubDomains" always;`,
    settings: renderTemplate(loadTemplate("nginx/tls-settings.conf.tmpl"), {
      tlsListen: `${address}:${tls.port}`,
      domain,
      certFile: tls.certFile,
      keyFile: tls.keyFile,
      filesHash: tls.filesHash ?? "not given",
    }).trimEnd(),
  };
}

/** The nginx configuration for these options. Throws (naming each bad input) when they are invalid. */
export function renderRouterConfig(o: RouterOptions): RenderedRouterConfig {
  assertRouterOptions(o);
  const paths = routerPaths(o.stateDir);
  const tenants = [...o.tenants].sort((a, b) =>
    a.subdomain < b.subdomain ? -1 : a.subdomain > b.subdomain ? 1 : 0,
  );
  const previewsDefault = o.previews ?? false;
  const databaseMap: string[] = [];
  const classMap: string[] = [];
  const serverNames: string[] = [];
  const hosts: string[] = [];
  for (const t of tenants) {
    const routes = tenantRoutes(t, o.domain, previewsDefault);
    for (const { host, database } of routes) {
      databaseMap.push(`        ${host} ${database};`);
      classMap.push(`        ${host} ${t.state};`);
      hosts.push(host);
    }
    serverNames.push(`        server_name ${routes.map((r) => r.host).join(" ")};`);
  }
  const address = o.listenAddress ?? DEFAULT_LISTEN_ADDRESS;
  const listen = `${address}:${o.port}`;
  const tls = o.tls && tlsLines(o.tls, address, o.domain);
  const publicPort = o.tls ? (o.tls.publicPort ?? o.tls.port) : (o.publicPort ?? o.port);
  const mapHash = hashSizing(hosts);
  const serverNamesHash = hashSizing([...hosts, "_"]);
  const tenantServer =
    tenants.length === 0
      ? "\n    # No tenants declared: every host gets the 404 page.\n"
      : renderTemplate(loadTemplate("nginx/tenant-server.conf.tmpl"), {
          tenantListen: tls ? tls.listen : listen,
          hstsHeader: tls ? `\n        ${tls.hsts}` : "",
          hstsHeaderInLocation: tls ? `\n            ${tls.hsts}` : "",
          serverNames: serverNames.join("\n"),
          odooHttp: o.odooHttp,
          odooWebsocket: o.odooWebsocket,
          maintenanceDir: paths.maintenanceDir,
          htmlDir: paths.htmlDir,
          forwardedHost: forwardedHost(publicPort, o.tls ? 443 : 80),
          publicPort,
          strippedHeaders: nginxStripLines("            "),
        }) +
        (tls
          ? renderTemplate(loadTemplate("nginx/tenant-redirect.conf.tmpl"), {
              listen,
              serverNames: serverNames.join("\n"),
              redirectHost: forwardedHost(publicPort, 443),
            })
          : "");
  const text = renderTemplate(loadTemplate("nginx/nginx.conf.tmpl"), {
    tenantCount: tenants.length,
    hostCount: hosts.length,
    domain: o.domain,
    userDirective: o.workerUser
      ? `user ${o.workerUser};`
      : "# user: not set; the workers run as the user that started nginx.",
    workerProcesses: o.workerProcesses ?? "auto",
    pidFile: paths.pidFile,
    errorLog: paths.errorLog,
    accessLog: paths.accessLog,
    tempDir: paths.tempDir,
    htmlDir: paths.htmlDir,
    mapHashMaxSize: mapHash.maxSize,
    mapHashBucketSize: mapHash.bucketSize,
    serverNamesHashMaxSize: serverNamesHash.maxSize,
    serverNamesHashBucketSize: serverNamesHash.bucketSize,
    clientMaxBodySize: o.clientMaxBodySize ?? DEFAULT_CLIENT_MAX_BODY_SIZE,
    databaseMap: databaseMap.join("\n"),
    classMap: classMap.join("\n"),
    listen,
    defaultTlsListen: tls ? `\n        listen ${tls.listen} default_server;` : "",
    tlsSettings: tls ? tls.settings : "",
    tenantServer,
  });
  const pages = {
    "404.html": renderTemplateFile("nginx/error-page.html.tmpl", ERROR_PAGES["404"]),
    "503.html": renderTemplateFile("nginx/error-page.html.tmpl", ERROR_PAGES["503"]),
  };
  return {
    text,
    pages,
    tenantCount: tenants.length,
    hostCount: hosts.length,
    mapHash,
    serverNamesHash,
    hash: routerConfigHash(text, pages),
  };
}
