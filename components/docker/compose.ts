/**
 * The Docker target as a Compose project, for hosts that run it without Pulumi
 * (`npm run compose -- --stack <s>`, docs/operations/docker.md#without-pulumi-docker-compose): a
 * `docker-compose.yml`, the development override `docker-compose.dev.yml`, an `.env.example` and
 * the configuration files the services mount, all from the stack's validated configuration and
 * the same renderers and container facts DockerPlatform uses (config.ts, containers.ts).
 *
 * No secret is rendered: every password, the repository passphrase, the webhook URL and the AI
 * provider keys come from `.env` (compose `secrets:` sourced from environment variables, or `${VAR}`
 * references), and `.env.example` names each one with SECRET_PLACEHOLDER as its value: every
 * service that receives a secret refuses to start while one is empty or still the placeholder
 * (composeLayout.ts). With `routerTls`, the certificate and key are mounted from host paths (`.env`,
 * default the stack's), never read. Pure: returns the files, writes nothing.
 */
import * as path from "node:path";
import * as yaml from "js-yaml";
import type { StackConfig } from "../../infra/config/schema";
import { sparesOption } from "../../lib/backup/schedule-defaults";
import { aiKeyNames } from "../../lib/odoo/aiKeys";
import { ERP_IMAGE } from "../../lib/odoo/image";
import { NOTIFY_ENV } from "../../lib/notify/settings";
import {
  NGINX_TLS,
  dockerNginxTls,
  dockerOdooConfOptions,
  renderDockerNginxConf,
  renderDockerOdooConf,
  renderDockerPgBackRestConf,
  renderDockerPostgresqlConf,
  renderDockerJobScript,
  renderDockerOpsSchedule,
  renderDockerTenantFiles,
} from "./config";
import {
  ADDONS_VARIABLE,
  CIPHER_PASS_STANDIN,
  DATABASES_VARIABLE,
  FILES,
  ROUTER_TLS_VARIABLES,
  MOUNTED,
  SECRET_PLACEHOLDER,
  SECRET_VARIABLES,
  erpSecretsCheckScript,
  pgbackrestSetupScript,
  type ComposeVariable,
  type SecretOption,
} from "./composeLayout";
import { offsiteStackDir } from "../offsite";
import { composeOffsite } from "./composeOffsite";
import {
  bind,
  composeProjectName,
  erpBuild,
  erpSecretChecks,
  erpService,
  nginxService,
  opsService,
  postgresService,
  projectResources,
  redisService,
  tlsFileDefaults,
  type ComposeContext,
} from "./composeServices";
import { erpCommand, erpEnvironment } from "./containers";

export const COMPOSE_FILE = "docker-compose.yml";
export const COMPOSE_DEV_FILE = "docker-compose.dev.yml";
export const ENV_EXAMPLE_FILE = ".env.example";

export type { ComposeVariable } from "./composeLayout";

export interface ComposeFile {
  /** Relative to the output directory. */
  path: string;
  content: string;
  /** Default 0644; the scripts the services run are 0755. */
  mode?: number;
}

export interface ComposeInput {
  /** The stack's name: the header of every file says where it came from. */
  stack: string;
  /** The Pulumi project's name (Pulumi.yaml): with the stack, the offsite repository's subdirectory. */
  project: string;
  config: StackConfig;
  /** The checkout (docker/Dockerfile, docker/postgres, docker/ops), relative to the output directory. */
  checkoutDir: string;
}

export interface ComposeRender {
  compose: Record<string, unknown>;
  devOverride: Record<string, unknown>;
  variables: ComposeVariable[];
  /** Every file to write: the two Compose files, `.env.example` and the mounted configuration. */
  files: ComposeFile[];
}

