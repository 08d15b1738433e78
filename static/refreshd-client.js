/**
 * refreshd-client.js: a small fetch wrapper for SPAs that keep their session in refreshd's
 * HttpOnly cookies. No dependencies; copy it into your app.
 *
 *   import { createClient } from "./refreshd-client.js";
 *   const api = createClient({
 *     baseUrl: "https://auth.example.com",        // refreshd's origin ("" for the same origin)
 *     onRefresh: () => console.log("refreshed"),  // after each silent refresh this tab made
 *     onSessionEnded: () => showLogin(),          // the refresh token was refused: log in again
 *   });
 *   const me = await api.fetch("/api/auth/me/");  // like fetch, with credentials: "include"
 *
 * How it behaves:
 * - Every request is sent with `credentials: "include"`, so the browser sends the cookies; the
 *   page never sees a token.
 * - When a request answers 401, the client refreshes once (POST to the refresh route) and retries
 *   the request once. A second 401 is returned as it is.
 * - Concurrent 401s in one tab share one refresh (single-flight).
 * - Tabs of one browser share one refresh: the refresh runs under a Web Lock
 *   (navigator.locks), and a tab that gets the lock after another tab has already refreshed
 *   (since its own request was sent) just retries. The tab that refreshed says when by holding a
 *   small shared lock named after the time for a minute: the lock manager is one per browser, so
 *   every tab sees it the moment the refresh lock is released. (localStorage carries the time too,
 *   but its writes reach other tabs a moment later, long enough for a second refresh.)
 *   Where Web Locks are missing, tabs may refresh at the same moment; refreshd answers those
 *   within its reuse interval with the same new tokens, so nobody is logged out and the session
 *   still rotates once. (A tab whose refresh starts just after another tab's has finished sends
 *   the new cookie and rotates once more; it stays logged in all the same.)
 * - When the refresh itself is refused, `onSessionEnded` is called and the 401 is returned.
 * - A request body must be resendable (a string, FormData, Blob, URLSearchParams), because a
 *   request that met an expired access token is sent again after the refresh.
 */

const LAST_REFRESH_KEY = "refreshd:last-refresh";
// How long a tab that refreshed keeps announcing it: longer than any request that could have been
// sent with the old cookies is still in flight.
const ANNOUNCE_MS = 60_000;

export function createClient({
  baseUrl = "",
  refreshPath = "/api/auth/token/refresh/",
  lockName = "refreshd-refresh",
  onRefresh = () => {},
  onSessionEnded = () => {},
} = {}) {
  let inFlight = null;

  const now = () => Date.now();
  const locks =
    typeof navigator !== "undefined" && navigator.locks && navigator.locks.request
      ? navigator.locks
      : null;
  const announcePrefix = lockName + ":refreshed-at:";

  /** The time of the latest refresh any tab of this browser announced. */
  async function lastRefresh() {
    let latest = 0;
    try {
      latest = Number(window.localStorage.getItem(LAST_REFRESH_KEY) || 0);
    } catch {
      /* storage blocked */
    }
    if (locks && locks.query) {
      try {
        const { held = [] } = await locks.query();
        for (const { name } of held) {
          if (name && name.startsWith(announcePrefix)) {
            latest = Math.max(latest, Number(name.slice(announcePrefix.length)) || 0);
          }
        }
      } catch {
        /* no lock snapshot: localStorage alone */
      }
    }
    return latest;
  }

  /** Announces a refresh; resolves once other tabs can see it. */
  function recordRefresh() {
    const at = now();
    try {
      window.localStorage.setItem(LAST_REFRESH_KEY, String(at));
    } catch {
      /* storage blocked */
    }
    if (!locks) return Promise.resolve();
    return new Promise((announced) => {
      locks
        .request(announcePrefix + at, { mode: "shared" }, () => {
          announced();
          return new Promise((release) => setTimeout(release, ANNOUNCE_MS));
        })
        .catch(() => announced());
    });
  }

  function withLock(task) {
    return locks ? locks.request(lockName, task) : task();
  }

  /** Refreshes unless another tab did after `sentAt`; resolves to true when a retry may work. */
  async function refreshAfter(sentAt) {
    if ((await lastRefresh()) > sentAt) return true;
    const response = await fetch(baseUrl + refreshPath, {
      method: "POST",
      credentials: "include",
    });
    if (response.ok) {
      // Announced before the refresh lock is released, so the next tab in line sees it.
      await recordRefresh();
      onRefresh();
      return true;
    }
    if (response.status === 401) onSessionEnded();
    return false;
  }

  /** One refresh per tab at a time, and one per browser under the lock. */
  function refresh(sentAt = now()) {
    if (!inFlight) {
      inFlight = withLock(() => refreshAfter(sentAt)).finally(() => {
        inFlight = null;
      });
    }
    return inFlight;
  }

  async function clientFetch(input, init = {}) {
    const options = { ...init, credentials: "include" };
    const url = typeof input === "string" && input.startsWith("/") ? baseUrl + input : input;
    const sentAt = now();
    const response = await fetch(url, options);
    if (response.status !== 401) return response;
    const refreshed = await refresh(sentAt).catch(() => false);
    return refreshed ? fetch(url, options) : response;
  }

  return { fetch: clientFetch, refresh };
}
