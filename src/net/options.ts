/**
 * Checking the options a library caller passes, early and with exact
 * messages (as execa does: "Expected the `timeout` option to be a
 * non-negative integer, got …"). A wrong option is a programming error: a
 * TypeError at construction, not a failure later on the wire.
 */

/** `value`, or `fallback` when it is undefined; throws unless a positive safe integer. */
export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new TypeError(`Expected the \`${name}\` option to be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** As positiveInteger, but 0 is allowed. */
export function nonNegativeInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`Expected the \`${name}\` option to be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

/** `value`, or `fallback` when it is undefined; throws unless one of `allowed`. */
export function oneOf<T extends string>(name: string, value: T | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value)) {
    throw new TypeError(`Expected the \`${name}\` option to be ${allowed.map((a) => JSON.stringify(a)).join(' or ')}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Throws unless `value` is undefined or a non-empty string. */
export function optionalString(name: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'string' || value === '')) {
    throw new TypeError(`Expected the \`${name}\` option to be a non-empty string, got ${JSON.stringify(value)}`);
  }
}
