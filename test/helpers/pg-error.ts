/** What a failed query rejects with (the fields the tests read). */
export interface PgError {
  code?: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** The error `p` fails with; fails the test when it succeeds. */
export async function failure(p: Promise<unknown>): Promise<PgError> {
  try {
    await p;
  } catch (err) {
    return err as PgError;
  }
  throw new Error("expected the statement to fail, but it succeeded");
}
