/** Waiting on a promise that an AbortSignal may cut short. */

/**
 * Resolves or rejects as `promise` does, unless `signal` aborts first: then
 * rejects with `reason(signal)`. The promise itself is not cancelled, so one
 * waiter can give up on work that others still share.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined, reason: (signal: AbortSignal) => Error): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(reason(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
