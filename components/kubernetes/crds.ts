/**
 * TypeScript shapes of the custom resources the Kubernetes components declare (Gateway API v1,
 * cert-manager v1): only the fields used here, written from the published API references, so a
 * misspelt field fails `tsc` (@pulumi/kubernetes types custom resources as `any`). The rendered
 * objects are also validated against the full OpenAPI schemas in the unit tests.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { SecretKeyRef } from "../../infra/config/kubernetes";

type In<T> = pulumi.Input<T>;

export interface ObjectMeta {
  name: In<string>;
  namespace?: In<string>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Gateway API (gateway.networking.k8s.io/v1)

export const GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1";

export interface GatewayListener {
  name: string;
  hostname?: string;
  port: number;
  protocol: "HTTP" | "HTTPS";
  tls?: {
    mode: "Terminate";
    certificateRefs: { group?: ""; kind?: "Secret"; name: In<string>; namespace?: In<string> }[];
  };
  allowedRoutes?: {
    namespaces?: { from: "Same" | "All" | "Selector" };
    kinds?: { group?: string; kind: string }[];
  };
}

export interface GatewaySpec {
  gatewayClassName: string;
  listeners: GatewayListener[];
}

export interface ParentRef {
  group?: "gateway.networking.k8s.io";
  kind?: "Gateway";
  name: In<string>;
  namespace?: In<string>;
  sectionName?: string;
}

export interface HttpHeader {
  name: string;
  value: string;
}

export type HttpRouteFilter =
  | {
      type: "RequestHeaderModifier";
      requestHeaderModifier: { set?: HttpHeader[]; add?: HttpHeader[]; remove?: string[] };
    }
  | {
      type: "RequestRedirect";
      requestRedirect: {
        scheme?: "http" | "https";
        hostname?: string;
        port?: number;
        statusCode?: 301 | 302;
      };
    };

export interface HttpBackendRef {
  group?: "";
  kind?: "Service";
  name: In<string>;
  namespace?: In<string>;
  port: number;
  weight?: number;
}

export interface HttpRouteRule {
  matches?: { path?: { type: "PathPrefix" | "Exact"; value: string } }[];
  filters?: HttpRouteFilter[];
  backendRefs?: HttpBackendRef[];
}

export interface HttpRouteSpec {
  parentRefs: ParentRef[];
  hostnames?: string[];
  rules: HttpRouteRule[];
}

// ---------------------------------------------------------------------------------------------
// cert-manager (cert-manager.io/v1)

export const CERT_MANAGER_API_VERSION = "cert-manager.io/v1";

export interface Dns01Solver {
  cloudflare?: { apiTokenSecretRef: SecretKeyRef };
  route53?: {
    region?: string;
    hostedZoneID?: string;
    role?: string;
    accessKeyID?: string;
    secretAccessKeySecretRef?: SecretKeyRef;
  };
  cloudDNS?: { project: string; hostedZoneName?: string; serviceAccountSecretRef?: SecretKeyRef };
  azureDNS?: {
    subscriptionID: string;
    resourceGroupName: string;
    hostedZoneName?: string;
    environment?: string;
    managedIdentity?: { clientID: string };
  };
  digitalocean?: { tokenSecretRef: SecretKeyRef };
  rfc2136?: {
    nameserver: string;
    tsigKeyName?: string;
    tsigAlgorithm?: string;
    tsigSecretSecretRef?: SecretKeyRef;
  };
}

export interface ClusterIssuerSpec {
  acme: {
    email: string;
    server: string;
    privateKeySecretRef: { name: string };
    solvers: { selector?: { dnsZones?: string[] }; dns01: Dns01Solver }[];
  };
}

export interface CertificateSpec {
  secretName: string;
  dnsNames: string[];
  issuerRef: { name: string; kind: "ClusterIssuer" | "Issuer"; group: "cert-manager.io" };
  privateKey?: {
    algorithm: "RSA" | "ECDSA" | "Ed25519";
    size?: number;
    rotationPolicy?: "Never" | "Always";
  };
  secretTemplate?: { labels?: Record<string, string> };
}
