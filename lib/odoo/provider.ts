/**
 * Check and diff of the local target's ERP file resources: LocalOdooConfig (localConfig.ts),
 * LocalErpTenants (localTenantFiles.ts) and LocalAiKeys (localAiKeys.ts), whose lifecycles those
 * modules hold. Unit-tested in
 * test/unit/odoo-config.test.ts and test/unit/erp-tenant-map.test.ts.
 */
import type * as pulumi from "@pulumi/pulumi";
import { diffKeys, diffResult, type KeyDiffResult } from "../pulumi/diff";
import { CheckFailures } from "../pulumi/failures";
import { containsUnknown } from "../pulumi/unknown";
import {
  LOCAL_ODOO_CONFIG_INPUT_KEYS,
  expectedLocalOdooConfig,
  localOdooConfigPath,
  localOdooConfigSpec,
  renderLocalOdooConfig,
  type LocalOdooConfigInputs,
  type LocalOdooConfigOutputs,
  type LocalOdooConfigState,
} from "./localConfig";
import { expectedLocalAiKeys, type LocalAiKeysInputs, type LocalAiKeysOutputs } from "./localAiKeys";
import {
  expectedLocalErpTenants,
  localErpDir,
  renderLocalErpTenants,
  type LocalErpTenantsInputs,
  type LocalErpTenantsOutputs,
} from "./localTenantFiles";

/** LocalOdooConfig's check: the rendering problem of the inputs, if any. */
export function checkLocalOdooConfig(inputs: LocalOdooConfigInputs): pulumi.dynamic.CheckFailure[] {
  const failures = new CheckFailures();
  failures.attempt("adminPasswd", () => renderLocalOdooConfig(localOdooConfigSpec(inputs)));
  return failures.list;
}

/**
 * LocalOdooConfig's diff: a new stateDir replaces (new file first, then the old one removed); any
 * other input, or a file that is not what the inputs render (edited by hand, other permissions, a
 * new template), is an update in place.
 */
export function diffLocalOdooConfig(
  olds: LocalOdooConfigOutputs,
  news: LocalOdooConfigInputs,
): KeyDiffResult {
  const moved = localOdooConfigPath(olds.stateDir) !== localOdooConfigPath(news.stateDir);
  const { changed } = diffKeys(
    { ...olds },
    { ...news },
    {
      replaceKeys: [],
      updateKeys: LOCAL_ODOO_CONFIG_INPUT_KEYS,
      normalize: (v) => v ?? "",
    },
  );
  let expected: LocalOdooConfigState | undefined;
  try {
    expected = expectedLocalOdooConfig(localOdooConfigSpec(news));
  } catch {
    expected = undefined; // check reports it
  }
  const drift = expected === undefined || olds.sha256 !== expected.sha256 || olds.mode !== expected.mode;
  const replaces = moved ? ["stateDir"] : [];
  return diffResult({ replaces, changed: [...replaces, ...changed] }, { deleteBeforeReplace: false, drift });
}

/** LocalErpTenants' check: whether the files render; nothing to check in a preview with a value not known yet. */
export function checkLocalErpTenants(inputs: LocalErpTenantsInputs): pulumi.dynamic.CheckFailure[] {
  const failures = new CheckFailures();
  if (!containsUnknown(inputs)) failures.attempt("tenants", () => renderLocalErpTenants(inputs));
  return failures.list;
}

/** LocalErpTenants' diff: a file that is not what the inputs render is rewritten in place; a new stateDir replaces. */
export function diffLocalErpTenants(
  olds: LocalErpTenantsOutputs,
  news: LocalErpTenantsInputs,
): KeyDiffResult {
  const d = diffKeys(
    { ...olds },
    { ...news },
    {
      replaceKeys: ["stateDir"],
      updateKeys: [],
      normalize: (v) => localErpDir(String(v)),
    },
  );
  let want: LocalErpTenantsOutputs | undefined;
  try {
    want = expectedLocalErpTenants(news);
  } catch {
    want = undefined; // check reports it
  }
  const drift =
    want === undefined ||
    (["mapSha256", "credentialsSha256", "mapMode", "credentialsMode"] as const).some(
      (k) => olds[k] !== want[k],
    );
  return diffResult(d, { deleteBeforeReplace: false, drift });
}

/**
 * LocalAiKeys' diff: every change is an update in place (a new stateDir writes the new file and
 * removes the old one); a file that is not what the inputs render (a key changed, the file edited
 * by hand, other permissions) is rewritten. The keys themselves are compared through the file's hash.
 */
export function diffLocalAiKeys(olds: LocalAiKeysOutputs, news: LocalAiKeysInputs): KeyDiffResult {
  const d = diffKeys(
    { ...olds },
    { ...news },
    {
      replaceKeys: [],
      updateKeys: ["stateDir", "keys"],
      normalize: (v, k) => (k === "stateDir" ? localErpDir(String(v)) : v),
    },
  );
  const want = expectedLocalAiKeys(news);
  const drift = olds.sha256 !== want.sha256 || olds.mode !== want.mode || olds.path !== want.path;
  return diffResult(d, { deleteBeforeReplace: false, drift });
}
