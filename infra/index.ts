import * as pulumi from "@pulumi/pulumi";
import { LoomworksPlatform } from "../components/LoomworksPlatform";
import { ConfigError, loadStackConfig } from "./config/load";

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
const platform = new LoomworksPlatform("loomworks", { config: readConfig(), projectDir });

export const postgres = platform.postgres;
export const tenants = platform.tenants;
export const adminPasswords = platform.adminPasswords;
export const snapshots = platform.snapshots;
export const restores = platform.restores;
export const router = platform.router;
