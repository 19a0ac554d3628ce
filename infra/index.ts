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

const platform = new LoomworksPlatform("loomworks", { config: readConfig(), projectDir: process.cwd() });

export const postgres = platform.postgres;
export const tenants = platform.tenants;
export const adminPasswords = platform.adminPasswords;
