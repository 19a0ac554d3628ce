/**
 * The services of the Compose project (compose.ts), one function each, from the container facts
 * DockerPlatform runs (containers.ts) and the project's layout (composeLayout.ts). No secret value
 * here: secrets are Compose `secrets:` (files under /run/secrets) or `${NAME}` references.
 */
import * as path from "node:path";
import type { StackConfig } from "../../infra/config/schema";
import { aiKeyNames } from "../../lib/odoo/aiKeys";
import { ERP_IMAGE } from "../../lib/odoo/image";
import { NOTIFY_ENV } from "../../lib/notify/settings";
import {
  DOCKER_VOLUMES,
  ERP_CONTAINER,
  OPS_CONTAINER,
  POSTGRES_CONTAINER,
  NGINX_TLS,
  containerName,
  dockerOpsCommand,
  dockerOpsEnv,
  redisSessionCommand,
  volumeName,
  type DockerNginxConf,
} from "./config";
import type { ComposeOffsite } from "./composeOffsite";
import {
  DATABASES_VARIABLE,
  FILES,
  MOUNTED,
  ROUTER_TLS_VARIABLES,
  SECRET_VARIABLES,
  pgbackrestSetupArguments,
  type SecretCheck,
} from "./composeLayout";
import {
  CHECKOUT_BUILDS,
  HEALTHCHECKS,
  POSTGRES_SHM_SIZE_MB,
  RESTART_POLICY,
  START_AFTER,
  STOP_TIMEOUT_SECONDS,
  VOLUME_MOUNTS,
  erpCommand,
  erpEnvironment,
  nginxCommand,
  nginxPorts,
  postgresCommand,
  postgresEnvironment,
  type DockerHealthcheck,
  type DockerRole,
} from "./containers";

type Service = Record<string, unknown>;

/** What every service builder needs. */
export interface ComposeContext {
  stack: string;
  config: StackConfig;
  /** The checkout, relative to the Compose files (build contexts). */
  checkout: string;
  stanza: string;
  /** The repository is encrypted (`backups.encryptionPassphrase`). */
  encrypted: boolean;
  /** A webhook is configured (`notify.webhookUrl`). */
  notify: boolean;
  /** The production variant's router (its paths are the development one's too). */
  router: DockerNginxConf;
  /** `backups.offsite` (composeOffsite.ts). */
  offsite: ComposeOffsite | undefined;
}

const seconds = (n: number): string => `${n}s`;

/** A Compose project name (lowercase letters, digits, `-` and `_`) from the containers' name prefix. */
export function composeProjectName(prefix: string): string {
  return prefix.toLowerCase().replace(/[^a-z0-9_-]/g, "-");
}

/** A path of the stack file (relative to the checkout) as the Compose files see it. */
const fromCheckout = (checkout: string, p: string): string =>
  path.posix.isAbsolute(p) ? p : path.posix.join(checkout, p);

/** `${NAME:?...}`: Compose refuses to start when the variable is unset or empty. */
export const requiredVariable = (name: string): string => `\${${name}:?set ${name} in .env}`;

/** The stack's certificate and key paths (`platform.routerTls`) as the Compose files see them. */
export function tlsFileDefaults(
  config: StackConfig,
  checkout: string,
): { certFile: string; keyFile: string } {
  const tls = config.platform.routerTls;
  if (!tls) throw new Error("platform.routerTls is not set");
  return { certFile: fromCheckout(checkout, tls.certFile), keyFile: fromCheckout(checkout, tls.keyFile) };
}

/** `${VARIABLE:-the stack's path}`: `.env` may point at the files elsewhere on the host. */
function routerTlsFiles(ctx: ComposeContext): { certFile: string; keyFile: string } | undefined {
  if (!ctx.config.platform.routerTls) return undefined;
  const stack = tlsFileDefaults(ctx.config, ctx.checkout);
  return {
    certFile: `\${${ROUTER_TLS_VARIABLES.certFile}:-${stack.certFile}}`,
    keyFile: `\${${ROUTER_TLS_VARIABLES.keyFile}:-${stack.keyFile}}`,
  };
}

export const bind = (file: string, target: string): string => `./${file}:${target}:ro`;

/** A command's words as Compose must see them: `$` doubled, so that no `$` is read as a variable. */
const literal = (words: readonly string[]): string[] => words.map((w) => w.replace(/\$/g, "$$$$"));