function variables(ctx: ComposeContext): ComposeVariable[] {
  const { config, checkout: checkoutDir } = ctx;
  const p = config.platform;
  const out: ComposeVariable[] = [
    {
      name: SECRET_VARIABLES.superuser,
      comment: "PostgreSQL superuser `postgres` (set at the first start, on an empty postgres_data volume)",
      placeholder: SECRET_PLACEHOLDER,
    },
    {
      name: SECRET_VARIABLES.replication,
      comment: "the replication role the PostgreSQL image creates with the others at the first start",
      placeholder: SECRET_PLACEHOLDER,
    },
    {
      name: SECRET_VARIABLES.monitor,
      comment: "the monitoring role (pg_monitor) the PostgreSQL image creates at the first start",
      placeholder: SECRET_PLACEHOLDER,
    },
    {
      name: SECRET_VARIABLES.erpDb,
      comment: `the ERP's own role \`${p.odoo.dbUser}\` (not a superuser; created at the first start)`,
      placeholder: SECRET_PLACEHOLDER,
    },
    {
      name: SECRET_VARIABLES.odooAdmin,
      comment: "Odoo's master password (admin_passwd: the database manager)",
      placeholder: SECRET_PLACEHOLDER,
    },
  ];
  if (p.backups.encryptionPassphrase !== undefined)
    out.push({
      name: SECRET_VARIABLES.backupCipher,
      comment:
        "pgBackRest repository passphrase (aes-256-cbc; backups.encryptionPassphrase): the backups are useless without it, keep a copy apart from the host",
      placeholder: SECRET_PLACEHOLDER,
    });
  out.push(...(ctx.offsite?.variables ?? []));
  if (p.notify.webhookUrl !== undefined)
    out.push({
      name: NOTIFY_ENV.webhookUrl,
      comment: "operator notifications' webhook URL (notify.webhookUrl; it may carry a token)",
      placeholder: SECRET_PLACEHOLDER,
    });
  for (const name of aiKeyNames(p.ai.keys))
    out.push({
      name,
      comment: "AI provider key (platform.ai.keys), in the ERP's environment",
      placeholder: SECRET_PLACEHOLDER,
    });
  out.push({
    name: DATABASES_VARIABLE,
    comment:
      "tenant databases the ERP updates at each start, comma-separated: empty until tenants exist (Compose provisions none)",
    placeholder: "",
  });
  if (p.routerTls)
    out.push(
      {
        name: ROUTER_TLS_VARIABLES.certFile,
        comment: `the router's certificate (chain, PEM) on this host, mounted read-only at ${NGINX_TLS.certFile}; default: routerTls.certFile`,
        placeholder: tlsFileDefaults(config, checkoutDir).certFile,
      },
      {
        name: ROUTER_TLS_VARIABLES.keyFile,
        comment: `its private key (PEM, keep it 0600), mounted as a Compose secret at ${NGINX_TLS.keyFile}; default: routerTls.keyFile`,
        placeholder: tlsFileDefaults(config, checkoutDir).keyFile,
      },
    );
  if (p.docker.development.addonsPath === undefined)
    out.push({
      name: ADDONS_VARIABLE,
      comment: `development override only: host path of the Loomworks addons checkout, mounted over ${ERP_IMAGE.addonsDir}`,
      placeholder: "/home/me/src/loomworks-addons",
    });
  return out;
}

/** `.env.example`: every variable the Compose files read, with its placeholder. */
export function renderEnvExample(stack: string, vars: readonly ComposeVariable[]): string {
  const lines = [
    `# Rendered by \`npm run compose -- --stack ${stack}\`. Copy to .env (mode 0600) and replace every value:`,
    `# a service does not start (exit 78) while one of its secrets is empty or still ${SECRET_PLACEHOLDER}.`,
    "# Secrets live only here: the Compose files reference them by name.",
  ];
  for (const v of vars) lines.push("", `# ${v.comment}`, `${v.name}=${v.placeholder}`);
  return `${lines.join("\n")}\n`;
}

function composeHeader(stack: string, file: string): string {
  return [
    `# Rendered by \`npm run compose -- --stack ${stack}\` from Pulumi.${stack}.yaml: edit the stack, then render again.`,
    `# ${file === COMPOSE_FILE ? "docker compose up -d" : `docker compose -f ${COMPOSE_FILE} -f ${COMPOSE_DEV_FILE} up -d`}`,
    "",
  ].join("\n");
}

/** The configuration files the services mount (every renderer DockerPlatform uses, or will). */
function mountedFiles(ctx: ComposeContext): ComposeFile[] {
  const p = ctx.config.platform;
  const odooConf = (development: boolean) => renderDockerOdooConf(dockerOdooConfOptions(p.odoo, development));
  const schedule = renderDockerOpsSchedule({
    schedule: p.backups.schedule,
    ...(p.quotas.checkSchedule ? { quotaCheckSchedule: p.quotas.checkSchedule } : {}),
    ...sparesOption(p.provisioning),
    undoRetentionDays: p.undo.retentionDays,
  });
  // Compose provisions no tenant: the ERP serves none (docs/operations/docker.md#tenants-without-pulumi).
  const tenantFiles = renderDockerTenantFiles([]).map((f) => ({
    path: `${FILES.tenantsDir}/${path.posix.basename(f.file)}`,
    content: f.content,
  }));
  return [
    {
      path: FILES.postgresqlConf,
      content: renderDockerPostgresqlConf({
        archiveTimeoutSeconds: p.archiveTimeoutSeconds,
        stanza: ctx.stanza,
      }),
    },
    {
      path: FILES.pgbackrestConf,
      content: renderDockerPgBackRestConf({
        stanza: ctx.stanza,
        retentionFull: p.backups.retentionFull,
        ...(ctx.encrypted ? { encryptionPassphrase: CIPHER_PASS_STANDIN } : {}),
        ...(ctx.offsite ? { offsite: ctx.offsite.repo } : {}),
      }),
    },
    {
      path: FILES.pgbackrestSetup,
      content: pgbackrestSetupScript(secretOptions(ctx), ctx.offsite?.install ?? []),
      mode: 0o755,
    },
    { path: FILES.erpSecretsCheck, content: erpSecretsCheckScript(erpSecretChecks(ctx)), mode: 0o755 },
    { path: FILES.odooConf, content: odooConf(false) },
    { path: FILES.odooDevConf, content: odooConf(true) },
    ...tenantFiles,
    { path: FILES.nginxConf, content: ctx.router.text },
    { path: FILES.nginxDevConf, content: routerOf(ctx.config, true).text },
    { path: `${FILES.nginxHtml}/404.html`, content: ctx.router.pages["404.html"] },
    { path: `${FILES.nginxHtml}/503.html`, content: ctx.router.pages["503.html"] },
    { path: FILES.schedule, content: schedule },
    { path: FILES.jobScript, content: renderDockerJobScript(), mode: 0o755 },
  ];
}

