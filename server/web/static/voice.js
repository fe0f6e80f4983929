// Voice chat in a room (issue 9). The page joins a room's voice channel;
// the channel's SFU, on whichever chat server hosts it, sends offers and
// the page only answers, never offers (voice/doc.go explains why). The
// SFU's first offer has two media sections for the page to send on (its
// microphone and its camera), and one more for each track of the others
// that it forwards; each such stream's id is its user's name. The page
// trickles its ICE candidates after its answer. Signals go over the
// gateway's WebSocket: voice-join, voice-signal, voice-leave, and the
// "voice" push; voice-who, polled while in a channel, lists who is in it
// and who is speaking (from the audio levels the SFU reads).

import { avatar, el, toast } from "./ui.js";

const pollMs = 333; // voice-who while in a channel: a speaking indicator
const offerWaitMs = 15000; // a join with no offer by then is tried again
const rejoinDelays = [1000, 2000, 4000, 8000]; // then the page gives up

// mediaError is the message for a getUserMedia failure of the device
// what ("microphone" or "camera").
export function mediaError(err, what) {
  const name = err && err.name;
  if (name === "NotAllowedError" || name === "SecurityError") {
    return `Access to the ${what} was denied. Allow the ${what} for this site in the browser (the icon left of the address) and try again.`;
  }
  if (name === "NotFoundError" || name === "OverconstrainedError") {
    return `No ${what} was found. Connect one and try again.`;
  }
  if (name === "NotReadableError" || name === "AbortError") {
    return `The ${what} could not be started: another program may be using it.`;
  }
  return `The ${what} could not be used: ${(err && err.message) || err}`;
}

export class Voice {
  // conn is the page's Connection; me() returns the user's name.
  constructor(conn, me) {
    this.conn = conn;
    this.me = me;
    this.bar = document.getElementById("voice-bar");
    this.bar.voice = this; // for the console and the browser test: its pc
    this.ui = {
      join: document.getElementById("voice-join"),
      leave: document.getElementById("voice-leave"),
      mute: document.getElementById("voice-mute"),
      camera: document.getElementById("voice-camera"),
      state: document.getElementById("voice-state"),
      people: document.getElementById("voice-participants"),
      videos: document.getElementById("voice-videos"),
      audio: document.getElementById("voice-audio"),
    };
    this.viewed = { room: "", direct: false }; // the room the page shows
    this.room = ""; // the room whose voice channel the page is in
    this.mic = null; // the microphone's track
    this.cam = null; // the camera's track, while it is on
    this.pc = null;
    this.streams = new Map(); // user -> MediaStream received
    this.trackUsers = new Map(); // received track id -> user
    this.participants = [];
    this.tries = 0;
    this.timers = { poll: 0, rejoin: 0, offer: 0 };
    this.ui.join.addEventListener("click", () => this.join(this.viewed.room));
    this.ui.leave.addEventListener("click", () => this.leave());
    this.ui.mute.addEventListener("click", () => this.toggleMute());
    this.ui.camera.addEventListener("click", () => this.toggleCamera());
  }

  // show sets the room the page shows (room "" when none).
  show(room, direct) {
    this.viewed = { room, direct };
    this.render();
  }

  // ---- joining and leaving ----------------------------------------------

