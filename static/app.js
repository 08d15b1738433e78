// The demo page: log in, see who you are, call a protected route, watch silent refreshes, see
// and end your sessions, log out. Everything goes through refreshd-client.js.
import { createClient } from "./refreshd-client.js";

const api = document.body.dataset.api;
// Which session cookies came with the page ("access", "refresh" or "none"): the server can see
// them, the page cannot (they are HttpOnly).
const sessionHint = document.body.dataset.session;
const $ = (id) => document.getElementById(id);

let loggedIn = false;

const client = createClient({
  refreshPath: api + "token/refresh/",
  onRefresh: () => {
    log("silent refresh: new tokens set");
    // The list shows when each session was last refreshed: this one just was.
    if (loggedIn) showSessions();
  },
  onSessionEnded: () => {
    if (loggedIn) log("session ended: please log in again");
    showLoggedOut();
  },
});

function log(message) {
  const item = document.createElement("li");
  item.textContent = new Date().toLocaleTimeString() + "  " + message;
  $("log").prepend(item);
}

function showLoggedOut() {
  loggedIn = false;
  $("login").hidden = false;
  $("session").hidden = true;
  $("result").textContent = "";
}

async function showLoggedIn() {
  const response = await client.fetch(api + "me/");
  if (!response.ok) return showLoggedOut();
  const me = await response.json();
  loggedIn = true;
  $("user").textContent = me.username;
  $("login").hidden = true;
  $("session").hidden = false;
  await showSessions();
}

/** On load: ask who we are only when the browser holds a session's cookies. */
async function start() {
  if (sessionHint === "none") return showLoggedOut();
  if (sessionHint === "refresh") {
    // The access cookie has expired: refresh first instead of collecting a 401 from `me`.
    const refreshed = await client.refresh().catch(() => false);
    if (!refreshed) return showLoggedOut();
  }
  return showLoggedIn();
}

const when = (t) => (t ? new Date(t).toLocaleString() : "never");

// One listing at a time; a request for another while one runs is served by one more run after it.
let listing = null;
let listAgain = false;

function showSessions() {
  if (listing) {
    listAgain = true;
    return listing;
  }
  listing = renderSessions().finally(() => {
    listing = null;
    if (listAgain) {
      listAgain = false;
      showSessions();
    }
  });
  return listing;
}

async function renderSessions() {
  const response = await client.fetch(api + "sessions/");
  if (!response.ok) return;
  const sessions = await response.json();
  const body = $("sessions");
  body.replaceChildren();
  for (const s of sessions) {
    const row = document.createElement("tr");
    if (s.current) row.className = "current";
    const cells = [
      ["Device", s.device || s.user_agent || "Unknown device", s.user_agent],
      ["Address", s.client_address || "unknown"],
      ["Started", when(s.created)],
      ["Last refreshed", when(s.last_refreshed)],
    ];
    for (const [label, text, title] of cells) {
      const cell = document.createElement("td");
      cell.dataset.label = label;
      cell.textContent = text;
      if (title) cell.title = title;
      row.append(cell);
    }
    const action = document.createElement("td");
    action.className = "action";
    if (s.current) {
      action.textContent = "this browser";
    } else {
      const end = document.createElement("button");
      end.className = "secondary";
      end.textContent = "End";
      end.setAttribute("aria-label", "End the session of " + (s.device || "this device"));
      end.addEventListener("click", async () => {
        await client.fetch(api + "sessions/" + encodeURIComponent(s.id) + "/", { method: "DELETE" });
        log("ended a session (" + (s.device || "unknown device") + ")");
        showSessions();
      });
      action.append(end);
    }
    row.append(action);
    body.append(row);
  }
  $("logout-others").hidden = !sessions.some((s) => !s.current);
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch(api + "login/", {
    method: "POST",
    credentials: "include",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("username").value, password: $("password").value }),
  });
  const body = await response.json();
  $("login-error").textContent = response.ok ? "" : body.detail || "Login failed.";
  if (response.ok) {
    log("logged in");
    showLoggedIn();
  }
});

$("call").addEventListener("click", async () => {
  const response = await client.fetch(api + "me/");
  $("result").textContent = response.status + " " + (await response.text());
  log("protected call: " + response.status);
  if (response.status === 401) showLoggedOut();
});

$("logout").addEventListener("click", async () => {
  await fetch(api + "logout/", { method: "POST", credentials: "include" });
  log("logged out");
  showLoggedOut();
});

$("logout-others").addEventListener("click", async () => {
  const response = await client.fetch(api + "sessions/");
  if (!response.ok) return;
  const others = (await response.json()).filter((s) => !s.current);
  let ended = 0;
  for (const s of others) {
    const r = await client.fetch(api + "sessions/" + encodeURIComponent(s.id) + "/", { method: "DELETE" });
    if (r.ok) ended += 1;
  }
  log("logged out " + ended + " other session" + (ended === 1 ? "" : "s"));
  await showSessions();
});

// For scripted checks: the page's client, and a promise that settles once the page has loaded.
window.refreshdDemo = { client, api, ready: start(), sessionsShown: () => listing || Promise.resolve() };
