/** Ending the sessions of a database or a role, as the platform does before it changes or drops them. */

/** Parameterized statement terminating every other session on a database (waits up to 5 s each). */
export const TERMINATE_DATABASE_SESSIONS_SQL =
  "SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()";

/** Parameterized statement terminating every session of a role. */
export const TERMINATE_ROLE_SESSIONS_SQL =
  "SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()";
