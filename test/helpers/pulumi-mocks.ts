/**
 * Pulumi mocks for unit tests of the program's wiring: no engine, no provider runs. Every
 * registration is recorded (type, name, inputs); custom resources echo their inputs as state
 * plus plausible outputs of the loomworks dynamic providers. Secret inputs arrive wrapped in
 * the runtime's secret envelope; the echoed state is unwrapped, so an output is secret only
 * when the program itself makes it so (`pulumi.secret`).
 */
import * as pulumi from "@pulumi/pulumi";

const { specialSecretSig, specialSigKey } = pulumi.runtime;

export interface Registration {
  type: string;
  name: string;
  custom: boolean;
  /** As the resource monitor received them, without the dynamic provider's `__provider`. */
  inputs: Record<string, unknown>;
}

export const DYNAMIC = "pulumi-nodejs:dynamic/loomworks:";

/** Whether a value received by the mock monitor was sent as a secret. */
export function isSecretInput(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<string, unknown>)[specialSigKey] === specialSecretSig
  );
}

/** The value with every secret envelope removed. */
export function plain(value: unknown): unknown {
  if (isSecretInput(value)) return plain((value as { value: unknown }).value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** The value of an output (or plain value) once resolved. */
export function promiseOf<T>(output: pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(output).apply((v) => resolve(v as T)));
}

function outputsOf(type: string, name: string, s: Record<string, unknown>): Record<string, unknown> {
  switch (type) {
    case `${DYNAMIC}RandomSecret`:
      return { result: `pw-${name}` };
    case `${DYNAMIC}LocalPostgres`:
      return {
        host: "127.0.0.1",
        adminDsn: `postgres://postgres:${String(s.superuserPassword)}@127.0.0.1:${String(s.port)}/postgres`,
        running: true,
        dataDir: `${String(s.stateDir)}/pgdata`,
        repoPath: `${String(s.stateDir)}/backups`,
      };
    case `${DYNAMIC}TenantTemplate`:
      return { builtAt: "2026-01-01T00:00:00.000Z" };
    case `${DYNAMIC}TenantDatabase`:
      return {
        dsn: `postgres://${String(s.roleName)}:${String(s.rolePassword)}@${String(s.host)}:${String(s.port)}/${String(s.database)}`,
        createdAt: "2026-01-01T00:00:00.000Z",
        filestore: `${String(s.filestoreRoot)}/${String(s.database)}`,
      };
    case `${DYNAMIC}TenantGuards`:
      return { capturedTables: 410, uncapturedTables: 0, userLimitTrigger: true };
    default:
      return {};
  }
}

/** Installs the mocks; returns the live list of registrations. Call before constructing resources. */
export function installMocks(): Registration[] {
  const registrations: Registration[] = [];
  void pulumi.runtime.setMocks(
    {
      newResource(args) {
        const { __provider: _provider, ...inputs } = args.inputs as Record<string, unknown>;
        const custom = args.custom === true;
        registrations.push({ type: args.type, name: args.name, custom, inputs });
        if (!custom) return { id: undefined, state: {} };
        const state = plain(inputs) as Record<string, unknown>;
        return { id: `${args.name}-id`, state: { ...state, ...outputsOf(args.type, args.name, state) } };
      },
      call(args) {
        return args.inputs as Record<string, unknown>;
      },
    },
    "loomworks-hosting",
    "unit",
  );
  return registrations;
}

/** `"<type>::<name>"` of each child, recursively: the parent/child structure the SDK records. */
export interface ResourceTree {
  [typeAndName: string]: ResourceTree;
}

/** Resolves once `resource` and all its descendants are registered. */
export async function registered(resource: pulumi.Resource): Promise<void> {
  const children = (resource as unknown as { __childResources?: Set<pulumi.Resource> }).__childResources;
  await Promise.all([promiseOf(resource.urn), ...[...(children ?? [])].map(registered)]);
}

export function resourceTree(resource: pulumi.Resource): ResourceTree {
  const children = (resource as unknown as { __childResources?: Set<pulumi.Resource> }).__childResources;
  const tree: ResourceTree = {};
  for (const child of children ?? []) {
    const internals = child as unknown as { __pulumiType: string; __name: string };
    tree[`${internals.__pulumiType}::${internals.__name}`] = resourceTree(child);
  }
  return tree;
}
