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
 * - Concurrent 401s in one tab share one refresh (single-flight), and a 401 to a request sent
 *   before this tab's latest refresh just retries with the new cookies.
 * - Tabs need no coordination. refreshd commits a rotation only when the new refresh token is
 *   first used: tabs that refresh at the same moment with the same cookie all get the one new
 *   token, and a tab that still sends a token retired a moment ago (within the server's reuse
 *   interval) is answered with the newest one. Nobody is logged out by a race, a lost response or
 *   a retry after a 503.
 * - When the refresh itself is refused, `onSessionEnded` is called and the 401 is returned.
 * - A request body must be resendable (a string, FormData, Blob, URLSearchParams), because a
 *   request that met an expired access token is sent again after the refresh.
 */

export function createClient({
  baseUrl = "",
  refreshPath = "/api/auth/token/refresh/",
  onRefresh = () => {},
  onSessionEnded = () => {},
} = {}) {
  let inFlight = null;
  let refreshedAt = 0;
  const now = () => Date.now();

  /** Refreshes the session; resolves to true when a retry may work. */
  async function refreshOnce() {
    const response = await fetch(baseUrl + refreshPath, {
      method: "POST",
      credentials: "include",
    });
    if (response.ok) {
      refreshedAt = now();
      onRefresh();
      return true;
    }
    if (response.status === 401) onSessionEnded();
    return false;
  }

  /**
   * One refresh per tab at a time: concurrent callers share it. A caller whose request was sent
   * before this tab's latest refresh (`sentAt`) needs none: its retry carries the new cookies.
   */
  function refresh(sentAt = now()) {
    if (!inFlight && refreshedAt > sentAt) return Promise.resolve(true);
    if (!inFlight) {
      inFlight = refreshOnce().finally(() => {
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
