/**
 * Every default deadline and interval of kubesocks, in one table, so that
 * "how long until X gives up" has one answer and the rooms cannot drift
 * (each was a literal 30 s or 60 s in its own file). Options still override
 * them per instance; these are the defaults.
 */

// --- the API server

/** A request's response head (status line and headers) must arrive within this. */
export const API_RESPONSE_HEAD_TIMEOUT_MS = 30_000;
/** A whole GET of one object or one list page, body included (client-go's default request timeout is none; kubectl's is 0 too, but a proxy must not hang). */
export const API_GET_TIMEOUT_MS = 60_000;
/** A GET made to answer a client's connection (name resolution): shorter, as a client is waiting. */
export const API_LOOKUP_TIMEOUT_MS = 30_000;
/** Longest pause between attempts of a failing list+watch. */
export const WATCH_MAX_BACKOFF_MS = 30_000;
/** How long a namespace's first list may take before lookups stop waiting for it. */
export const CACHE_SYNC_TIMEOUT_MS = 15_000;
/** How long request material (tokens, exec-plugin credentials) is reused before it is asked for again. */
export const CREDENTIAL_TTL_MS = 60_000;

// --- port-forward connections

/** The HTTPS upgrade to SPDY must be answered within this. */
export const UPGRADE_TIMEOUT_MS = 30_000;
/** A whole connect (resolve, upgrade, stream pair confirmed) of the dialer. */
export const CONNECT_TIMEOUT_MS = 30_000;
/** SPDY PING interval (client-go's port-forward pings every 5 s). */
export const PING_INTERVAL_MS = 5_000;
/** A PING unanswered this long ends the SPDY connection. */
export const PING_TIMEOUT_MS = 15_000;
/** A pod's last connection stays open this long without sockets, so the next socket needs no upgrade. */
export const POOL_IDLE_TIMEOUT_MS = 5 * 60_000;
/** Extra connections to a pod (beyond its first) close after this long without sockets. */
export const POOL_SURPLUS_IDLE_TIMEOUT_MS = 10_000;
/** Longest interval between the pool's idle checks. */
export const POOL_HOUSEKEEPING_MAX_INTERVAL_MS = 30_000;

// --- the proxy's clients

/** A client must complete its handshake (SOCKS request, HTTP request headers) within this. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
