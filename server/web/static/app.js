// The chat app. The chat server's gateway does the chat: it says where
// each message goes (the id of the message it goes before), so the page
// never sorts. Everything user-written is shown with textContent.

import { Connection } from "./conn.js";
import { avatar, el, fullTime, shortTime, toast } from "./ui.js";
import { Ring } from "./ring.js";
import { Voice } from "./voice.js";

const $ = (sel) => document.querySelector(sel);
const list = $("#messages");
const timeline = $("#timeline");
const composer = $("#composer");

const state = {
  me: "",
  server: document.body.dataset.server,
  central: document.body.dataset.central,
  rooms: new Map(), // name -> {name, direct, peer, unread, last}
  current: "",
  more: false, // older pages of the current room remain
  loadingOlder: false,
  settled: new Map(), // room -> BigInt stamp time (ns) up to which it is settled
  parked: new Map(), // id -> messages waiting for the message they go before
  outbox: new Map(), // id -> {room, text}: posts not yet acknowledged
};

const conn = new Connection({
  onPush: handlePush,
  onState: (s) => {
    const st = $("#status");
    st.dataset.state = s;
    st.querySelector(".status-text").textContent = s === "connected" ? "connected" : "reconnecting…";
  },
  onEnded: () => goCentral("/"),
  onGiveUp: () => goCentral(`/go?failed=${encodeURIComponent(state.server)}`),
});

const voice = new Voice(conn, () => state.me);
const ring = new Ring((room) => voice.room === room, answerCall);
$("#voice-join").addEventListener("click", () => ring.joined(state.current));

function goCentral(path) {
  if (state.central) location.href = state.central + path;
  else location.reload();
}

// ---- pushes ----------------------------------------------------------

function handlePush(f) {
  switch (f.type) {
    case "hello":
      hello(f);
      break;
    case "message":
      if (f.settled) state.settled.set(f.room, BigInt(f.settled));
      onMessage(f.msg, f.before);
      break;
    case "event":
      if (f.room === state.current) {
        list.append(el("li", "event", `${f.user} ${f.kind === "joined" ? "joined" : "left"} the room`));
        scrollIfNear();
        who(f.room);
      }
      break;
    case "rooms":
      setRooms(f.rooms);
      break;
    case "status":
      conn.h.onState(f.state);
      break;
    case "voice":
      voice.onPush(f);
      break;
    case "ring":
      ring.onPush(f);
      break;
    case "error":
      toast(f.error.message);
      break;
  }
}

async function hello(f) {
  state.me = f.user;
  if (f.central) state.central = f.central;
  $("#me").textContent = f.user;
  $("#me-avatar").textContent = f.user.slice(0, 1);
  voice.reconnected();
  // The read marks live in this browser: tell the gateway, then list.
  const prefix = `distchat:read:${state.me}:`;
  for (let i = 0; i < localStorage.length; i++) {
    const k = localStorage.key(i);
    if (k.startsWith(prefix)) conn.request("read", { room: k.slice(prefix.length), stamp: localStorage.getItem(k) });
  }
  const r = await conn.request("rooms");
  if (r.error) return toast(r.error.message);
  setRooms(r.rooms);
  const want = decodeURIComponent(location.hash.slice(1)) || localStorage.getItem(`distchat:last:${state.me}`) || "";
  const first = state.rooms.has(want) ? want : state.rooms.keys().next().value;
  if (state.current && state.rooms.has(state.current)) openRoom(state.current, true);
  else if (first) openRoom(first);
  // Posts whose reply was lost with the connection go again, same id.
  for (const [id, p] of state.outbox) post(id, p.room, p.text);
}

function onMessage(msg, before) {
  if (msg.room === state.current) {
    show(msg, before);
    if (document.visibilityState === "visible") markRead();
    return;
  }
  const r = state.rooms.get(msg.room);
  if (!r) {
    conn.request("rooms").then((x) => !x.error && setRooms(x.rooms));
    return;
  }
  if (msg.from !== state.me) {
    r.unread++;
    renderRooms();
  }
}

