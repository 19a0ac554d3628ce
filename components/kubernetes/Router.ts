/**
 * Routing of the Kubernetes target
 * (docs/architecture.md#erp-and-routing): every tenant's host to the ERP, through the
 * Gateway API (default) or an Ingress (`routing: ingress`), with TLS from one wildcard
 * certificate issued by cert-manager through ACME DNS-01.
 *
 * - cert-manager `ClusterIssuer` (Let's Encrypt production or staging, DNS-01 solver from config)
 *   and a `Certificate` for `*.<domain>` and `<domain>`: Let's Encrypt issues wildcard names only
 *   through DNS-01, and one wildcard certificate covers every tenant and preview host, so adding a
 *   tenant never waits for (or is rate-limited by) an issuance.
 * - Gateway API: a `Gateway` with HTTPS listeners for `*.<domain>` and `<domain>` terminating TLS
 *   with the certificate's Secret and HTTP listeners that redirect to HTTPS; an `HTTPRoute` per
 *   tenant host (`/websocket` → the ERP's gevent Service port 8072, the rest → 8069; tenants not
 *   active → the 503 backend); a catch-all `HTTPRoute` for `*.<domain>` to the 404 backend, so an
 *   unknown host never reaches the ERP.
 * - Ingress: the same table as Ingress rules (exact hosts before the `*.<domain>` rule and the
 *   default backend, both the 404 page), tenant hosts split over several objects past
 *   `hostsPerIngress` so no object nears etcd's size limit.
 * - The error-pages backend (nginx-unprivileged: 404 and 503 pages) with its NetworkPolicy.
 *
 * Header rules: Odoo runs with `proxy_mode` and picks the tenant database from the host, so the
 * host it sees must be the one that was routed, never one the client sent. Each HTTPRoute *sets*
 * (overwrites) `X-Forwarded-Host` to its own exact host name, `X-Forwarded-Proto: https` (routes
 * attach only to the HTTPS listeners) and `X-Odoo-dbfilter: ^<database>$`. The client address
 * (`X-Forwarded-For`) can only be appended by the Gateway implementation itself: see
 * docs/operations/routing.md ("Kubernetes") for what the Gateway or ingress controller must do.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Dns01Config, KubernetesConfig } from "../../infra/config/kubernetes";
import {
  ERROR_PAGES_HEALTH_PORT,
  ERROR_PAGES_LABELS,
  LABEL_HOST_KIND,
  LABEL_TENANT,
  NAMES,
  NOT_FOUND_PORT,
  ODOO_GEVENT_PORT,
  ODOO_HTTP_PORT,
  UNAVAILABLE_PORT,
  contentHash,
  objectLabels,
  proxyPeer,
  restrictedContainerSecurity,
  type ProxyPods,
} from "./common";
import {
  CERT_MANAGER_API_VERSION,
  GATEWAY_API_VERSION,
  type CertificateSpec,
  type ClusterIssuerSpec,
  type Dns01Solver,
  type GatewaySpec,
  type HttpRouteFilter,
  type HttpRouteRule,
  type HttpRouteSpec,
  type ObjectMeta,
} from "./crds";
import { ERROR_PAGES_ROOT, errorPagesFiles } from "./errorPages";
import { routingTable, type HostRoute, type RouterTenant } from "./routes";
import { gatewayRemovedHeaders } from "../../lib/router/forwarding";

export type { HostRoute, RouterTenant };

/** Listener names of the Gateway. */
export const LISTENERS = {
  https: "https",
  httpsApex: "https-apex",
  http: "http",
  httpApex: "http-apex",
} as const;

/** Tenant hosts per Ingress object: ~400 bytes a host keeps an object far below etcd's 1.5 MiB. */
export const DEFAULT_HOSTS_PER_INGRESS = 1000;

/** Routes through the Gateway API: a Gateway of the installed implementation's GatewayClass. */
export interface GatewayRouting {
  mode: "gateway";
  gatewayClassName: string;
}

/** Routes through Ingress objects of the installed controller's IngressClass. */
export interface IngressRouting {
  mode: "ingress";
  ingressClassName: string;
  /** Controller-specific annotations (HTTPS redirect, timeouts, header handling). */
  annotations: Record<string, string>;
}

