import "vitest";
import type { InstalledOdoo } from "../../lib/odoo/installed";

declare module "vitest" {
  export interface ProvidedContext {
    /** The installed Odoo 18, or null when there is none (the suite is skipped). */
    odoo: InstalledOdoo | null;
  }
}
