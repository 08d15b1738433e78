// The demo page: log in, see who you are, call a protected route, watch silent refreshes, see
// and end your sessions, log out. Everything goes through refreshd-client.js.
import { createClient } from "./refreshd-client.js";

const api = document.body.dataset.api;
const $ = (id) => document.getElementById(id);

let loggedIn = false;

const client = createClient({
  refreshPath: api + "token/refresh/",
  onRefresh: () => log("silent refresh: new tokens set"),
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

async function showSessions() {
  const response = await client.fetch(api + "sessions/");
  const body = $("sessions");
  body.replaceChildren();
  if (!response.ok) return;
  for (const s of await response.json()) {
    const row = document.createElement("tr");
    const when = (t) => (t ? new Date(t).toLocaleString() : "never");
    for (const text of [s.user_agent || "unknown client", s.client_address || "", when(s.created), when(s.last_refreshed)]) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    const action = document.createElement("td");
    if (s.current) {
      action.textContent = "this tab";
    } else {
      const end = document.createElement("button");
      end.textContent = "End";
      end.addEventListener("click", async () => {
        await client.fetch(api + "sessions/" + encodeURIComponent(s.id) + "/", { method: "DELETE" });
        log("ended a session");
        showSessions();
      });
      action.append(end);
    }
    row.append(action);
    body.append(row);
  }
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

// For scripted checks: the page's client, and a promise that settles once the page has loaded.
window.refreshdDemo = { client, api, ready: showLoggedIn() };
