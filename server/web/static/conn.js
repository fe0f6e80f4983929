// The WebSocket to the chat server's gateway: requests with replies,
// pushes, and reconnecting with back-off. After maxFailures attempts in a
// row that do not reach a hello, the page asks central to place the user
// on a live chat server.

const maxFailures = 3;

export class Connection {
  // handlers: onPush(frame), onState("connected"|"reconnecting"),
  // onEnded(), onGiveUp().
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.nextReq = 1;
    this.waiting = new Map(); // req -> {resolve, reject}
    this.failures = 0;
    this.ended = false;
    this.timer = 0;
  }

  open() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws`);
    this.ws = ws;
    let greeted = false;
    ws.addEventListener("message", (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (frame.type === "hello") {
        greeted = true;
        this.failures = 0;
        this.h.onState("connected");
      }
      if (frame.type === "ended") {
        this.ended = true;
        this.h.onEnded();
        return;
      }
      if (frame.type === "reply") {
        const w = this.waiting.get(frame.req);
        if (w) {
          this.waiting.delete(frame.req);
          w.resolve(frame);
        }
        return;
      }
      this.h.onPush(frame);
    });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const w of this.waiting.values()) {
        w.resolve({ type: "reply", error: { code: "web.disconnected", message: "connection lost; try again" } });
      }
      this.waiting.clear();
      if (this.ended) return;
      this.h.onState("reconnecting");
      if (!greeted) this.failures++;
      if (this.failures >= maxFailures) {
        this.h.onGiveUp();
        return;
      }
      const delay = Math.min(500 * 2 ** this.failures, 8000) * (0.75 + Math.random() / 2);
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.open(), delay);
    });
  }

  // request sends {op, ...fields} and resolves with the reply frame
  // (whose error field is set when it failed).
  request(op, fields = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.resolve({ type: "reply", error: { code: "web.disconnected", message: "not connected; try again in a moment" } });
    }
    const req = this.nextReq++;
    return new Promise((resolve) => {
      this.waiting.set(req, { resolve });
      ws.send(JSON.stringify({ req, op, ...fields }));
    });
  }
}