// ---- the message list ------------------------------------------------

const byId = (id) => list.querySelector(`li.msg[data-id="${CSS.escape(id)}"]`);
const firstUnconfirmed = () => list.querySelector("li.msg.pending, li.msg.failed");

function renderMsg(msg, cls = "") {
  const li = el("li", `msg ${cls}`.trim());
  li.dataset.id = msg.id;
  if (msg.stamp) li.dataset.stamp = msg.stamp;
  if (msg.from === state.me) li.classList.add("mine");
  li.append(avatar(msg.from));
  const meta = el("div", "meta");
  meta.append(el("span", "from", msg.from), el("time", "time", shortTime(msg.time)));
  li.append(meta, el("div", "text", msg.text));
  const info = el("div", "info");
  li.append(info);
  li._msg = msg;
  return li;
}

// infoText is what hovering a message shows: its stamp and whether it is
// in the room's settled prefix (final: nothing can come before it now).
function infoText(msg) {
  if (!msg.stamp) return "not yet stamped: sending…";
  const settledUpTo = state.settled.get(msg.room) ?? 0n;
  const settled = msg.settled || (settledUpTo > 0n && BigInt(msg.stamp.split("/")[0]) <= settledUpTo);
  return `${fullTime(msg.time)} · ${msg.server} · seq ${msg.seq} · ${settled ? "settled" : "not settled yet"}`;
}

list.addEventListener("mouseover", (ev) => {
  const li = ev.target.closest("li.msg");
  if (li && li._msg) li.querySelector(".info").textContent = infoText(li._msg);
});
list.addEventListener("click", (ev) => {
  const retry = ev.target.closest(".retry");
  const li = ev.target.closest("li.msg");
  if (!li) return;
  if (retry) {
    const p = li._msg;
    li.classList.replace("failed", "pending");
    retry.remove();
    state.outbox.set(p.id, { room: p.room, text: p.text });
    post(p.id, p.room, p.text);
    return;
  }
  if (li._msg) li.querySelector(".info").textContent = infoText(li._msg);
  for (const o of list.querySelectorAll("li.show-info")) if (o !== li) o.classList.remove("show-info");
  li.classList.toggle("show-info");
});

// show puts an acknowledged message in its place: before the message
// with id before, or after every acknowledged one. A message whose
// successor is not on the page yet waits for it.
function show(msg, before) {
  const old = byId(msg.id);
  if (old && !old.classList.contains("pending") && !old.classList.contains("failed")) return;
  const near = nearBottom();
  if (old) old.remove();
  state.outbox.delete(msg.id);
  if (!place(renderMsg(msg), before)) {
    if (!state.parked.has(before)) state.parked.set(before, []);
    state.parked.get(before).push(msg);
    return;
  }
  if (near) scrollToEnd();
}

function place(li, before) {
  if (before) {
    const next = byId(before);
    if (!next || next.classList.contains("pending") || next.classList.contains("failed")) return false;
    list.insertBefore(li, next);
  } else {
    list.insertBefore(li, firstUnconfirmed());
  }
  const waiting = state.parked.get(li.dataset.id);
  if (waiting) {
    state.parked.delete(li.dataset.id);
    for (const m of waiting) if (!byId(m.id)) place(renderMsg(m), li.dataset.id);
  }
  return true;
}

function nearBottom() {
  return timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 120;
}
function scrollToEnd() {
  timeline.scrollTop = timeline.scrollHeight;
}
function scrollIfNear() {
  if (nearBottom()) scrollToEnd();
}

function oldestStamp() {
  const li = list.querySelector("li.msg[data-stamp]:not(.pending):not(.failed)");
  return li ? li.dataset.stamp : "";
}
function newestStamp() {
  const all = list.querySelectorAll("li.msg[data-stamp]:not(.pending):not(.failed)");
  return all.length ? all[all.length - 1].dataset.stamp : "";
}