function healthcheck(h: DockerHealthcheck): Service {
  return {
    test: literal(h.test),
    interval: seconds(h.intervalSeconds),
    timeout: seconds(h.timeoutSeconds),
    start_period: seconds(h.startPeriodSeconds),
    retries: h.retries,
  };
}

/** Name, restart policy, graceful stop and health-gated start order: as DockerPlatform's containers. */
function common(ctx: ComposeContext, role: DockerRole): Service {
  const after = START_AFTER[role];
  return {
    container_name: containerName(ctx.config.platform.docker.namePrefix, role),
    hostname: role,
    restart: RESTART_POLICY,
    stop_grace_period: seconds(STOP_TIMEOUT_SECONDS[role]),
    ...(after.length > 0
      ? { depends_on: Object.fromEntries(after.map((r) => [r, { condition: "service_healthy" }])) }
      : {}),
  };
}

function namedVolumes(role: DockerRole): string[] {
  return VOLUME_MOUNTS[role].map((m) => `${m.volume}:${m.path}${m.readOnly ? ":ro" : ""}`);
}

/** The secrets pgbackrest-conf.sh reads (postgres and ops): the passphrases, the offsite keys. */
function pgbackrestSecrets(ctx: ComposeContext): Service[] {
  return [
    ...(ctx.encrypted ? [{ source: "backup_cipher_pass", target: MOUNTED.backupCipherPass }] : []),
    ...(ctx.offsite?.secrets ?? []).map((s) => ({ source: s.name, target: s.target })),
  ];
}

const rolesFile = (name: string): string => `${MOUNTED.rolesSecretsDir}/${name}`;

/** The role secrets the PostgreSQL container's first start reads (pgbackrest-conf.sh checks them). */
const POSTGRES_ROLE_SECRETS = [
  {
    source: "postgres_password",
    file: rolesFile("superuser-password"),
    variable: SECRET_VARIABLES.superuser,
  },
  {
    source: "replication_password",
    file: rolesFile("replication-password"),
    variable: SECRET_VARIABLES.replication,
  },
  { source: "monitor_password", file: rolesFile("monitor-password"), variable: SECRET_VARIABLES.monitor },
  { source: "erp_db_password", file: rolesFile("erp-password"), variable: SECRET_VARIABLES.erpDb },
] as const;

/** The ops container's own secret files (the passphrases and offsite keys are pgbackrest-conf.sh's). */
function opsSecretChecks(ctx: ComposeContext): SecretCheck[] {
  return [
    { file: OPS_CONTAINER.passwordFile, variable: SECRET_VARIABLES.superuser },
    ...(ctx.notify ? [{ file: OPS_CONTAINER.notifyUrlFile, variable: NOTIFY_ENV.webhookUrl }] : []),
  ];
}

/** `sh pgbackrest-conf.sh FILE VARIABLE ...`: the service's secrets checked, pgbackrest.conf written. */
const pgbackrestSetup = (checks: readonly SecretCheck[]): string =>
  ["sh", MOUNTED.pgbackrestSetup, ...pgbackrestSetupArguments(checks)].join(" ");

/** The ERP's secrets, checked by erp/secrets-check.sh before the image's entrypoint. */
export function erpSecretChecks(ctx: ComposeContext): SecretCheck[] {
  return [
    { file: ERP_CONTAINER.adminPasswdFile, variable: SECRET_VARIABLES.odooAdmin },
    { file: ERP_CONTAINER.dbPasswordFile, variable: SECRET_VARIABLES.erpDb },
    ...aiKeyNames(ctx.config.platform.ai.keys).map((variable) => ({ variable })),
  ];
}