export interface KubernetesRouterArgs {
  routing: GatewayRouting | IngressRouting;
  /** The wildcard certificate's ClusterIssuer (created with the DNS-01 solver when `createIssuer`). */
  tls: KubernetesConfig["tls"];
  /** nginx (unprivileged, listening on 8080+) serving the 404 and 503 pages. */
  errorPagesImage: string;
  /** Where the Gateway's or ingress controller's proxy pods run: the only source allowed to reach the error pages. */
  proxy: ProxyPods;
  /** Tenants live at `<subdomain>.<domain>`. */
  domain: string;
  /** The platform's namespace (OdooDeployment.namespace). */
  namespace: pulumi.Input<string>;
  /** Every declared tenant (any state): active ones are routed to the ERP, the others to the 503 page. */
  tenants: readonly RouterTenant[];
  /** The ERP's Services (OdooDeployment.httpService / websocketService). */
  erp: { httpService: pulumi.Input<string>; websocketService: pulumi.Input<string> };
  /** routing: ingress — tenant hosts per Ingress object (default DEFAULT_HOSTS_PER_INGRESS). */
  hostsPerIngress?: number;
}

/** cert-manager's DNS-01 solver for the configured provider. */
export function dns01Solver(dns01: Dns01Config): Dns01Solver {
  switch (dns01.provider) {
    case "cloudflare":
      return { cloudflare: { apiTokenSecretRef: dns01.apiTokenSecretRef } };
    case "route53": {
      const { provider: _provider, ...route53 } = dns01;
      return { route53 };
    }
    case "clouddns": {
      const { provider: _provider, ...cloudDNS } = dns01;
      return { cloudDNS };
    }
    case "azuredns": {
      const { provider: _provider, managedIdentityClientID, ...azure } = dns01;
      return {
        azureDNS: {
          ...azure,
          ...(managedIdentityClientID !== undefined
            ? { managedIdentity: { clientID: managedIdentityClientID } }
            : {}),
        },
      };
    }
    case "digitalocean":
      return { digitalocean: { tokenSecretRef: dns01.tokenSecretRef } };
    case "rfc2136": {
      const { provider: _provider, ...rfc2136 } = dns01;
      return { rfc2136 };
    }
  }
}

