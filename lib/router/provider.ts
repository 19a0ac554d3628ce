/**
 * The LocalRouter dynamic provider's support (dynamic-providers/localRouter.ts is its thin
 * lifecycle): inputs to router options, check, diff, and the apply of create and update. Tested
 * through the compiled provider in test/integration/router-provider.test.ts.
 */
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { diffKeys } from "../pulumi/diff";
import { containsUnknown, isKnown } from "../pulumi/unknown";
import {
  routerUrl,
  renderRouterConfig,
  routerOptionsProblems,
  tenantRoutes,
  type RouterOptions,
  type RouterTenant,
  type RouterTls,
} from "./config";
import { routerTlsFileProblems, routerTlsFilesHash } from "./tlsFiles";
import { applyConfig, configGeneration, liveConfigHash, routerStatus, withDefaultUser } from "./nginx";

export interface LocalRouterInputs {
  stateDir: string;
  port: number;
  domain: string;
  odooHttp: string;
  odooWebsocket: string;
  tenants: RouterTenant[];
  previews?: boolean;
  listenAddress?: string;
  publicPort?: number;
  /** HTTPS (certificate, key, port, HSTS); absent: plain HTTP. */
  tls?: RouterTls;
}

export interface LocalRouterOutputs extends LocalRouterInputs {
  /** `http(s)://<domain>:<port>/`: tenants are at `http(s)://<sub>.<domain>:<port>/`. */
  url: string;
  /** Path of the nginx configuration that runs. */
  nginxConfig: string;
  running: boolean;
  /** The nginx master's pid (0 when not running). */
  pid: number;
  tenantCount: number;
  /** routerConfigHash of the configuration and pages on disk ("" when missing). */
  configHash: string;
  /** Generation of the configuration the running workers hold ("" when unknown or stopped). */
  runningGeneration: string;
}

const INPUT_KEYS = [
  "stateDir",
  "port",
  "domain",
  "odooHttp",
  "odooWebsocket",
  "tenants",
  "previews",
  "listenAddress",
  "publicPort",
  "tls",
] as const;

/** The router options of the inputs; with TLS, the hash of the certificate and key as they are now. */
function routerOptions(inputs: LocalRouterInputs): RouterOptions {
  const options: RouterOptions = { ...inputsOf(inputs), tenants: inputs.tenants ?? [] };
  const filesHash = options.tls && routerTlsFilesHash(options.tls);
  return filesHash ? { ...options, tls: { ...options.tls!, filesHash } } : options;
}

/** The inputs as given, without outputs a refresh may have merged in. */
function inputsOf(props: LocalRouterInputs): LocalRouterInputs {
  const inputs: Record<string, unknown> = {};
  for (const key of INPUT_KEYS) if (props[key] !== undefined) inputs[key] = props[key];
  return inputs as unknown as LocalRouterInputs;
}

/** The resource id: the router's directory. */
export function localRouterId(inputs: LocalRouterInputs): string {
  return `local-router:${path.join(path.resolve(inputs.stateDir), "router")}`;
}

/** check: the router options' problems, once every value they need is known (not in a preview before). */
export function checkLocalRouter(news: LocalRouterInputs): pulumi.dynamic.CheckFailure[] {
  const allKnown =
    [news.stateDir, news.port, news.domain, news.odooHttp, news.odooWebsocket].every(isKnown) &&
    Array.isArray(news.tenants) &&
    news.tenants.every((t) => isKnown(t?.subdomain) && isKnown(t?.state));
  if (!allKnown || containsUnknown(news.tls)) return [];
  const options = routerOptions(news);
  const problems = routerOptionsProblems(options);
  if (problems.length === 0 && options.tls) {
    const hosts = options.tenants.flatMap((t) =>
      tenantRoutes(t, options.domain, options.previews).map((r) => r.host),
    );
    problems.push(...routerTlsFileProblems(options.tls, hosts));
  }
  return problems.map((p) => ({
    property: p.property.replace(/[.[].*$/, ""),
    reason: `${p.property}: ${p.reason}`,
  }));
}

/**
 * diff: a new stateDir replaces (old router deleted first); any other input, or drift (what the new
 * inputs render against what is on disk and running, as last read), updates in place.
 */
export function diffLocalRouter(
  olds: LocalRouterOutputs,
  news: LocalRouterInputs,
): pulumi.dynamic.DiffResult {
  const replaces = path.resolve(olds.stateDir) !== path.resolve(news.stateDir) ? ["stateDir"] : [];
  const changed = diffKeys(
    { ...inputsOf(olds) },
    { ...inputsOf(news) },
    { replaceKeys: [], updateKeys: INPUT_KEYS },
  ).changed;
  let drift = false;
  try {
    const rendered = renderRouterConfig(withDefaultUser(routerOptions(news)));
    drift =
      olds.configHash !== rendered.hash ||
      (olds.running &&
        olds.runningGeneration !== "" &&
        olds.runningGeneration !== configGeneration(rendered.text));
  } catch {
    drift = true; // invalid inputs: let update report them
  }
  return {
    changes: changed.length > 0 || drift || olds.running === false,
    replaces,
    deleteBeforeReplace: true,
  };
}

/** create and update: render, check with `nginx -t`, start or reload. */
export async function applyLocalRouter(
  inputs: LocalRouterInputs,
  log: (msg: string) => void,
): Promise<LocalRouterOutputs> {
  const rendered = renderRouterConfig(withDefaultUser(routerOptions(inputs)));
  const result = await applyConfig(inputs.stateDir, rendered);
  log(
    `router: ${result.action} (${rendered.tenantCount} tenants, ${rendered.hostCount} hosts; ` +
      `nginx -t ${result.checkMs.toFixed(0)} ms, ${result.action === "started" ? "start" : "reload"} ` +
      `${result.reloadMs.toFixed(0)} ms)`,
  );
  return {
    ...inputsOf(inputs),
    url: inputs.tls
      ? routerUrl(inputs.domain, inputs.tls.publicPort ?? inputs.tls.port, "https")
      : routerUrl(inputs.domain, inputs.publicPort ?? inputs.port),
    nginxConfig: result.configFile,
    running: true,
    pid: result.pid,
    tenantCount: rendered.tenantCount,
    configHash: rendered.hash,
    runningGeneration: configGeneration(rendered.text),
  };
}

/** read: whether nginx runs, which generation it holds and the configuration's hash on disk. */
export async function readLocalRouter(props: LocalRouterOutputs): Promise<LocalRouterOutputs> {
  const status = await routerStatus(props.stateDir);
  const configHash = (await liveConfigHash(props.stateDir)) ?? "";
  return {
    ...props,
    running: status.running,
    pid: status.pid ?? 0,
    configHash,
    runningGeneration: status.generation ?? "",
  };
}