  async join(room) {
    if (!room || room === this.room) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      toast("Voice needs a secure page: open the chat server's web app over HTTPS.");
      return;
    }
    if (this.room) await this.leave();
    this.ui.join.disabled = true;
    try {
      const s = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      this.mic = s.getAudioTracks()[0];
    } catch (err) {
      toast(mediaError(err, "microphone"));
      return;
    } finally {
      this.ui.join.disabled = false;
    }
    this.room = room;
    this.tries = 0;
    this.render();
    this.connect();
    this.poll();
  }

  async leave() {
    const room = this.room;
    if (!room) return;
    this.hangUp();
    const r = await this.conn.request("voice-leave", { room });
    if (r.error && r.error.code !== "web.disconnected") toast(r.error.message);
  }

  // hangUp ends the page's side of the call: the connection, the
  // devices, the polling, the elements.
  hangUp() {
    this.closePC();
    for (const t of [this.mic, this.cam]) if (t) t.stop();
    this.mic = null;
    this.cam = null;
    this.room = "";
    this.participants = [];
    for (const k of Object.keys(this.timers)) clearTimeout(this.timers[k]);
    this.render();
  }

  // roomGone: the user left room; a call in it ends.
  roomGone(room) {
    if (room === this.room) this.leave();
  }

  // reconnected: the WebSocket is back (perhaps on another chat server),
  // which knows nothing of the call: join again.
  reconnected() {
    if (this.room) this.connect();
  }

  // connect makes a new connection and joins the channel with it; the
  // SFU's offer comes as a push.
  async connect() {
    this.closePC();
    const room = this.room;
    const pc = new RTCPeerConnection({ iceServers: [] }); // a LAN: no STUN or TURN
    this.pc = pc;
    this.offered = false;
    this.answered = false;
    this.pending = []; // candidates gathered before the answer went
    this.chain = Promise.resolve();
    pc.addEventListener("icecandidate", (ev) => {
      const c = ev.candidate;
      if (pc !== this.pc || !c || !c.candidate) return;
      const sig = { kind: "candidate", candidate: c.candidate, sdpMid: c.sdpMid || "", sdpMLineIndex: c.sdpMLineIndex || 0 };
      if (this.answered) this.signal(sig);
      else this.pending.push(sig);
    });
    pc.addEventListener("track", (ev) => pc === this.pc && this.onTrack(ev));
    pc.addEventListener("connectionstatechange", () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === "connected") this.tries = 0;
      if (pc.connectionState === "failed") this.lost("The voice connection failed");
      this.renderState();
    });
    this.renderState();
    clearTimeout(this.timers.offer);
    this.timers.offer = setTimeout(() => pc === this.pc && !this.offered && this.lost("The voice server did not answer"), offerWaitMs);
    const r = await this.conn.request("voice-join", { room });
    if (pc !== this.pc || !r.error) return;
    if (r.error.code === "web.disconnected") return; // joined again once reconnected
    toast(r.error.message);
    this.hangUp();
  }

  // lost: the call broke (the host died, the connection failed). Join
  // again, on whichever server hosts the channel now, a few times.
  lost(why) {
    this.closePC();
    if (this.tries >= rejoinDelays.length) {
      toast(`${why}; you left the voice channel.`);
      this.hangUp();
      return;
    }
    const delay = rejoinDelays[this.tries++];
    clearTimeout(this.timers.rejoin);
    this.timers.rejoin = setTimeout(() => this.room && this.connect(), delay);
    this.renderState(`${why}; reconnecting…`);
  }

  closePC() {
    clearTimeout(this.timers.rejoin);
    clearTimeout(this.timers.offer);
    if (this.pc) this.pc.close();
    this.pc = null;
    this.audioTx = null;
    this.videoTx = null;
    this.streams.clear();
    this.trackUsers.clear();
    this.ui.audio.replaceChildren();
    this.renderVideos();
  }

  // ---- signalling ---------------------------------------------------------

  // onPush takes a "voice" push: a signal of the SFU for room, in order.
  onPush(f) {
    if (f.room !== this.room || !this.pc) return;
    const sig = f.signal || {};
    if (f.elsewhere) {
      toast("You joined this voice channel in another tab or window.");
      this.hangUp();
      return;
    }
    if (sig.kind === "bye") {
      // A bye before this connection's first offer is the one of the
      // connection it replaced.
      if (this.offered) this.lost("The voice channel moved");
      return;
    }
    if (sig.kind !== "offer") return;
    this.offered = true;
    const pc = this.pc;
    this.chain = this.chain.then(() => this.answer(pc, sig.sdp)).catch((err) => {
      if (pc === this.pc) this.lost(`Voice negotiation failed (${err.message})`);
    });
  }

  async answer(pc, sdp) {
    if (pc !== this.pc) return;
    await pc.setRemoteDescription({ type: "offer", sdp });
    if (!this.audioTx) {
      // The first offer's first audio and video sections are the ones
      // the SFU receives on: the microphone and the camera go there. The
      // SFU may later send someone's track on them too, so they receive
      // as well as send.
      const txs = pc.getTransceivers();
      this.audioTx = txs.find((t) => t.receiver.track.kind === "audio");
      this.videoTx = txs.find((t) => t.receiver.track.kind === "video");
      this.audioTx.direction = "sendrecv";
      this.videoTx.direction = "sendrecv";
      await this.audioTx.sender.replaceTrack(this.mic);
      await this.videoTx.sender.replaceTrack(this.cam);
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (pc !== this.pc) return;
    this.signal({ kind: "answer", sdp: pc.localDescription.sdp });
    if (!this.answered) {
      this.answered = true;
      for (const c of this.pending) this.signal(c);
      this.pending = [];
      if (this.cam) this.signal({ kind: "camera", camera: true });
    }
  }

  async signal(sig) {
    const r = await this.conn.request("voice-signal", { room: this.room, signal: sig });
    if (r.error && r.error.code !== "web.disconnected" && sig.kind !== "candidate") toast(r.error.message);
  }

  // ---- media ---------------------------------------------------------------

  onTrack(ev) {
    const stream = ev.streams[0];
    if (!stream) return;
    const user = stream.id;
    this.trackUsers.set(ev.track.id, user);
    this.streams.set(user, stream);
    if (ev.track.kind === "audio") {
      let a = this.ui.audio.querySelector(`audio[data-user="${CSS.escape(user)}"]`);
      if (!a) {
        a = document.createElement("audio");
        a.autoplay = true;
        a.dataset.user = user;
        this.ui.audio.append(a);
      }
      if (a.srcObject !== stream) a.srcObject = stream;
      a.play().catch(() => {}); // autoplay may wait for a click
    }
    stream.addEventListener("removetrack", () => this.renderVideos());
    ev.track.addEventListener("unmute", () => this.renderVideos());
    ev.track.addEventListener("mute", () => this.renderVideos());
    this.renderVideos();
  }

  toggleMute() {
    if (!this.mic) return;
    this.mic.enabled = !this.mic.enabled;
    this.render();
  }

  async toggleCamera() {
    if (!this.room) return;
    if (this.cam) {
      const cam = this.cam;
      this.cam = null;
      if (this.videoTx) await this.videoTx.sender.replaceTrack(null);
      cam.stop();
      if (this.answered) this.signal({ kind: "camera", camera: false });
      this.render();
      return;
    }
    this.ui.camera.disabled = true;
    let cam;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 360 } } });
      cam = s.getVideoTracks()[0];
    } catch (err) {
      toast(mediaError(err, "camera"));
      return;
    } finally {
      this.ui.camera.disabled = false;
    }
    if (!this.room) {
      cam.stop();
      return;
    }
    this.cam = cam;
    if (this.videoTx) await this.videoTx.sender.replaceTrack(cam);
    if (this.answered) this.signal({ kind: "camera", camera: true });
    this.render();
  }

  // ---- who is in the channel -------------------------------------------------

  async poll() {
    clearTimeout(this.timers.poll);
    const room = this.room;
    if (!room) return;
    const r = await this.conn.request("voice-who", { room });
    if (room !== this.room) return;
    if (!r.error) {
      this.participants = r.participants || [];
      this.renderPeople();
      this.renderVideos();
    }
    this.timers.poll = setTimeout(() => this.poll(), pollMs);
  }

  // ---- rendering -------------------------------------------------------------

  render() {
    const { room, direct } = this.viewed;
    const inCall = this.room !== "";
    this.bar.hidden = !room && !inCall;
    this.ui.join.hidden = !room || room === this.room;
    this.ui.join.textContent = direct ? "Call" : "Join voice";
    for (const b of [this.ui.leave, this.ui.mute, this.ui.camera]) b.hidden = !inCall;
    const muted = !!this.mic && !this.mic.enabled;
    this.ui.mute.setAttribute("aria-pressed", String(muted));
    this.ui.mute.textContent = muted ? "Unmute" : "Mute";
    this.ui.camera.setAttribute("aria-pressed", String(!!this.cam));
    this.ui.camera.textContent = this.cam ? "Camera off" : "Camera on";
    this.bar.classList.toggle("in-call", inCall);
    this.renderState();
    this.renderPeople();
    this.renderVideos();
  }

  renderState(note) {
    let text = "";
    if (this.room) {
      const st = this.pc ? this.pc.connectionState : "closed";
      text = note || (st === "connected" ? "Voice connected" : "Connecting voice…");
      if (this.room !== this.viewed.room) text += ` · in ${this.room.startsWith("dm:") ? "a call" : "#" + this.room}`;
    }
    this.ui.state.textContent = text;
  }

  renderPeople() {
    const ul = this.ui.people;
    ul.replaceChildren();
    for (const p of this.participants) {
      const li = el("li");
      li.dataset.user = p.user;
      li.classList.toggle("speaking", p.speaking);
      li.classList.toggle("connecting", !p.connected);
      li.classList.toggle("camera", p.camera);
      const state = [p.connected ? "" : "connecting", p.speaking ? "speaking" : "", p.camera ? "camera on" : ""].filter(Boolean);
      li.title = state.length ? `${p.user}: ${state.join(", ")}` : p.user;
      li.append(avatar(p.user), el("span", "name", p.user === this.me() ? `${p.user} (you)` : p.user));
      ul.append(li);
    }
  }

  // renderVideos shows a tile for each camera that is on: the page's own
  // (a preview) and those of the others whose video is coming in.
  renderVideos() {
    const want = new Map(); // user -> stream
    if (this.cam) want.set(this.me(), new MediaStream([this.cam]));
    for (const p of this.participants) {
      const s = this.streams.get(p.user);
      if (!p.camera || p.user === this.me() || !s) continue;
      if (s.getVideoTracks().some((t) => t.readyState === "live")) want.set(p.user, s);
    }
    const box = this.ui.videos;
    for (const tile of [...box.children]) {
      if (!want.has(tile.dataset.user)) tile.remove();
    }
    for (const [user, stream] of want) {
      let tile = box.querySelector(`.tile[data-user="${CSS.escape(user)}"]`);
      if (!tile) {
        tile = el("figure", "tile");
        tile.dataset.user = user;
        const v = document.createElement("video");
        v.autoplay = true;
        v.muted = true; // the sound plays in the stream's <audio>
        v.playsInline = true;
        v.dataset.user = user;
        tile.append(v, el("figcaption", "", user === this.me() ? "You" : user));
        if (user === this.me()) tile.classList.add("self");
        box.append(tile);
      }
      const v = tile.querySelector("video");
      if (user === this.me() ? v.srcObject?.getVideoTracks()[0] !== this.cam : v.srcObject !== stream) {
        v.srcObject = stream;
        v.play().catch(() => {});
      }
    }
    box.hidden = want.size === 0;
  }
}
