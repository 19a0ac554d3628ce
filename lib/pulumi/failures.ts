/** Failure collection for a dynamic provider's check: failures are added as found, then returned. */
import type * as pulumi from "@pulumi/pulumi";

export class CheckFailures {
  readonly list: pulumi.dynamic.CheckFailure[] = [];

  add(property: string, reason: string): void {
    this.list.push({ property, reason });
  }

  /** A failure `<key> is required` for each key missing or empty. */
  requireKeys(p: Record<string, unknown>, keys: readonly string[]): void {
    for (const key of keys) if (p[key] === undefined || p[key] === "") this.add(key, `${key} is required`);
  }

  /** Runs a validation that throws; its message becomes the property's failure. */
  attempt(property: string, validate: () => void): void {
    try {
      validate();
    } catch (err) {
      this.add(property, (err as Error).message);
    }
  }
}