async function loadNewest(room) {
  const r = await conn.request("history", { room, before: "" });
  if (room !== state.current) return;
  if (r.error) return toast(r.error.message);
  state.settled.set(room, BigInt(r.settled || "0"));
  state.parked.clear();
  for (const li of [...list.children]) {
    if (!li.classList.contains("pending") && !li.classList.contains("failed")) li.remove();
  }
  for (const m of r.messages) if (!byId(m.id)) list.insertBefore(renderMsg(m), firstUnconfirmed());
  state.more = r.more;
  scrollToEnd();
  markRead();
  if (timeline.scrollHeight <= timeline.clientHeight) loadOlder();
}

async function loadOlder() {
  const room = state.current;
  if (!room || !state.more || state.loadingOlder) return;
  const before = oldestStamp();
  if (!before) return;
  state.loadingOlder = true;
  $("#older").hidden = false;
  const r = await conn.request("history", { room, before });
  state.loadingOlder = false;
  $("#older").hidden = true;
  if (room !== state.current) return;
  if (r.error) return toast(r.error.message);
  const height = timeline.scrollHeight;
  const first = list.querySelector("li.msg:not(.pending):not(.failed)") || firstUnconfirmed();
  for (const m of r.messages) if (!byId(m.id)) list.insertBefore(renderMsg(m), first);
  state.more = r.more;
  timeline.scrollTop += timeline.scrollHeight - height;
}

timeline.addEventListener("scroll", () => {
  if (timeline.scrollTop < 80) loadOlder();
});

function markRead() {
  const room = state.current;
  const stamp = newestStamp();
  const r = state.rooms.get(room);
  if (r && r.unread) {
    r.unread = 0;
    renderRooms();
  }
  if (!stamp) return;
  const key = `distchat:read:${state.me}:${room}`;
  if (localStorage.getItem(key) === stamp) return;
  localStorage.setItem(key, stamp);
  conn.request("read", { room, stamp });
}
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && state.current) markRead();
});

// ---- rooms -----------------------------------------------------------

function setRooms(rooms) {
  state.rooms = new Map(rooms.map((r) => [r.name, r]));
  const cur = state.rooms.get(state.current);
  if (cur) cur.unread = 0;
  renderRooms();
}

function roomLabel(r) {
  return r.direct ? r.peer : r.name;
}

function renderRooms() {
  const ul = $("#rooms");
  ul.replaceChildren();
  const all = [...state.rooms.values()];
  const groups = [
    ["Rooms", all.filter((r) => !r.direct)],
    ["Direct messages", all.filter((r) => r.direct)],
  ];
  for (const [title, rooms] of groups) {
    if (!rooms.length) continue;
    ul.append(el("li", "group", title));
    for (const r of rooms) {
      const li = el("li");
      li.dataset.room = r.name;
      li.tabIndex = 0;
      li.setAttribute("role", "button");
      if (r.name === state.current) li.classList.add("active");
      if (r.unread) li.classList.add("has-unread");
      const badge = el("span", "unread", String(r.unread));
      badge.hidden = !r.unread;
      li.append(el("span", "sigil", r.direct ? "@" : "#"), el("span", "name", roomLabel(r)), badge);
      ul.append(li);
    }
  }
  $("#rooms-empty").hidden = state.rooms.size > 0;
}

$("#rooms").addEventListener("click", (ev) => {
  const li = ev.target.closest("li[data-room]");
  if (li) openRoom(li.dataset.room);
});
$("#rooms").addEventListener("keydown", (ev) => {
  const li = ev.target.closest("li[data-room]");
  if (li && (ev.key === "Enter" || ev.key === " ")) {
    ev.preventDefault();
    openRoom(li.dataset.room);
  }
});

