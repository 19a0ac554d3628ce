/**
 * Request headers through which a client could make the ERP (or a library under it) believe
 * another host, scheme, port, path or client address. The router never passes the client's: the
 * ones the ERP trusts in proxy_mode are set from the router's own variables (nginx:
 * templates/nginx/tenant-server.conf.tmpl; Kubernetes: components/kubernetes/Router.ts), every
 * other one is removed. nginx cannot remove headers by pattern, and an allowlist of client headers
 * would break the ERP's integrations (payment providers' webhooks sign with headers of their own),
 * so the family is listed by name, most dangerous first.
 */
export const STRIPPED_CLIENT_HEADERS: readonly string[] = Object.freeze([
  "Forwarded",
  "X-Host",
  "X-Forwarded-Server",
  "X-Forwarded-Prefix",
  "X-Forwarded-Scheme",
  "X-Forwarded-Ssl",
  "X-Original-URL",
  "X-Original-URI",
  "X-Rewrite-URL",
  "X-Url-Scheme",
  "X-Scheme",
  "Front-End-Https",
  "X-Forwarded-Uri",
  "X-Http-Host-Override",
  "X-Original-Host",
  "X-Forwarded-Protocol",
  "X-Forwarded-Path",
  "X-Forwarded-Url",
  "X-Forwarded-Method",
  "X-Forwarded",
  "Forwarded-For",
  "X-Original-Forwarded-For",
  "X-Client-IP",
  "X-Cluster-Client-IP",
  "True-Client-IP",
  "X-ProxyUser-Ip",
  "X-Originating-IP",
  "X-Remote-IP",
  "X-Remote-Addr",
  "CF-Connecting-IP",
  "Fastly-Client-IP",
  "X-Forwarded-Client-Cert",
]);

/** Gateway API's RequestHeaderModifier takes at most this many names to remove. */
export const GATEWAY_REMOVE_LIMIT = 16;

/** The names a Gateway API route removes: the first (most dangerous) ones of the list. */
export function gatewayRemovedHeaders(): string[] {
  return STRIPPED_CLIENT_HEADERS.slice(0, GATEWAY_REMOVE_LIMIT);
}

/** nginx `proxy_set_header <name> "";` lines (an empty value: the header is not passed). */
export function nginxStripLines(indent: string): string {
  return STRIPPED_CLIENT_HEADERS.map((h) => `${indent}proxy_set_header ${h} "";`).join("\n");
}
