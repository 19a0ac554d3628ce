/**
 * The local target's odoo.conf: rendered by lib/odoo/config.ts with the secrets written in (the ERP
 * runs on this machine without the image's entrypoint) and kept at `<stateDir>/odoo/odoo.conf`,
 * mode 0600 in a 0700 directory. dynamic-providers/localOdooConfig.ts is the Pulumi lifecycle over
 * these functions.
 */
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { odooSizing, renderOdooConfig } from "./config";

export const LOCAL_ODOO_CONF_MODE = 0o600;

export interface LocalOdooConfigSpec {
  stateDir: string;
  adminPasswd: string;
  dbHost: string;
  dbPort: number;
  dbUser: string;
  dbPassword: string;
  dataDir: string;
  addonsPath: string;
  cpu: number;
  memoryMb: number;
  redisUrl?: string;
  /** Default 127.0.0.1: on this machine only the router reaches the ERP. */
  httpInterface?: string;
}

/** What the resource records about the file it wrote. */
export interface LocalOdooConfigState {
  path: string;
  /** sha256 of the file's content: `read` compares it with the file on disk. */
  sha256: string;
  /** File mode, octal ("0600"). */
  mode: string;
  workers: number;
  /** Bytes. */
  limitMemoryHard: number;
}

/** Where the file of a state directory is: `<stateDir>/odoo/odoo.conf` (absolute). */
export function localOdooConfigPath(stateDir: string): string {
  return path.join(path.resolve(stateDir), "odoo", "odoo.conf");
}