function openRoom(name, reload = false) {
  const same = name === state.current;
  state.current = name;
  localStorage.setItem(`distchat:last:${state.me}`, name);
  history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  const r = state.rooms.get(name) || { name, direct: false };
  $("#room-title").textContent = r.direct ? `@ ${r.peer}` : `# ${name}`;
  $("#welcome").hidden = true;
  $("#leave-room").hidden = false;
  $("#leave-room").textContent = r.direct ? "Close" : "Leave";
  composer.disabled = false;
  $("#send").disabled = false;
  composer.placeholder = r.direct ? `Message ${r.peer}` : `Message #${name}`;
  $("#app").classList.remove("show-sidebar");
  voice.show(name, !!r.direct);
  if (!same || reload) {
    if (!same) {
      list.replaceChildren();
      state.parked.clear();
      for (const [id, p] of state.outbox) {
        if (p.room === name) list.append(renderMsg({ id, room: name, from: state.me, text: p.text, time: Date.now() }, "pending"));
      }
    }
    state.more = false;
    loadNewest(name);
    who(name);
  }
  renderRooms();
  composer.focus();
}

// answerCall accepts caller's call in the direct room: it opens the
// chat and joins its voice channel.
function answerCall(room, caller) {
  if (!state.rooms.has(room)) state.rooms.set(room, { name: room, direct: true, peer: caller, unread: 0 });
  openRoom(room);
  voice.join(room);
}

async function who(room) {
  const r = await conn.request("who", { room });
  if (room !== state.current || r.error) return;
  const ul = $("#members");
  ul.replaceChildren();
  for (const m of r.members) {
    const li = el("li", m.online ? "online" : "", m.user);
    li.dataset.user = m.user;
    li.title = m.online ? `online on ${m.servers.join(", ")}` : "offline";
    ul.append(li);
  }
}

$("#leave-room").addEventListener("click", async () => {
  const room = state.current;
  if (!room) return;
  const r = await conn.request("leave", { room });
  if (r.error) return toast(r.error.message);
  localStorage.removeItem(`distchat:read:${state.me}:${room}`);
  state.rooms.delete(room);
  voice.roomGone(room);
  voice.show("", false);
  state.current = "";
  list.replaceChildren();
  $("#members").replaceChildren();
  $("#room-title").textContent = "Pick a room";
  $("#welcome").hidden = false;
  $("#leave-room").hidden = true;
  composer.disabled = true;
  $("#send").disabled = true;
  const next = state.rooms.keys().next().value;
  if (next) openRoom(next);
  else renderRooms();
});

// ---- posting ---------------------------------------------------------

function newId() {
  return crypto.randomUUID().replaceAll("-", "");
}

async function post(id, room, text) {
  const r = await conn.request("post", { room, id, text });
  if (!r.error) {
    state.outbox.delete(id);
    if (room === state.current) show(r.msg, r.before);
    return;
  }
  if (r.error.code === "web.disconnected") return; // sent again after the reconnect
  state.outbox.delete(id);
  toast(r.error.message);
  const li = byId(id);
  if (li && li.classList.contains("pending")) {
    li.classList.replace("pending", "failed");
    const b = el("button", "retry", "Retry");
    b.type = "button";
    li.querySelector(".meta").append(b);
  }
}

function send() {
  const text = composer.value;
  const room = state.current;
  if (!room || !text.trim()) return;
  const id = newId();
  composer.value = "";
  autosize();
  state.outbox.set(id, { room, text });
  list.append(renderMsg({ id, room, from: state.me, text, time: Date.now() }, "pending"));
  scrollToEnd();
  post(id, room, text);
}

function autosize() {
  composer.style.height = "auto";
  composer.style.height = `${Math.min(composer.scrollHeight + 2, 160)}px`;
}

$("#composer-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  send();
});
composer.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    send();
  }
});
composer.addEventListener("input", autosize);

// ---- dialogs ---------------------------------------------------------

const roomDialog = $("#room-dialog");
const directDialog = $("#direct-dialog");
for (const d of [roomDialog, directDialog]) {
  d.addEventListener("click", (ev) => {
    if (ev.target === d || ev.target.closest("[data-close]")) d.close();
  });
}

