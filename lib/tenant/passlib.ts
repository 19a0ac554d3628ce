/**
 * Password hashes in passlib's `pbkdf2_sha512` format, the format Odoo stores in
 * `res_users.password`:
 *
 *   $pbkdf2-sha512$<rounds>$<ab64 salt>$<ab64 checksum>
 *
 * where the checksum is PBKDF2-HMAC-SHA512(utf8(password), salt, rounds, 64 bytes) and "ab64"
 * is passlib's adapted base64: standard base64 with `+` written as `.` and no `=` padding.
 *
 * Rounds: Odoo 18 configures its CryptContext with 600,000 rounds for pbkdf2_sha512 (passlib's own
 * default is 25,000). One hash with 600,000 rounds takes ~0.35 s on this project's build machine,
 * well under the 1 s budget, so new hashes use Odoo's value: the admin password we write is then
 * indistinguishable from one Odoo wrote itself, and Odoo never needs to re-hash it on login.
 */
import { pbkdf2, randomBytes, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";

const pbkdf2Async = promisify(pbkdf2);

/** Odoo 18's rounds for pbkdf2_sha512. */
export const ODOO_PBKDF2_ROUNDS = 600_000;
/** passlib's default salt size for pbkdf2_sha512, in bytes. */
export const DEFAULT_SALT_BYTES = 16;
/** SHA-512 digest size: passlib's checksum size for pbkdf2_sha512. */
const CHECKSUM_BYTES = 64;
const PREFIX = "$pbkdf2-sha512$";
const MAX_ROUNDS = 0xffffffff;

/** passlib's adapted base64: `+` → `.`, no padding. */
export function ab64Encode(data: Buffer): string {
  return data.toString("base64").replace(/\+/g, ".").replace(/=+$/, "");
}

/** Inverse of {@link ab64Encode}; throws on characters outside the alphabet. */
export function ab64Decode(text: string): Buffer {
  if (!/^[A-Za-z0-9./]*$/.test(text) || text.length % 4 === 1) {
    throw new Error("invalid adapted-base64 text");
  }
  const std = text.replace(/\./g, "+");
  return Buffer.from(std + "=".repeat((4 - (std.length % 4)) % 4), "base64");
}

export interface Pbkdf2Options {
  /** Iterations; default {@link ODOO_PBKDF2_ROUNDS}. */
  rounds?: number;
  /** Salt bytes; default 16 random bytes. */
  salt?: Buffer;
}

function checkRounds(rounds: number): void {
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_ROUNDS) {
    throw new Error(`pbkdf2_sha512 rounds must be an integer in [1, ${MAX_ROUNDS}], got ${rounds}`);
  }
}

/** Hashes `password` into passlib's `$pbkdf2-sha512$...` format. */
export async function hashPbkdf2Sha512(password: string, opts: Pbkdf2Options = {}): Promise<string> {
  const rounds = opts.rounds ?? ODOO_PBKDF2_ROUNDS;
  checkRounds(rounds);
  const salt = opts.salt ?? randomBytes(DEFAULT_SALT_BYTES);
  if (salt.length === 0) throw new Error("pbkdf2_sha512 salt must not be empty");
  const checksum = await pbkdf2Async(Buffer.from(password, "utf8"), salt, rounds, CHECKSUM_BYTES, "sha512");
  return `${PREFIX}${rounds}$${ab64Encode(salt)}$${ab64Encode(checksum)}`;
}

export interface ParsedPbkdf2Sha512 {
  rounds: number;
  salt: Buffer;
  checksum: Buffer;
}

/** Splits a `$pbkdf2-sha512$` hash; undefined when it is not one (or is malformed). */
export function parsePbkdf2Sha512(hash: string): ParsedPbkdf2Sha512 | undefined {
  if (!hash.startsWith(PREFIX)) return undefined;
  const parts = hash.slice(PREFIX.length).split("$");
  if (parts.length !== 3) return undefined;
  const [roundsText, saltText, checksumText] = parts;
  // passlib refuses zero-padded rounds; so do we.
  if (!/^[1-9][0-9]*$/.test(roundsText)) return undefined;
  const rounds = Number(roundsText);
  if (rounds > MAX_ROUNDS) return undefined;
  try {
    const salt = ab64Decode(saltText);
    const checksum = ab64Decode(checksumText);
    if (salt.length === 0 || checksum.length !== CHECKSUM_BYTES) return undefined;
    return { rounds, salt, checksum };
  } catch {
    return undefined;
  }
}

/** True when `hash` is a pbkdf2_sha512 hash of `password` (constant-time comparison). */
export async function verifyPbkdf2Sha512(password: string, hash: string): Promise<boolean> {
  const parsed = parsePbkdf2Sha512(hash);
  if (!parsed) return false;
  const actual = await pbkdf2Async(
    Buffer.from(password, "utf8"),
    parsed.salt,
    parsed.rounds,
    CHECKSUM_BYTES,
    "sha512",
  );
  return timingSafeEqual(actual, parsed.checksum);
}