export function renderLocalOdooConfig(spec: LocalOdooConfigSpec): string {
  return renderOdooConfig({
    adminPasswd: spec.adminPasswd,
    dbHost: spec.dbHost,
    dbPort: spec.dbPort,
    dbUser: spec.dbUser,
    dbPassword: spec.dbPassword,
    dataDir: spec.dataDir,
    addonsPath: spec.addonsPath,
    cpu: spec.cpu,
    memoryMb: spec.memoryMb,
    httpInterface: spec.httpInterface ?? "127.0.0.1",
    ...(spec.redisUrl ? { redisUrl: spec.redisUrl } : {}),
  });
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

const octal = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

/** The state a spec leads to, without touching the disk (what `diff` compares against). */
export function expectedLocalOdooConfig(spec: LocalOdooConfigSpec): LocalOdooConfigState {
  const size = odooSizing(spec.cpu, spec.memoryMb);
  return {
    path: localOdooConfigPath(spec.stateDir),
    sha256: sha256(renderLocalOdooConfig(spec)),
    mode: octal(LOCAL_ODOO_CONF_MODE),
    workers: size.workers,
    limitMemoryHard: size.limitMemoryHard,
  };
}

/** Writes the file atomically (temporary file + rename), mode 0600, its directory 0700. Idempotent. */
export async function writeLocalOdooConfig(spec: LocalOdooConfigSpec): Promise<LocalOdooConfigState> {
  const text = renderLocalOdooConfig(spec);
  const state = expectedLocalOdooConfig(spec);
  const dir = path.dirname(state.path);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await fsp.chmod(dir, 0o700);
  const tmp = `${state.path}.tmp-${process.pid}`;
  try {
    await fsp.writeFile(tmp, text, { mode: LOCAL_ODOO_CONF_MODE });
    await fsp.chmod(tmp, LOCAL_ODOO_CONF_MODE);
    await fsp.rename(tmp, state.path);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  return state;
}

/** The file as it is on disk: undefined when it is gone. */
export async function inspectLocalOdooConfig(
  file: string,
): Promise<{ sha256: string; mode: string } | undefined> {
  try {
    const [text, stat] = await Promise.all([fsp.readFile(file, "utf8"), fsp.stat(file)]);
    return { sha256: sha256(text), mode: octal(stat.mode) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Removes the file (and its directory when left empty). Idempotent. */
export async function removeLocalOdooConfig(file: string): Promise<void> {
  await fsp.rm(file, { force: true });
  await fsp.rmdir(path.dirname(file)).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// The resource's lifecycle (dynamic-providers/localOdooConfig.ts delegates each method here).

/** Inputs of the LocalOdooConfig resource. */
export type LocalOdooConfigInputs = LocalOdooConfigSpec;
/** Its outputs: the inputs and the state of the file. */
export type LocalOdooConfigOutputs = LocalOdooConfigInputs & LocalOdooConfigState;

const INPUT_KEYS = [
  "stateDir",
  "adminPasswd",
  "dbHost",
  "dbPort",
  "dbUser",
  "dbPassword",
  "dataDir",
  "addonsPath",
  "cpu",
  "memoryMb",
  "redisUrl",
  "httpInterface",
] as const;

/** The spec fields of the resource's inputs or outputs (an empty optional counts as absent). */
export function localOdooConfigSpec(o: LocalOdooConfigInputs): LocalOdooConfigSpec {
  const spec: LocalOdooConfigSpec = {
    stateDir: o.stateDir,
    adminPasswd: o.adminPasswd,
    dbHost: o.dbHost,
    dbPort: o.dbPort,
    dbUser: o.dbUser,
    dbPassword: o.dbPassword,
    dataDir: o.dataDir,
    addonsPath: o.addonsPath,
    cpu: o.cpu,
    memoryMb: o.memoryMb,
  };
  if (o.redisUrl) spec.redisUrl = o.redisUrl;
  if (o.httpInterface) spec.httpInterface = o.httpInterface;
  return spec;
}

/** check: the rendering problem of the inputs, if any. */
export function checkLocalOdooConfig(inputs: LocalOdooConfigInputs): string | undefined {
  try {
    renderLocalOdooConfig(localOdooConfigSpec(inputs));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export async function createLocalOdooConfig(
  inputs: LocalOdooConfigInputs,
): Promise<{ id: string; outs: LocalOdooConfigOutputs }> {
  const spec = localOdooConfigSpec(inputs);
  const state = await writeLocalOdooConfig(spec);
  return { id: `local-odoo-config:${state.path}`, outs: { ...spec, ...state } };
}

/** read: the file's actual hash and mode; undefined when the file is gone (the resource left the state). */
export async function readLocalOdooConfig(
  props: LocalOdooConfigOutputs,
): Promise<LocalOdooConfigOutputs | undefined> {
  const onDisk = await inspectLocalOdooConfig(props.path);
  return onDisk && { ...props, sha256: onDisk.sha256, mode: onDisk.mode };
}

/**
 * diff: a new stateDir replaces (new file first, then the old one removed); any other input, or a
 * file that is not what the inputs render (edited by hand, other permissions, a new template), is
 * an update in place.
 */
export function diffLocalOdooConfig(
  olds: LocalOdooConfigOutputs,
  news: LocalOdooConfigInputs,
): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
  const replaces =
    localOdooConfigPath(olds.stateDir) !== localOdooConfigPath(news.stateDir) ? ["stateDir"] : [];
  const changed = INPUT_KEYS.filter((k) => (olds[k] ?? "") !== (news[k] ?? ""));
  let expected: LocalOdooConfigState | undefined;
  try {
    expected = expectedLocalOdooConfig(localOdooConfigSpec(news));
  } catch {
    expected = undefined; // check reports it
  }
  const drift = expected === undefined || olds.sha256 !== expected.sha256 || olds.mode !== expected.mode;
  return {
    changes: replaces.length > 0 || changed.length > 0 || drift,
    replaces,
    deleteBeforeReplace: false,
  };
}

export async function updateLocalOdooConfig(news: LocalOdooConfigInputs): Promise<LocalOdooConfigOutputs> {
  const spec = localOdooConfigSpec(news);
  return { ...spec, ...(await writeLocalOdooConfig(spec)) };
}

export async function deleteLocalOdooConfig(props: LocalOdooConfigOutputs): Promise<void> {
  await removeLocalOdooConfig(props.path);
}
