/** Role passwords as SCRAM-SHA-256 verifiers, so the clear text reaches neither the server's log nor its views. */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { quoteLiteral } from "./client";

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * A SCRAM-SHA-256 verifier in PostgreSQL's `pg_authid.rolpassword` format. Passing the verifier
 * instead of the plain password to CREATE/ALTER ROLE keeps the password out of the server log and
 * `pg_stat_activity`. Only printable-ASCII passwords are pre-hashed (SASLprep is the identity for
 * them); for anything else the caller falls back to letting the server hash it.
 */
export function scramSha256Verifier(
  password: string,
  opts: { salt?: Buffer; iterations?: number } = {},
): string {
  if (!PRINTABLE_ASCII.test(password)) throw new Error("scramSha256Verifier: only printable ASCII passwords");
  const salt = opts.salt ?? randomBytes(16);
  const iterations = opts.iterations ?? 4096;
  const salted = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** The `PASSWORD '...'` clause for CREATE/ALTER ROLE: a SCRAM verifier when possible. */
export function passwordClause(password: string): string {
  if (password.length === 0) throw new Error("role password must not be empty");
  const value = PRINTABLE_ASCII.test(password) ? scramSha256Verifier(password) : password;
  return `PASSWORD ${quoteLiteral(value)}`;
}
