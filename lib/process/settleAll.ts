/**
 * Awaits every promise, then rejects with the first failure (in argument order) or resolves with
 * all values. Unlike Promise.all, nothing that was started is still running when it settles: a
 * concurrent step that failed never leaves a sibling writing behind its rollback.
 */
export async function settleAll<T extends readonly unknown[]>(
  promises: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const results = await Promise.allSettled(promises as readonly Promise<unknown>[]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
