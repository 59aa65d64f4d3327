import { ApiError } from "./api";

/** React Query's retry rule: a request that failed on the network or the server (5xx) is
 * tried once more; a client error (4xx: unknown product, bad input) is final, so a page
 * says "not found" at once instead of after a retry's back-off (about 1.6 s). */
export function retryOnceUnlessClientError(failures: number, error: unknown): boolean {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failures < 1;
}
