import * as pulumi from "@pulumi/pulumi";
import { ConfigError, loadStackConfig } from "./config/load";
import { declarePlatform } from "./platform";
import { trimSdkOverhead } from "../lib/pulumi/sdkOverhead";

trimSdkOverhead();

function readConfig() {
  try {
    return loadStackConfig();
  } catch (err) {
    // A RunError prints just the message: the config problems, without a stack trace.
    if (err instanceof ConfigError) throw new pulumi.RunError(`invalid stack configuration:\n${err.message}`);
    throw err;
  }
}

// Relative paths in the stack file are relative to Pulumi.yaml's directory (the program runs in bin/).
const projectDir = pulumi.runtime.getRootDirectory();
const platform = declarePlatform("loomworks", { config: readConfig(), projectDir });

// The outputs keep every key on every target (docs/configuration.md#stack-outputs): what a target
// lacks is "".
const { host, port, adminDsn } = platform.postgres;
export const postgres = { host, port, adminDsn: adminDsn ?? pulumi.secret("") };
export const tenants = platform.tenants;
export const adminPasswords = platform.adminPasswords;
export const snapshots = platform.snapshots;
export const restores = platform.restores;
const { url, nginxConfig, odooConfig } = platform.router;
export const router = { url, nginxConfig: nginxConfig ?? pulumi.output(""), odooConfig };