/** The request headers an HTTPRoute sets (overwriting whatever the client sent) for one host. */
export function forwardedHeaders(route: Pick<HostRoute, "host" | "database">): HttpRouteFilter {
  return {
    type: "RequestHeaderModifier",
    requestHeaderModifier: {
      set: [
        { name: "X-Forwarded-Host", value: route.host },
        { name: "X-Forwarded-Proto", value: "https" },
        { name: "X-Odoo-dbfilter", value: `^${route.database}$` },
      ],
      remove: gatewayRemovedHeaders(),
    },
  };
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The routing of every tenant host to the ERP (or the error pages), with the wildcard certificate. */
export class KubernetesRouter extends pulumi.ComponentResource {
  /** The routing table: each tenant (and preview) host and its backend. */
  readonly routes: HostRoute[];
  readonly issuerName: string;
  readonly certificateSecretName: string = NAMES.certificateSecret;
  /** routing: gateway. */
  readonly gatewayName?: string;
  /** routing: ingress — the Ingress objects, first the one holding the defaults. */
  readonly ingressNames: string[] = [];
  /** The error-pages Service (ports NOT_FOUND_PORT and UNAVAILABLE_PORT). */
  readonly errorPagesService: string = NAMES.errorPages;

  constructor(name: string, args: KubernetesRouterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:kubernetes:Router", name, {}, opts);
    const { tls, domain, namespace } = args;
    const parent = { parent: this };
    this.routes = routingTable(domain, args.tenants);
    const wildcard = `*.${domain}`;

    // --- certificate -----------------------------------------------------------------------
    this.issuerName = tls.issuerName;
    if (tls.createIssuer) {
      const dns01 = tls.dns01;
      if (!dns01) throw new Error("kubernetes.tls.dns01 is required to create the ClusterIssuer");
      const spec: ClusterIssuerSpec = {
        acme: {
          email: tls.acmeEmail,
          server: tls.acmeServer,
          privateKeySecretRef: { name: `${tls.issuerName}-account-key` },
          solvers: [{ selector: { dnsZones: [domain] }, dns01: dns01Solver(dns01) }],
        },
      };
      const metadata: ObjectMeta = { name: tls.issuerName, labels: objectLabels() };
      new k8s.apiextensions.CustomResource(
        `${name}-issuer`,
        { apiVersion: CERT_MANAGER_API_VERSION, kind: "ClusterIssuer", metadata, spec },
        parent,
      );
    }
    const certificateSpec: CertificateSpec = {
      secretName: NAMES.certificateSecret,
      dnsNames: [wildcard, domain],
      issuerRef: { name: tls.issuerName, kind: "ClusterIssuer", group: "cert-manager.io" },
      privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
      secretTemplate: { labels: objectLabels() },
    };
    const certificateMeta: ObjectMeta = { name: NAMES.certificate, namespace, labels: objectLabels() };
    new k8s.apiextensions.CustomResource(
      `${name}-certificate`,
      {
        apiVersion: CERT_MANAGER_API_VERSION,
        kind: "Certificate",
        metadata: certificateMeta,
        spec: certificateSpec,
      },
      parent,
    );

    // --- error pages -------------------------------------------------------------------------
    this.errorPages(name, args, namespace);

    // --- routes ------------------------------------------------------------------------------
    if (args.routing.mode === "gateway") {
      this.gatewayName = NAMES.gateway;
      this.gateway(name, args, args.routing, wildcard);
    } else {
      this.ingress(name, args, args.routing, wildcard);
    }
    this.registerOutputs({});
  }

  private errorPages(
    name: string,
    args: Pick<KubernetesRouterArgs, "errorPagesImage" | "proxy">,
    namespace: pulumi.Input<string>,
  ): void {
    const parent = { parent: this };
    const files = errorPagesFiles();
    const configMapName = `${NAMES.errorPagesConfigPrefix}-${contentHash(JSON.stringify(files))}`;
    new k8s.core.v1.ConfigMap(
      `${name}-error-pages-config`,
      { metadata: { name: configMapName, namespace, labels: objectLabels(ERROR_PAGES_LABELS) }, data: files },
      parent,
    );
    const probe = { httpGet: { path: "/healthz", port: ERROR_PAGES_HEALTH_PORT }, periodSeconds: 10 };
    new k8s.apps.v1.Deployment(
      `${name}-error-pages`,
      {
        metadata: { name: NAMES.errorPages, namespace, labels: objectLabels(ERROR_PAGES_LABELS) },
        spec: {
          replicas: 2,
          selector: { matchLabels: ERROR_PAGES_LABELS },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          template: {
            metadata: { labels: objectLabels(ERROR_PAGES_LABELS) },
            spec: {
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 101,
                runAsGroup: 101,
                seccompProfile: { type: "RuntimeDefault" },
              },
              containers: [
                {
                  name: "nginx",
                  image: args.errorPagesImage,
                  // nginx itself, without the image's entrypoint scripts (they edit files under /etc).
                  command: ["nginx", "-g", "daemon off;"],
                  ports: [
                    { name: "not-found", containerPort: NOT_FOUND_PORT },
                    { name: "unavailable", containerPort: UNAVAILABLE_PORT },
                    { name: "health", containerPort: ERROR_PAGES_HEALTH_PORT },
                  ],
                  readinessProbe: probe,
                  livenessProbe: { ...probe, periodSeconds: 20 },
                  resources: {
                    requests: { cpu: "10m", memory: "16Mi" },
                    limits: { cpu: "200m", memory: "64Mi" },
                  },
                  securityContext: restrictedContainerSecurity(),
                  volumeMounts: [
                    { name: "config", mountPath: "/etc/nginx/conf.d", readOnly: true },
                    { name: "pages", mountPath: ERROR_PAGES_ROOT, readOnly: true },
                    { name: "tmp", mountPath: "/tmp" },
                  ],
                },
              ],
              volumes: [
                {
                  name: "config",
                  configMap: { name: configMapName, items: [{ key: "default.conf", path: "default.conf" }] },
                },
                {
                  name: "pages",
                  configMap: {
                    name: configMapName,
                    items: [
                      { key: "404.html", path: "404.html" },
                      { key: "503.html", path: "503.html" },
                    ],
                  },
                },
                { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
              ],
            },
          },
        },
      },
      parent,
    );
    new k8s.core.v1.Service(
      `${name}-error-pages-service`,
      {
        metadata: { name: NAMES.errorPages, namespace, labels: objectLabels(ERROR_PAGES_LABELS) },
        spec: {
          type: "ClusterIP",
          selector: ERROR_PAGES_LABELS,
          ports: [
            { name: "not-found", port: NOT_FOUND_PORT, targetPort: NOT_FOUND_PORT, protocol: "TCP" },
            { name: "unavailable", port: UNAVAILABLE_PORT, targetPort: UNAVAILABLE_PORT, protocol: "TCP" },
          ],
        },
      },
      parent,
    );
    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-error-pages-pdb`,
      {
        metadata: { name: NAMES.errorPages, namespace, labels: objectLabels(ERROR_PAGES_LABELS) },
        spec: { minAvailable: 1, selector: { matchLabels: ERROR_PAGES_LABELS } },
      },
      parent,
    );
    new k8s.networking.v1.NetworkPolicy(
      `${name}-error-pages-from-proxy`,
      {
        metadata: { name: "error-pages-from-proxy", namespace, labels: objectLabels() },
        spec: {
          podSelector: { matchLabels: ERROR_PAGES_LABELS },
          policyTypes: ["Ingress"],
          ingress: [
            {
              from: [proxyPeer(args.proxy)],
              ports: [
                { protocol: "TCP", port: NOT_FOUND_PORT },
                { protocol: "TCP", port: UNAVAILABLE_PORT },
              ],
            },
          ],
        },
      },
      parent,
    );
  }

  private gateway(name: string, args: KubernetesRouterArgs, routing: GatewayRouting, wildcard: string): void {
    const { domain, namespace, erp } = args;
    const parent = { parent: this };
    const className = routing.gatewayClassName;
    const allowedRoutes = { namespaces: { from: "Same" as const }, kinds: [{ kind: "HTTPRoute" }] };
    const tls = {
      mode: "Terminate" as const,
      certificateRefs: [{ group: "" as const, kind: "Secret" as const, name: NAMES.certificateSecret }],
    };
    const gatewaySpec: GatewaySpec = {
      gatewayClassName: className,
      listeners: [
        { name: LISTENERS.https, hostname: wildcard, port: 443, protocol: "HTTPS", tls, allowedRoutes },
        { name: LISTENERS.httpsApex, hostname: domain, port: 443, protocol: "HTTPS", tls, allowedRoutes },
        { name: LISTENERS.http, hostname: wildcard, port: 80, protocol: "HTTP", allowedRoutes },
        { name: LISTENERS.httpApex, hostname: domain, port: 80, protocol: "HTTP", allowedRoutes },
      ],
    };
    const gateway = new k8s.apiextensions.CustomResource(
      `${name}-gateway`,
      {
        apiVersion: GATEWAY_API_VERSION,
        kind: "Gateway",
        metadata: { name: NAMES.gateway, namespace, labels: objectLabels() } satisfies ObjectMeta,
        spec: gatewaySpec,
      },
      parent,
    );
    const routeOpts = { parent: this, dependsOn: [gateway] };
    const httpRoute = (resourceName: string, meta: ObjectMeta, spec: HttpRouteSpec) =>
      new k8s.apiextensions.CustomResource(
        resourceName,
        { apiVersion: GATEWAY_API_VERSION, kind: "HTTPRoute", metadata: meta, spec },
        routeOpts,
      );
    const https = [{ name: NAMES.gateway, sectionName: LISTENERS.https }];

    for (const route of this.routes) {
      const rules: HttpRouteRule[] =
        route.backend === "erp"
          ? [
              {
                matches: [{ path: { type: "PathPrefix", value: "/websocket" } }],
                filters: [forwardedHeaders(route)],
                backendRefs: [{ name: erp.websocketService, port: ODOO_GEVENT_PORT }],
              },
              {
                matches: [{ path: { type: "PathPrefix", value: "/" } }],
                filters: [forwardedHeaders(route)],
                backendRefs: [{ name: erp.httpService, port: ODOO_HTTP_PORT }],
              },
            ]
          : [
              {
                matches: [{ path: { type: "PathPrefix", value: "/" } }],
                backendRefs: [{ name: NAMES.errorPages, port: UNAVAILABLE_PORT }],
              },
            ];
      httpRoute(
        `${name}-${route.routeName}`,
        {
          name: route.routeName,
          namespace,
          labels: objectLabels({ [LABEL_TENANT]: route.tenant, [LABEL_HOST_KIND]: route.kind }),
        },
        { parentRefs: https, hostnames: [route.host], rules },
      );
    }

    // Every other host of the domain (and the apex): the 404 page, never the ERP. Exact host
    // names of the tenant routes take precedence over this wildcard.
    httpRoute(
      `${name}-${NAMES.defaultRoute}`,
      { name: NAMES.defaultRoute, namespace, labels: objectLabels() },
      {
        parentRefs: [
          { name: NAMES.gateway, sectionName: LISTENERS.https },
          { name: NAMES.gateway, sectionName: LISTENERS.httpsApex },
        ],
        hostnames: [wildcard, domain],
        rules: [{ backendRefs: [{ name: NAMES.errorPages, port: NOT_FOUND_PORT }] }],
      },
    );
    httpRoute(
      `${name}-${NAMES.httpsRedirectRoute}`,
      { name: NAMES.httpsRedirectRoute, namespace, labels: objectLabels() },
      {
        parentRefs: [
          { name: NAMES.gateway, sectionName: LISTENERS.http },
          { name: NAMES.gateway, sectionName: LISTENERS.httpApex },
        ],
        rules: [
          {
            filters: [{ type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } }],
          },
        ],
      },
    );
  }

  private ingress(name: string, args: KubernetesRouterArgs, routing: IngressRouting, wildcard: string): void {
    const { domain, namespace, erp } = args;
    const className = routing.ingressClassName;
    const perObject = args.hostsPerIngress ?? DEFAULT_HOSTS_PER_INGRESS;
    if (!(Number.isInteger(perObject) && perObject > 0))
      throw new Error("hostsPerIngress must be a positive integer");

    const service = (svc: pulumi.Input<string>, port: number) => ({
      service: { name: svc, port: { number: port } },
    });
    const notFound = service(NAMES.errorPages, NOT_FOUND_PORT);
    const unavailable = service(NAMES.errorPages, UNAVAILABLE_PORT);
    const hostRule = (route: HostRoute): k8s.types.input.networking.v1.IngressRule => ({
      host: route.host,
      http: {
        paths:
          route.backend === "erp"
            ? [
                {
                  path: "/websocket",
                  pathType: "Prefix",
                  backend: service(erp.websocketService, ODOO_GEVENT_PORT),
                },
                { path: "/", pathType: "Prefix", backend: service(erp.httpService, ODOO_HTTP_PORT) },
              ]
            : [{ path: "/", pathType: "Prefix", backend: unavailable }],
      },
    });
    const catchAll = (host: string): k8s.types.input.networking.v1.IngressRule => ({
      host,
      http: { paths: [{ path: "/", pathType: "Prefix", backend: notFound }] },
    });
    const tls = [{ hosts: [wildcard, domain], secretName: NAMES.certificateSecret }];
    const annotations = routing.annotations;

    const groups = chunks(this.routes, perObject);
    if (groups.length === 0) groups.push([]);
    groups.forEach((group, i) => {
      const objectName = i === 0 ? NAMES.ingress : `${NAMES.ingress}-${i + 1}`;
      this.ingressNames.push(objectName);
      const rules = group.map(hostRule);
      new k8s.networking.v1.Ingress(
        i === 0 ? `${name}-ingress` : `${name}-ingress-${i + 1}`,
        {
          metadata: {
            name: objectName,
            namespace,
            labels: objectLabels(),
            ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
          },
          spec: {
            ingressClassName: className,
            tls,
            ...(i === 0
              ? { defaultBackend: notFound, rules: [...rules, catchAll(wildcard), catchAll(domain)] }
              : { rules }),
          },
        },
        { parent: this },
      );
    });
  }
}