export function postgresService(ctx: ComposeContext): Service {
  const p = ctx.config.platform;
  const image = p.docker.postgresImage
    ? { image: p.docker.postgresImage }
    : {
        image: CHECKOUT_BUILDS.postgres.tag(p.docker.namePrefix),
        build: checkoutBuild(ctx, "postgres"),
      };
  return {
    ...image,
    ...common(ctx, "postgres"),
    // The secrets checked and pgbackrest.conf written first (as root), then the image's own
    // entrypoint (initdb, then postgres as postgres).
    entrypoint: literal([
      "/bin/sh",
      "-c",
      `${pgbackrestSetup(POSTGRES_ROLE_SECRETS)} && exec docker-entrypoint.sh "$@"`,
      "postgres-start",
    ]),
    command: literal(postgresCommand()),
    environment: {
      ...postgresEnvironment({ stanza: ctx.stanza, passwordFile: rolesFile("superuser-password") }),
      // The image's initdb hook creates the ERP's role (and the replication and monitoring roles) from these files.
      LOOMWORKS_SECRETS_DIR: MOUNTED.rolesSecretsDir,
      LOOMWORKS_ERP_ROLE: p.odoo.dbUser,
    },
    secrets: [
      ...POSTGRES_ROLE_SECRETS.map((s) => ({ source: s.source, target: s.file })),
      ...pgbackrestSecrets(ctx),
    ],
    volumes: [
      ...namedVolumes("postgres"),
      bind(FILES.postgresqlConf, POSTGRES_CONTAINER.config),
      bind(FILES.pgbackrestConf, MOUNTED.pgbackrestConf),
      bind(FILES.pgbackrestSetup, MOUNTED.pgbackrestSetup),
      ...(ctx.offsite?.volumes ?? []),
    ],
    ports: [`127.0.0.1:${p.postgresPort}:${POSTGRES_CONTAINER.port}`],
    shm_size: `${POSTGRES_SHM_SIZE_MB}m`,
    healthcheck: healthcheck(HEALTHCHECKS.postgres),
  };
}

export function redisService(ctx: ComposeContext): Service {
  return {
    image: ctx.config.platform.docker.redisImage,
    ...common(ctx, "redis"),
    command: literal(redisSessionCommand()),
    healthcheck: healthcheck(HEALTHCHECKS.redis),
  };
}

function checkoutBuild(ctx: ComposeContext, image: keyof typeof CHECKOUT_BUILDS): Service {
  const b = CHECKOUT_BUILDS[image];
  return { context: path.posix.join(ctx.checkout, b.context), dockerfile: b.dockerfile };
}

/** The ERP image's build from the checkout, when the stack builds it (`odoo.addonsBuildContext`). */
export function erpBuild(ctx: ComposeContext, target: "production" | "development"): Service {
  const context = ctx.config.platform.odoo.addonsBuildContext;
  if (!context) return {};
  return {
    build: {
      ...checkoutBuild(ctx, "erp"),
      target,
      additional_contexts: { [CHECKOUT_BUILDS.erp.addonsContext]: fromCheckout(ctx.checkout, context) },
    },
  };
}

export function erpService(ctx: ComposeContext): Service {
  const odoo = ctx.config.platform.odoo;
  return {
    image: odoo.image,
    ...erpBuild(ctx, "production"),
    ...common(ctx, "erp"),
    // Compose only: the secrets from .env checked (erp/secrets-check.sh), then the image's entrypoint.
    entrypoint: literal([
      ...ERP_IMAGE.entrypoint.slice(0, -1),
      "/bin/sh",
      "-c",
      `sh ${MOUNTED.erpSecretsCheck} && exec ${ERP_IMAGE.entrypoint[ERP_IMAGE.entrypoint.length - 1]} "$@"`,
      "erp-start",
    ]),
    command: literal(erpCommand(false)),
    environment: {
      ...erpEnvironment({ databases: [], updateModules: odoo.updateModules, debugpy: false }),
      [DATABASES_VARIABLE]: `\${${DATABASES_VARIABLE}:-}`,
      ...Object.fromEntries(
        aiKeyNames(ctx.config.platform.ai.keys).map((name) => [name, requiredVariable(name)]),
      ),
    },
    secrets: [
      { source: "odoo_admin_passwd", target: ERP_CONTAINER.adminPasswdFile },
      { source: "erp_db_password", target: ERP_CONTAINER.dbPasswordFile },
    ],
    volumes: [
      ...namedVolumes("erp"),
      bind(FILES.odooConf, ERP_IMAGE.confPath),
      bind(FILES.tenantsDir, ERP_IMAGE.tenantsDir),
      bind(FILES.erpSecretsCheck, MOUNTED.erpSecretsCheck),
    ],
    // The limits odoo.conf's workers are sized from.
    cpus: odoo.cpu,
    mem_limit: `${odoo.memoryMb}m`,
    stop_signal: "SIGTERM",
    healthcheck: healthcheck(HEALTHCHECKS.erp),
  };
}

/**
 * nginx: with `platform.routerTls`, the certificate bind-mounted read-only and the key a Compose
 * secret (a read-only file mount too), both where DockerPlatform uploads them (NGINX_TLS).
 */
