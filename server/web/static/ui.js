// Small DOM helpers. Text always goes in with textContent, never as HTML.

export function el(tag, cls = "", text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// avatar is a round badge with the user's initial, in a colour of its own.
export function avatar(name) {
  const a = el("span", "avatar", (name || "?").slice(0, 1));
  let h = 0;
  for (const c of name || "") h = (h * 31 + c.codePointAt(0)) % 360;
  a.style.background = `hsl(${h} 45% 45%)`;
  a.setAttribute("aria-hidden", "true");
  return a;
}

export function shortTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function fullTime(ms) {
  const d = new Date(ms);
  const t = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return `${d.toLocaleDateString()} ${t}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

let toastTimer = 0;
export function toast(message) {
  const t = document.getElementById("toast");
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.hidden = true), 5000);
}
