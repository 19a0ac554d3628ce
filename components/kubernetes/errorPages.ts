/**
 * The error-pages backend of the Kubernetes routing: an unprivileged nginx answering 404 on one
 * port (unknown hosts, the Gateway's or Ingress's default) and 503 on another (tenants that are
 * suspended, archived or being restored), each with a small static page, so such requests never
 * reach the ERP. A third port answers the kubelet's probes.
 */
import { ERROR_PAGES_HEALTH_PORT, NOT_FOUND_PORT, UNAVAILABLE_PORT } from "./common";

export const ERROR_PAGES_ROOT = "/usr/share/nginx/loomworks";

function page(title: string, message: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${title}</title>
<style>body{font-family:system-ui,sans-serif;margin:15vh auto;max-width:32rem;padding:0 1rem;color:#222}h1{font-size:1.5rem}</style>
</head>
<body>
<h1>${title}</h1>
<p>${message}</p>
</body>
</html>
`;
}

export const NOT_FOUND_HTML = page("Not found", "There is no Loomworks workspace at this address.");
export const UNAVAILABLE_HTML = page(
  "Temporarily unavailable",
  "This Loomworks workspace is not available at the moment. Please try again later or contact your administrator.",
);

/** `conf.d/default.conf` of the error-pages nginx (the image's nginx.conf includes conf.d/*.conf). */
export const ERROR_PAGES_NGINX_CONF = `# Loomworks error pages: rendered by components/kubernetes/errorPages.ts.
server_tokens off;

server {
    listen ${NOT_FOUND_PORT} default_server;
    server_name _;
    root ${ERROR_PAGES_ROOT};
    error_page 404 /404.html;
    location = /404.html {
        internal;
        add_header Cache-Control "no-store" always;
    }
    location / {
        return 404;
    }
}

server {
    listen ${UNAVAILABLE_PORT} default_server;
    server_name _;
    root ${ERROR_PAGES_ROOT};
    error_page 503 /503.html;
    location = /503.html {
        internal;
        add_header Cache-Control "no-store" always;
        add_header Retry-After "300" always;
    }
    location / {
        return 503;
    }
}

server {
    listen ${ERROR_PAGES_HEALTH_PORT} default_server;
    server_name _;
    access_log off;
    location = /healthz {
        default_type text/plain;
        return 200 "ok\\n";
    }
    location / {
        return 404;
    }
}
`;

/** The ConfigMap's data: nginx's server file and the two pages. */
export function errorPagesFiles(): Record<string, string> {
  return { "default.conf": ERROR_PAGES_NGINX_CONF, "404.html": NOT_FOUND_HTML, "503.html": UNAVAILABLE_HTML };
}