$("#new-room").addEventListener("click", async () => {
  $("#room-name").value = "";
  roomDialog.showModal();
  $("#room-name").focus();
  const r = await conn.request("rooms");
  const ul = $("#public-rooms");
  ul.replaceChildren();
  if (r.error) return;
  setRooms(r.rooms);
  const open = (r.public || []).filter((p) => !p.joined);
  if (!open.length) ul.append(el("li", "none", "No other public rooms yet."));
  for (const p of open) {
    const li = el("li");
    li.dataset.room = p.name;
    li.tabIndex = 0;
    li.append(el("span", "", `# ${p.name}`), el("span", "count", `${p.members} member${p.members === 1 ? "" : "s"}`));
    ul.append(li);
  }
});

async function roomOp(op, room) {
  if (!room) return;
  const r = await conn.request(op, { room });
  if (r.error) return toast(r.error.message);
  roomDialog.close();
  if (!state.rooms.has(room)) state.rooms.set(room, { name: room, direct: false, unread: 0 });
  openRoom(room);
}
$("#create-room").addEventListener("click", () => roomOp("create", $("#room-name").value.trim()));
$("#join-room").addEventListener("click", () => roomOp("join", $("#room-name").value.trim()));
$("#room-name").addEventListener("keydown", (ev) => {
  if (ev.key !== "Enter") return;
  ev.preventDefault();
  const name = $("#room-name").value.trim();
  const known = $(`#public-rooms li[data-room="${CSS.escape(name)}"]`);
  roomOp(known ? "join" : "create", name);
});
$("#public-rooms").addEventListener("click", (ev) => {
  const li = ev.target.closest("li[data-room]");
  if (li) roomOp("join", li.dataset.room);
});
$("#public-rooms").addEventListener("keydown", (ev) => {
  const li = ev.target.closest("li[data-room]");
  if (li && ev.key === "Enter") roomOp("join", li.dataset.room);
});

let searchTimer = 0;
async function search() {
  const prefix = $("#user-search").value.trim();
  const r = await conn.request("search", { prefix });
  const ul = $("#user-results");
  ul.replaceChildren();
  if (r.error) return toast(r.error.message);
  if (!r.users.length) ul.append(el("li", "none", "No such user."));
  for (const u of r.users) {
    const li = el("li");
    li.dataset.user = u;
    li.tabIndex = 0;
    li.append(avatar(u), el("span", "", u));
    ul.append(li);
  }
}
$("#new-direct").addEventListener("click", () => {
  $("#user-search").value = "";
  directDialog.showModal();
  $("#user-search").focus();
  search();
});
$("#user-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(search, 150);
});
async function startDirect(user) {
  const r = await conn.request("direct", { user });
  if (r.error) return toast(r.error.message);
  directDialog.close();
  if (!state.rooms.has(r.room)) state.rooms.set(r.room, { name: r.room, direct: true, peer: user, unread: 0 });
  openRoom(r.room);
}
$("#user-results").addEventListener("click", (ev) => {
  const li = ev.target.closest("li[data-user]");
  if (li) startDirect(li.dataset.user);
});
$("#user-results").addEventListener("keydown", (ev) => {
  const li = ev.target.closest("li[data-user]");
  if (li && ev.key === "Enter") startDirect(li.dataset.user);
});
$("#user-search").addEventListener("keydown", (ev) => {
  if (ev.key !== "Enter") return;
  ev.preventDefault();
  const first = $("#user-results li[data-user]");
  if (first) startDirect(first.dataset.user);
});

// ---- layout ----------------------------------------------------------

$("#menu").addEventListener("click", () => $("#app").classList.toggle("show-sidebar"));
$("#toggle-members").addEventListener("click", (ev) => {
  const app = $("#app");
  const narrow = matchMedia("(max-width: 720px)").matches;
  const shown = narrow ? app.classList.toggle("show-members") : !app.classList.toggle("hide-members");
  ev.currentTarget.setAttribute("aria-pressed", String(shown));
});
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") $("#app").classList.remove("show-sidebar", "show-members");
});

conn.open();
