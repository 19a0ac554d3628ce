/**
 * What each stack key does, by full path, for the generated reference of docs/configuration.md
 * (./reference.ts). test/unit/config-docs.test.ts fails when a key of the schemas has no entry here
 * or an entry names no key. Rules and defaults are not repeated: the reference reads them from the
 * schemas; a rule between keys (checked in a schema's preprocess step) is stated here.
 */

/** `{ key: text }` under `prefix` as `{ "prefix.key": text }`. */
function under(prefix: string, entries: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(entries).map(([key, text]) => [`${prefix}.${key}`, text]));
}

const LIMITS = {
  maxUsers: "Active internal ERP users (`res_users`: active and not share); a trigger refuses one more.",
  maxStorageGb: "Database size plus filestore; warning at 80 %, read-only at 100 % (scheduled check).",
  maxAiOperationsDaily: "AI operations (`begin_operation` calls) per UTC day.",
  maxSnapshots:
    "Declared snapshots allowed (checked at preview); runtime snapshots beyond it are pruned, oldest first.",
};

const SECRET_REF = {
  name: "Name of the Secret (in cert-manager's cluster resource namespace).",
  key: "Key of the Secret holding the value.",
};

function secretRef(prefix: string, what: string): Record<string, string> {
  return { [prefix]: what, ...under(prefix, SECRET_REF) };
}

const K8S = "platform.kubernetes";