/** The pgbackrest.conf options filled from secret files at the containers' start. */
function secretOptions(ctx: ComposeContext): SecretOption[] {
  const repo1: SecretOption[] = ctx.encrypted
    ? [
        {
          option: "repo1-cipher-pass",
          file: MOUNTED.backupCipherPass,
          variable: SECRET_VARIABLES.backupCipher,
        },
      ]
    : [];
  return [...repo1, ...(ctx.offsite?.fill ?? [])];
}

function routerOf(config: StackConfig, development: boolean) {
  const p = config.platform;
  return renderDockerNginxConf({
    domain: p.domain,
    publicPort: p.docker.httpPort,
    tenants: config.tenants.map((t) => ({ subdomain: t.subdomain, state: t.state, preview: t.preview })),
    development,
    // No files hash: the certificate and key are mounted from the host, read anew when nginx restarts.
    ...(p.routerTls ? { tls: dockerNginxTls(p.routerTls) } : {}),
  });
}

/**
 * docker-compose.dev.yml: what `docker.development.enabled: true` gives under Pulumi. Its
 * environment merges key by key with the base file's, so the databases and AI keys stay as they are.
 */
function developmentOverride(ctx: ComposeContext): Record<string, unknown> {
  const p = ctx.config.platform;
  const dev = p.docker.development;
  const addons = dev.addonsPath ?? `\${${ADDONS_VARIABLE}:?set ${ADDONS_VARIABLE} in .env}`;
  const { [DATABASES_VARIABLE]: _databases, ...environment } = erpEnvironment({
    databases: [],
    updateModules: p.odoo.updateModules,
    debugpy: dev.debugpy,
  });
  return {
    services: {
      erp: {
        image: dev.image ?? p.odoo.image,
        ...erpBuild(ctx, "development"),
        command: erpCommand(true),
        environment,
        volumes: [bind(FILES.odooDevConf, ERP_IMAGE.confPath), `${addons}:${ERP_IMAGE.addonsDir}:ro`],
        // debugpy on 127.0.0.1 only, unless development.debugpy is false.
        ...(dev.debugpy ? { ports: [`127.0.0.1:${dev.debugpyPort}:${ERP_IMAGE.debugpyPort}`] } : {}),
        // No limits in development (0: none).
        cpus: 0,
        mem_limit: 0,
      },
      nginx: { volumes: [bind(FILES.nginxDevConf, ctx.router.paths.config)] },
    },
  };
}

export function renderCompose(input: ComposeInput): ComposeRender {
  const { config, stack } = input;
  const p = config.platform;
  const ctx: ComposeContext = {
    stack,
    config,
    checkout: input.checkoutDir,
    stanza: "loomworks",
    encrypted: p.backups.encryptionPassphrase !== undefined,
    notify: p.notify.webhookUrl !== undefined,
    router: routerOf(config, false),
    offsite: composeOffsite(config, offsiteStackDir(input.project, stack)),
  };
  const compose = {
    name: composeProjectName(p.docker.namePrefix),
    services: {
      postgres: postgresService(ctx),
      redis: redisService(ctx),
      erp: erpService(ctx),
      nginx: nginxService(ctx),
      ops: opsService(ctx),
    },
    ...projectResources(ctx),
  };
  const devOverride = developmentOverride(ctx);
  const vars = variables(ctx);
  const dump = (o: object): string => yaml.dump(o, { lineWidth: -1, noRefs: true, quotingType: '"' });
  const files: ComposeFile[] = [
    { path: COMPOSE_FILE, content: composeHeader(stack, COMPOSE_FILE) + dump(compose) },
    { path: COMPOSE_DEV_FILE, content: composeHeader(stack, COMPOSE_DEV_FILE) + dump(devOverride) },
    { path: ENV_EXAMPLE_FILE, content: renderEnvExample(stack, vars) },
    ...mountedFiles(ctx),
  ];
  return { compose, devOverride, variables: vars, files };
}
