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
 *   (since its own request was sent) just retries. Where Web Locks are missing, tabs may refresh
 *   at the same moment; refreshd answers those within its reuse interval with the same new
 *   tokens, so nobody is logged out and the session still rotates once.
 * - When the refresh itself is refused, `onSessionEnded` is called and the 401 is returned.
 * - A request body must be resendable (a string, FormData, Blob, URLSearchParams), because a
 *   request that met an expired access token is sent again after the refresh.
 */

const LAST_REFRESH_KEY = "refreshd:last-refresh";

export function createClient({
  baseUrl = "",
  refreshPath = "/api/auth/token/refresh/",
  lockName = "refreshd-refresh",
  onRefresh = () => {},
  onSessionEnded = () => {},
} = {}) {
  let inFlight = null;

  const now = () => Date.now();

  function lastRefresh() {
    try {
      return Number(window.localStorage.getItem(LAST_REFRESH_KEY) || 0);
    } catch {
      return 0; // storage blocked: fall back to per-tab single-flight
    }
  }

  function recordRefresh() {
    try {
      window.localStorage.setItem(LAST_REFRESH_KEY, String(now()));
    } catch {
      /* storage blocked */
    }
  }

  function withLock(task) {
    if (typeof navigator !== "undefined" && navigator.locks && navigator.locks.request) {
      return navigator.locks.request(lockName, task);
    }
    return task();
  }

  /** Refreshes unless another tab did after `sentAt`; resolves to true when a retry may work. */
  async function refreshAfter(sentAt) {
    if (lastRefresh() > sentAt) return true;
    const response = await fetch(baseUrl + refreshPath, {
      method: "POST",
      credentials: "include",
    });
    if (response.ok) {
      recordRefresh();
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