export function nginxService(ctx: ComposeContext): Service {
  const { docker, routerTls } = ctx.config.platform;
  const paths = ctx.router.paths;
  const tls = routerTlsFiles(ctx);
  return {
    image: docker.nginxImage,
    ...common(ctx, "nginx"),
    command: literal(nginxCommand(paths)),
    volumes: [
      bind(FILES.nginxConf, paths.config),
      bind(`${FILES.nginxHtml}/404.html`, `${paths.htmlDir}/404.html`),
      bind(`${FILES.nginxHtml}/503.html`, `${paths.htmlDir}/503.html`),
      // The long syntax: a relative path from .env is a path, never a volume's name.
      ...(tls ? [{ type: "bind", source: tls.certFile, target: NGINX_TLS.certFile, read_only: true }] : []),
    ],
    ...(tls ? { secrets: [{ source: "router_tls_key", target: NGINX_TLS.keyFile }] } : {}),
    ports: nginxPorts({
      httpPort: docker.httpPort,
      ...(routerTls ? { tlsPort: routerTls.port } : {}),
    }).map((p) => `${docker.bindAddress}:${p.external}:${p.internal}`),
    healthcheck: healthcheck(HEALTHCHECKS.nginx),
  };
}

/**
 * The ops container as DockerPlatform's (opsContainers.ts): the scheduler daemon over the CronJobs'
 * jobs through `loomworks-job` (config.ts), as root, on the PostgreSQL container's volumes and socket;
 * pgbackrest.conf is written at its start (Pulumi uploads it instead).
 */
export function opsService(ctx: ComposeContext): Service {
  const p = ctx.config.platform;
  return {
    image: CHECKOUT_BUILDS.ops.tag(p.docker.namePrefix),
    build: checkoutBuild(ctx, "ops"),
    ...common(ctx, "ops"),
    // Root: the jobs run pgBackRest as postgres themselves (runuser) and link the ERP's files.
    user: "0:0",
    entrypoint: literal([
      "/usr/bin/tini",
      "--",
      "/bin/sh",
      "-c",
      `${pgbackrestSetup(opsSecretChecks(ctx))} && exec "$@"`,
      "ops-start",
    ]),
    command: literal(dockerOpsCommand()),
    environment: dockerOpsEnv({
      stanza: ctx.stanza,
      retentionFull: p.backups.retentionFull,
      ...(ctx.notify
        ? {
            notify: {
              stack: ctx.stack,
              timeoutSeconds: p.notify.timeoutSeconds,
              attempts: p.notify.attempts,
            },
          }
        : {}),
    }),
    secrets: [
      { source: "postgres_password", target: OPS_CONTAINER.passwordFile },
      ...(ctx.notify ? [{ source: "notify_webhook_url", target: OPS_CONTAINER.notifyUrlFile }] : []),
      ...pgbackrestSecrets(ctx),
    ],
    volumes: [
      ...namedVolumes("ops"),
      bind(FILES.pgbackrestConf, MOUNTED.pgbackrestConf),
      bind(FILES.pgbackrestSetup, MOUNTED.pgbackrestSetup),
      ...(ctx.offsite?.volumes ?? []),
      bind(FILES.schedule, `${OPS_CONTAINER.stateDir}/scheduler/schedule.json`),
      bind(FILES.jobScript, OPS_CONTAINER.jobCommand),
    ],
    healthcheck: healthcheck(HEALTHCHECKS.ops),
  };
}

/** The top-level secrets (each from its `.env` variable), named volumes and network. */
export function projectResources(ctx: ComposeContext): Service {
  const prefix = ctx.config.platform.docker.namePrefix;
  const tls = routerTlsFiles(ctx);
  return {
    networks: { default: { name: ctx.config.platform.docker.networkName } },
    // The names DockerPlatform's volumes have.
    volumes: Object.fromEntries(DOCKER_VOLUMES.map((v) => [v, { name: volumeName(prefix, v) }])),
    secrets: {
      postgres_password: { environment: SECRET_VARIABLES.superuser },
      replication_password: { environment: SECRET_VARIABLES.replication },
      monitor_password: { environment: SECRET_VARIABLES.monitor },
      erp_db_password: { environment: SECRET_VARIABLES.erpDb },
      odoo_admin_passwd: { environment: SECRET_VARIABLES.odooAdmin },
      ...(ctx.encrypted ? { backup_cipher_pass: { environment: SECRET_VARIABLES.backupCipher } } : {}),
      ...(ctx.notify ? { notify_webhook_url: { environment: NOTIFY_ENV.webhookUrl } } : {}),
      ...(tls ? { router_tls_key: { file: tls.keyFile } } : {}),
      ...Object.fromEntries((ctx.offsite?.secrets ?? []).map((s) => [s.name, s.source])),
    },
  };
}
