// An incoming call (issue 9): when someone joins the voice channel of a
// direct room and the user is not in it, the chat server pushes "ring"
// every few seconds while the caller waits. The page shows one banner
// per call: Accept opens the direct chat and joins its voice, Decline
// (or Esc) hides it, and it hides by itself after giveUpMs, or once the
// rings stop (the caller hung up or was answered elsewhere).

import { avatar } from "./ui.js";

const giveUpMs = 30000; // the banner hides after this long
const quietMs = 10000; // rings of a room closer than this are one call

export class Ring {
  // inCall(room) says whether the page is in room's voice channel;
  // accept(room, caller) answers the call.
  constructor(inCall, accept) {
    this.inCall = inCall;
    this.accept = accept;
    this.box = document.getElementById("voice-ring");
    this.box.ring = this; // for the console and the browser test
    this.text = document.getElementById("voice-ring-text");
    this.who = document.getElementById("voice-ring-avatar");
    this.call = null; // {room, user} while the banner shows
    this.last = new Map(); // room -> when its last ring came (ms)
    this.timers = { giveUp: 0, quiet: 0 };
    document.getElementById("voice-accept").addEventListener("click", () => this.answer());
    document.getElementById("voice-decline").addEventListener("click", () => this.hide());
    document.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && this.call) this.hide();
    });
  }

  // onPush takes a "ring" push: user calls the user in room.
  onPush(f) {
    const now = Date.now();
    const last = this.last.get(f.room) ?? -Infinity;
    this.last.set(f.room, now);
    if (this.inCall(f.room)) return;
    const showing = this.call && this.call.room === f.room;
    if (!showing && now - last < quietMs) return; // a call declined or given up on
    clearTimeout(this.timers.quiet);
    this.timers.quiet = setTimeout(() => this.hide(), quietMs);
    if (showing) return;
    this.call = { room: f.room, user: f.user };
    this.box.hidden = false; // first: the text then changes in a shown live region
    this.text.textContent = `${f.user} is calling`;
    const a = avatar(f.user);
    a.id = "voice-ring-avatar";
    this.who.replaceWith(a);
    this.who = a;
    clearTimeout(this.timers.giveUp);
    this.timers.giveUp = setTimeout(() => this.hide(), giveUpMs);
  }

  // joined: the page joined room's voice channel (its Call button): its
  // call, if ringing, is answered.
  joined(room) {
    if (this.call && this.call.room === room) this.hide();
  }

  answer() {
    const call = this.call;
    this.hide();
    if (call) this.accept(call.room, call.user);
  }

  hide() {
    for (const k of Object.keys(this.timers)) clearTimeout(this.timers[k]);
    this.call = null;
    this.box.hidden = true;
  }
}
