/**
 * `loomworks:platform.backups.offsite`: the second pgBackRest repository (repo2), written by every
 * backup and archive-push, with its own retention (lib/pg/offsite.ts renders it). One map for the
 * three types; which keys a type needs and allows is checked here, so that a key of another type
 * is an error rather than silently ignored. Conventions as in schema.ts.
 */
import { z } from "zod";
import { booleanSchema, integer, rule, strictMap, text, type IssueParams } from "./helpers";

export const OFFSITE_TYPES = ["s3", "sftp", "path"] as const;
export type OffsiteType = (typeof OFFSITE_TYPES)[number];

export const OFFSITE_RULES = {
  type: `must be one of ${OFFSITE_TYPES.join(", ")}`,
  absolutePath: "must be an absolute path (starting with /, one line)",
  retentionFull: "must be an integer from 1 to 9999999 (full backups kept)",
  port: "must be an integer from 1 to 65535",
  uriStyle: "must be host or path",
  hashType: "must be one of md5, sha1, sha256",
  fingerprint: "must be the host key's digest in hexadecimal (as pgBackRest compares it)",
  endpoint:
    "must be a host name or address, optionally with :port, without a scheme (pgBackRest speaks HTTPS)",
} as const;

/** The keys each type needs (besides type, path, retentionFull, encryptionPassphrase). */
const REQUIRED: Record<OffsiteType, readonly string[]> = {
  path: [],
  s3: ["endpoint", "bucket", "region", "accessKey", "secretKey"],
  sftp: ["host", "user"],
};
/** The keys each type allows beyond the required and common ones. */
const OPTIONAL: Record<OffsiteType, readonly string[]> = {
  path: [],
  s3: ["uriStyle", "verifyTls"],
  sftp: ["port", "privateKey", "privateKeyFile", "hostKeyFingerprint", "hostKeyHashType", "knownHostsFile"],
};
const COMMON = ["type", "path", "retentionFull", "encryptionPassphrase"];

/** Every key of the map. */
const offsiteKeysShape: Record<string, true> = Object.fromEntries(
  [...COMMON, ...Object.values(REQUIRED).flat(), ...Object.values(OPTIONAL).flat()].map((k) => [k, true]),
);

const absolutePath = z
  .string(rule(OFFSITE_RULES.absolutePath))
  .refine((s) => s.startsWith("/") && s.trim() === s && !/[\r\n\0]/.test(s), OFFSITE_RULES.absolutePath);

function issue(ctx: z.RefinementCtx, path: string[], message: string, params: IssueParams): void {
  ctx.addIssue({ code: z.ZodIssueCode.custom, path, message, params });
}

export const offsiteSchema = strictMap(
  {
    type: z.enum(OFFSITE_TYPES, rule(OFFSITE_RULES.type)),
    path: absolutePath,
    retentionFull: integer(1, 9_999_999, OFFSITE_RULES.retentionFull).default(2),
    encryptionPassphrase: text().optional(),
    endpoint: z
      .string(rule(OFFSITE_RULES.endpoint))
      .regex(/^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$/)
      .optional(),
    bucket: text().optional(),
    region: text().optional(),
    accessKey: text().optional(),
    secretKey: text().optional(),
    uriStyle: z.enum(["host", "path"], rule(OFFSITE_RULES.uriStyle)).default("host"),
    verifyTls: booleanSchema.default(true),
    host: text().optional(),
    port: integer(1, 65535, OFFSITE_RULES.port).default(22),
    user: text().optional(),
    privateKey: z.string(rule("must be a private key (PEM or OpenSSH format)")).min(1).optional(),
    privateKeyFile: absolutePath.optional(),
    hostKeyFingerprint: z
      .string(rule(OFFSITE_RULES.fingerprint))
      .regex(/^[0-9a-fA-F]{32,128}$/)
      .optional(),
    hostKeyHashType: z.enum(["md5", "sha1", "sha256"], rule(OFFSITE_RULES.hashType)).default("sha256"),
    knownHostsFile: absolutePath.optional(),
  },
  "must be a map of offsite repository settings (type, path, retentionFull, ... per type)",
  (v, ctx) => {
    const type = v.type as OffsiteType;
    if (!OFFSITE_TYPES.includes(type)) return; // the enum reports it
    for (const key of REQUIRED[type]) {
      if (v[key] === undefined) issue(ctx, [key], `is required for type ${type}`, { noGot: true });
    }
    const allowed = [...COMMON, ...REQUIRED[type], ...OPTIONAL[type]];
    for (const key of Object.keys(v)) {
      if (!allowed.includes(key) && key in offsiteKeysShape) {
        issue(ctx, [key], `is not a setting of type ${type}`, { noGot: true });
      }
    }
    if (type === "sftp") {
      const keys = ["privateKey", "privateKeyFile"].filter((k) => v[k] !== undefined);
      if (keys.length !== 1) {
        issue(ctx, [], "type sftp needs exactly one of privateKey, privateKeyFile", { noGot: true });
      }
      const hosts = ["hostKeyFingerprint", "knownHostsFile"].filter((k) => v[k] !== undefined);
      if (hosts.length !== 1) {
        issue(ctx, [], "type sftp needs exactly one of hostKeyFingerprint, knownHostsFile", { noGot: true });
      }
    }
  },
);

export type OffsiteConfig = z.output<typeof offsiteSchema>;

/** Keys of the map holding secrets (never shown in messages). */
export const OFFSITE_SECRET_KEYS = ["encryptionPassphrase", "accessKey", "secretKey", "privateKey"] as const;