export const CONFIG_DESCRIPTIONS: Readonly<Record<string, string>> = {
  ...under("platform", {
    target:
      "Where the platform runs: `local` (this machine; `Pulumi.dev.yaml`), `kubernetes` (`Pulumi.prod.yaml`), `docker` (one Docker host).",
    domain: "Tenants live at `<subdomain>.<domain>`; a subdomain plus the domain is at most 253 characters.",
    stateDir:
      "local: directory of the cluster, backup repository, router, scheduler and filestores; relative to the project directory.",
    postgresPort: "local: the cluster's TCP port.",
    routerPort: "local: nginx's port (tenant URLs). Must differ from `postgresPort`.",
    routerTls:
      "local and docker: HTTPS on the router with a wildcard certificate; the HTTP port then redirects tenants' hosts to HTTPS. Absent: plain HTTP.",
    "routerTls.certFile":
      "PEM certificate (chain) naming every tenant host (`*.<domain>`); relative to the project directory. Checked at preview.",
    "routerTls.keyFile":
      "PEM private key of `certFile`, unencrypted; checked against the certificate at preview.",
    "routerTls.port":
      "nginx's HTTPS port (tenant URLs become `https://<sub>.<domain>:<port>/`; 443 drops it); docker: the host port published to the container's 443, on `docker.bindAddress`.",
    "routerTls.hstsMaxAgeSeconds":
      "`Strict-Transport-Security: max-age` (with `includeSubDomains`) on every HTTPS answer; 0 tells browsers to forget it.",
    odooHttp: "Where the router sends a tenant's requests (the ERP's HTTP port).",
    odooWebsocket: "Where the router sends `/websocket` (the ERP's gevent port).",
    archiveTimeoutSeconds:
      "PostgreSQL `archive_timeout`: the longest a commit waits to be archived (the RPO).",
    backups: "The pgBackRest repository next to the database (repo1) and, optionally, the offsite one.",
    "backups.retentionFull":
      "Full backups kept (`repo1-retention-full`); older ones and their WAL are expired.",
    "backups.encryptionPassphrase":
      "Secret (`pulumi config set --secret --path`); sets repository encryption (aes-256-cbc). Never shown in messages.",
    "backups.schedule":
      "local: when the scheduler daemon runs each job (UTC); a key left out keeps its default.",
    "backups.schedule.full": "Full backup (default `0 1 * * 0`, Sunday 01:00), then `expire`.",
    "backups.schedule.diff": "Differential backup (default `0 1 * * 1-6`), then `expire`.",
    "backups.schedule.verify": "`pgbackrest verify` (default `0 3 * * 0`).",
    "backups.schedule.autoSnapshots":
      "Runtime `auto` snapshots of every active tenant (default `0 */6 * * *`).",
    "backups.offsite":
      "A second, offsite pgBackRest repository (repo2): every backup is taken into both, archive-push writes WAL to both, `expire` and `verify` cover both, and a restore falls back to it when repo1 is lost ([offsite backups](operations/backup-and-restore.md#offsite-repository)).",
    "backups.offsite.type":
      "`s3` (S3-compatible object store), `sftp` (pgBackRest's native SFTP: pgBackRest 2.46 or later, refused at preview on older ones) or `path` (a mounted directory: NFS, an sshfs mount).",
    "backups.offsite.path":
      "Repository path: the mount point (`path`, which must exist: it is never created), the path inside the bucket (`s3`) or on the SFTP host (`sftp`).",
    "backups.offsite.retentionFull":
      "Full backups kept offsite (`repo2-retention-full`), independent of `backups.retentionFull`.",
    "backups.offsite.encryptionPassphrase":
      "Secret; encrypts the offsite repository (aes-256-cbc). Default: `backups.encryptionPassphrase` (so an encrypted repo1 means an encrypted repo2).",
    "backups.offsite.endpoint": "s3: the endpoint's host (optionally `:port`), reached over HTTPS.",
    "backups.offsite.bucket": "s3: the bucket.",
    "backups.offsite.region": "s3: the region (any value the server accepts, e.g. `us-east-1`).",
    "backups.offsite.accessKey": "s3: access key id. Secret.",
    "backups.offsite.secretKey": "s3: secret access key. Secret.",
    "backups.offsite.uriStyle":
      "s3: `host` (bucket in the host name) or `path` (bucket in the path: most self-hosted servers).",
    "backups.offsite.verifyTls": "s3: verify the endpoint's TLS certificate.",
    "backups.offsite.host": "sftp: the SFTP host.",
    "backups.offsite.port": "sftp: its SSH port.",
    "backups.offsite.user": "sftp: the user pgBackRest logs in as (key authentication only).",
    "backups.offsite.privateKey":
      "sftp: the private key itself (secret); written next to pgbackrest.conf (local), into the pgbackrest.conf Secret (kubernetes).",
    "backups.offsite.privateKeyFile": "sftp: or the path of the private key file where pgBackRest runs.",
    "backups.offsite.hostKeyFingerprint":
      "sftp: the host key's digest in hex (`hostKeyHashType`); pgBackRest refuses any other host key.",
    "backups.offsite.hostKeyHashType": "sftp: the digest of `hostKeyFingerprint`.",
    "backups.offsite.knownHostsFile": "sftp: or a known_hosts file holding the host's key (strict checking).",
    undo: "Undo capture inside every tenant database.",
    "undo.excludeTables":
      "Tables never captured, besides the built-in noisy ones: names or `*` patterns, optionally `schema.`-qualified.",
    "undo.retentionDays": "Days the change log of ended operations is kept (pruned by the quota-check job).",
    quotas: "The storage quota check.",
    "quotas.checkSchedule": "Cron (UTC) of the storage check (default `*/10 * * * *`).",
    provisioning:
      "Spare tenant databases made ahead of time, so that creating a tenant renames one instead of copying its template ([tenant provisioning](operations/tenant-provisioning.md#spare-databases)).",
    "provisioning.spares":
      "Ready spares kept per template by the scheduled `spares` job (0 to 20). 0 (default): no job runs and every tenant is copied from its template.",
    "provisioning.sparesSchedule":
      "Cron (UTC) of the `spares` job, which tops each template up to `spares` ready ones (default `*/5 * * * *`; used only when `spares` > 0).",
    notify:
      "Operator notifications: a JSON POST per event (storage warning or read-only, failed backup or verify, restore finished or failed) from the jobs on every target.",
    "notify.webhookUrl":
      "Secret (`pulumi config set --secret --path`; it may carry a token): where the notifications go. Absent: none are sent. Never shown in messages or logs.",
    "notify.timeoutSeconds": "How long one delivery attempt may take.",
    "notify.attempts":
      "Delivery attempts in all: network errors, timeouts, 5xx and 429 are retried with backoff (1 s, 2 s, 4 s, ...); any other 4xx is not.",
    odoo: "The ERP server: [platform.odoo](#platformodoo).",
    docker: "The docker target: [platform.docker](#platformdocker).",
    kubernetes:
      "The kubernetes target: [platform.kubernetes](#platformkubernetes); required when `target` is `kubernetes`.",
    ai: "The AI providers' API keys the ERP reads from its environment ([AI provider keys](operations/erp.md#ai-provider-keys)).",
    "ai.keys":
      "Environment variable name → API key, e.g. `OPENAI_API_KEY`. Secrets (`pulumi config set --secret --path`); kubernetes: the Secret `loomworks-ai-keys`, docker: the container's environment, local: the 0600 `<stateDir>/odoo/ai.env`. Names the platform sets (`PATH`, `LOOMWORKS_*`, `PG*`, ...) are refused.",
    credentialRotation:
      "A label whose change rotates the superuser's, the ERP role's and every tenant role's password ([credential rotation](operations/credential-rotation.md)).",
    templates: "Template databases tenants are copied from, by name.",
    "templates.<name>": "Exactly one of `fromDump`, `fromCommand`.",
    "templates.<name>.fromDump": "A plain SQL dump loaded into the template.",
    "templates.<name>.fromCommand":
      "The ERP initializer, run as the template's builder role; `{db}` is the database, e.g. `odoo -d {db} -i base --without-demo=all --stop-after-init`.",
  }),

  ...under("platform.odoo", {
    image: "The ERP image (docker/Dockerfile) the docker and kubernetes targets run.",
    addonsBuildContext:
      "Path of the Loomworks addons checkout: the image build's `--build-context addons=<path>`.",
    cpu: "CPUs of one ERP server (container limit): workers = 2 × CPU + 1.",
    memoryMb: "Memory of one ERP server (container limit), MiB: the workers' hard limits share 80 % of it.",
    redisUrl: "Session store; the docker and kubernetes targets default to their own Redis.",
    dbUser: "The ERP's own database role: not a superuser, a member of no tenant role.",
    updateModules:
      "Modules updated (`-u`) in every tenant database at each start, besides `-u all` on a new image.",
    serverWideModules: "odoo.conf `server_wide_modules` (the platform adds `loomworks_tenants`).",
    logLevel: "odoo.conf `log_level`.",
  }),

  ...under("platform.docker", {
    host: "Docker daemon; default: the local one (`DOCKER_HOST` or `/var/run/docker.sock`).",
    namePrefix: "Prefix of container and volume names (`<prefix>-erp`, `<prefix>_odoo_data`, ...).",
    networkName: "The Docker network of the containers.",
    bindAddress: "Host address nginx's port is published on.",
    httpPort: "Host port of nginx (the tenants' URLs).",
    postgresImage: "A prebuilt PostgreSQL 15 + pgBackRest image; default: built from docker/postgres.",
    opsImage:
      "A prebuilt ops image (the scheduled jobs and restores, docker/ops); default: built from docker/ops on the host.",
    redisImage: "The session store's image.",
    nginxImage: "The router's image.",
    builder: "buildx builder that builds the images on the host.",
    development: "A development variant of the ERP container.",
    "development.enabled": "Mount the addons live, run with `--dev=all`.",
    "development.addonsPath": "Host path of the addons checkout; required when `enabled`.",
    "development.debugpy": "Run the server under debugpy (published on 127.0.0.1 only).",
    "development.debugpyPort": "debugpy's port; must differ from `httpPort`.",
    "development.image": "The image's `development` target; default: the ERP image.",
  }),

  ...under(K8S, {
    namespace: "Namespace of the ERP, Redis, the error pages, the Gateway or Ingress and the certificate.",
    createNamespace: "Create the namespace (labelled for Pod Security); false: it exists already.",
    podSecurity: "Pod Security Standard enforced on a created namespace.",
    image: "The Loomworks ERP image (Odoo 18 + Loomworks addons).",
    imagePullPolicy: "Pull policy of the platform's containers; default: Kubernetes' own.",
    imagePullSecrets: "Secrets (in the namespace) to pull the images with.",
    addonsPath:
      "`addons_path` inside the image; the default is the image's layout: its Loomworks addons, the platform's server-wide addons (keep `/opt/loomworks/platform-addons`: without it the ERP serves no tenant), Odoo's own.",
    erpUser:
      "Numeric user and group the ERP runs as (the image's non-root user); also the filestore's fsGroup, and the user of the template builds and the filestore jobs.",
    "erpUser.uid": "User id; the default is the image's `odoo` user (101).",
    "erpUser.gid": "Group id; the default is the image's `odoo` group (101).",
    routing: "Gateway API `HTTPRoute`s or an `Ingress`.",
    gatewayClassName:
      "The GatewayClass of the installed Gateway API implementation; required with `routing: gateway`.",
    ingressClassName: "The IngressClass of the installed controller; required with `routing: ingress`.",
    ingressAnnotations:
      "`routing: ingress`: controller-specific annotations (HTTPS redirect, timeouts, headers).",
    proxy:
      "Where the Gateway's or ingress controller's proxy pods run: the only source allowed to reach the ERP.",
    "proxy.namespace": "Their namespace.",
    "proxy.podLabels": "Their labels (default: any pod of the namespace).",
    tls: "The wildcard certificate (cert-manager, ACME DNS-01).",
    "tls.acmeEmail": "Contact address of the ACME account.",
    "tls.acmeServer": "`production` or `staging` (Let's Encrypt), or another ACME directory's URL.",
    "tls.issuerName":
      "Name of the cert-manager ClusterIssuer (cluster-wide); default `loomworks-<namespace>-letsencrypt[-staging]`; required with `createIssuer: false`.",
    "tls.createIssuer": "Create the ClusterIssuer; false: use the existing `issuerName`.",
    "tls.dns01": "The DNS-01 solver, chosen by `provider`; required when `createIssuer` is true.",
    "tls.dns01.provider": "The DNS provider; its keys follow.",
    ...secretRef(
      "tls.dns01[cloudflare].apiTokenSecretRef",
      "A Cloudflare API token with Zone:Read and DNS:Edit.",
    ),
    "tls.dns01[route53].region": "AWS region.",
    "tls.dns01[route53].hostedZoneID": "The hosted zone (cert-manager finds it when left out).",
    "tls.dns01[route53].role":
      "An IAM role to assume; without keys cert-manager uses its ambient credentials.",
    "tls.dns01[route53].accessKeyID": "Access key id; only together with `secretAccessKeySecretRef`.",
    ...secretRef(
      "tls.dns01[route53].secretAccessKeySecretRef",
      "The secret access key; only with `accessKeyID`.",
    ),
    "tls.dns01[clouddns].project": "Google Cloud project.",
    "tls.dns01[clouddns].hostedZoneName": "The managed zone (cert-manager finds it when left out).",
    ...secretRef(
      "tls.dns01[clouddns].serviceAccountSecretRef",
      "A service-account key; without it cert-manager uses Workload Identity.",
    ),
    "tls.dns01[azuredns].subscriptionID": "Azure subscription.",
    "tls.dns01[azuredns].resourceGroupName": "Resource group of the zone.",
    "tls.dns01[azuredns].hostedZoneName": "The DNS zone (cert-manager finds it when left out).",
    "tls.dns01[azuredns].environment": "Azure cloud.",
    "tls.dns01[azuredns].managedIdentityClientID": "Client id of the managed identity cert-manager uses.",
    ...secretRef("tls.dns01[digitalocean].tokenSecretRef", "A DigitalOcean API token."),
    "tls.dns01[rfc2136].nameserver": "The authoritative server accepting dynamic updates.",
    "tls.dns01[rfc2136].tsigKeyName": "TSIG key name; only together with `tsigSecretSecretRef`.",
    "tls.dns01[rfc2136].tsigAlgorithm": "TSIG algorithm.",
    ...secretRef("tls.dns01[rfc2136].tsigSecretSecretRef", "The TSIG secret; only with `tsigKeyName`."),
    replicas: "ERP replicas: the HorizontalPodAutoscaler's range.",
    "replicas.min": "Fewest replicas.",
    "replicas.max": "Most replicas; at least `min`.",
    resources: "The ERP container's resources.",
    "resources.requests": "Requests; each at most the limit.",
    "resources.requests.cpu": "CPU request.",
    "resources.requests.memory": "Memory request.",
    "resources.limits": "Limits (odoo.conf's workers and memory limits are sized from them).",
    "resources.limits.cpu": "CPU limit.",
    "resources.limits.memory": "Memory limit.",
    autoscaling: "The HorizontalPodAutoscaler's targets.",
    "autoscaling.cpuPercent": "Average CPU use aimed at.",
    "autoscaling.memoryPercent": "Average memory use aimed at.",
    "autoscaling.scaleDownStabilizationSeconds": "How long the autoscaler waits before removing replicas.",
    internetEgressPorts: "TCP ports the ERP may reach on the internet (AI APIs: 443; add 587 for SMTP).",
    filestore: "The ReadWriteMany volume of the tenants' filestores.",
    "filestore.storageClass": "Its StorageClass (must offer ReadWriteMany).",
    "filestore.size": "Its size.",
    redis: "The session store (so that scaling keeps users logged in).",
    "redis.image": "Redis image.",
    "redis.maxMemory": "Redis `maxmemory`.",
    errorPagesImage: "nginx (unprivileged, on 8080+) serving the 404 and 503 pages.",
    postgres: "The PostgreSQL StatefulSet.",
    "postgres.image":
      "PostgreSQL 15 + pgBackRest built from docker/postgres; default: `postgres:15-pgbackrest` next to the ERP image.",
    "postgres.storageClass":
      "StorageClass of the three volumes (default: the cluster's); must allow expansion to grow them.",
    "postgres.dataSize": "Data volume; raising it expands the claim in place.",
    "postgres.walArchiveSize": "WAL archive volume.",
    "postgres.backupsSize": "Backup repository volume.",
    "postgres.resources": "The PostgreSQL container's resources.",
    "postgres.resources.requests": "Requests; each at most the limit.",
    "postgres.resources.requests.cpu": "CPU request.",
    "postgres.resources.requests.memory": "Memory request.",
    "postgres.resources.limits": "Limits.",
    "postgres.resources.limits.cpu": "CPU limit.",
    "postgres.resources.limits.memory": "Memory limit.",
    "postgres.exporterImage": "postgres_exporter image (default: the upstream image).",
    "postgres.adminEndpoint":
      "Where the machine running `pulumi up` reaches this PostgreSQL (e.g. through `kubectl port-forward`); required as soon as tenants are declared.",
    "postgres.adminSslMode": "sslmode of that connection (a port-forward already tunnels through TLS).",
    ops: "The scheduled jobs' and restore Jobs' image.",
    "ops.image": "Built from docker/ops; default: `ops:<the ERP image's tag>` next to the ERP image.",
    "ops.restoreScratchSize": "Size limit of a restore Job's scratch volume.",
    monitoring: "Prometheus operator objects (ServiceMonitor, PodMonitor, PrometheusRule).",
    "monitoring.enabled": "Declare them.",
    "monitoring.namespace": "Namespace of Prometheus (allowed to scrape the exporter).",
    "monitoring.labels": "Labels the Prometheus operator selects the objects by.",
    "monitoring.pushgatewayUrl":
      "Pushgateway the ops jobs push their outcomes to (a plain env value: no credentials in it); absent, the job alerts never fire.",
  }),

  ...under("tiers.<tier>", LIMITS),

  ...under("tenants.<subdomain>", {
    tier: "The tier whose limits apply.",
    adminEmail: "Login of the ERP admin user created with the tenant.",
    state:
      "`active`, `suspended` (connections refused, router answers 503) or `archived` (as suspended; data kept for `retentionDays`).",
    template: "The template (declared in `platform.templates`) the database is copied from.",
    limits: "Overrides of the tier's limits.",
    "limits.maxUsers": LIMITS.maxUsers,
    "limits.maxStorageGb": LIMITS.maxStorageGb,
    "limits.maxAiOperationsDaily": LIMITS.maxAiOperationsDaily,
    "limits.maxSnapshots": LIMITS.maxSnapshots,
    dbServer:
      "Accepted for a later multi-cluster placement; every tenant is on the platform's one cluster today.",
    snapshots:
      "Declared snapshots, one Snapshot resource each, at most `maxSnapshots`; local target only: kubernetes and docker refuse them (why, and runtime snapshots instead: [kubernetes](operations/kubernetes.md#snapshots), [docker](operations/docker.md#snapshots)).",
    "snapshots.<name>": "A snapshot taken on the next `pulumi up`.",
    restore:
      "Bring this tenant alone back to a point in time: exactly one of `snapshot`, `time`, `lsn`. A new target is a new restore.",
    "restore.snapshot":
      "A snapshot declared in this tenant's `snapshots` (not on kubernetes: restore to a runtime snapshot's `lsn` there).",
    "restore.time": "Every transaction committed at or before this time.",
    "restore.lsn": "Every WAL record before this LSN.",
    forceDestroy: "Allow removing an archived tenant's entry before its retention ends.",
    retentionDays: "Days an archived tenant's data is kept.",
    preview: "Also route `<subdomain>--preview.<domain>` to the database `<subdomain>--preview`.",
    credentialRotation: "A label whose change rotates this tenant role's password only.",
  }),
};
