/** Role passwords as SCRAM-SHA-256 verifiers, so the clear text reaches neither the server's log nor its views. */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { quoteLiteral } from "./client";

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * A SCRAM-SHA-256 verifier in PostgreSQL's `pg_authid.rolpassword` format. Only printable-ASCII
 * passwords can be hashed here: the server runs SASLprep on the password first, which is the
 * identity for them only.
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

/**
 * What to put into `PASSWORD '...'`: the verifier when it can be computed here (a non-empty
 * printable-ASCII password), else the password itself for the server to hash.
 */
export function roleSecret(password: string): string {
  return password.length > 0 && PRINTABLE_ASCII.test(password) ? scramSha256Verifier(password) : password;
}

/** The `PASSWORD '...'` clause for CREATE/ALTER ROLE: a SCRAM verifier when possible. */
export function passwordClause(password: string): string {
  if (password.length === 0) throw new Error("role password must not be empty");
  return `PASSWORD ${quoteLiteral(roleSecret(password))}`;
}
