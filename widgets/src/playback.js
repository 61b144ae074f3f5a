// Sound with the picture: the session's audio (sent once by the kernel as a WAV, played by an
// <audio> element) is the clock while it plays; before its first sample or after its last, and
// when the browser will not play it, the wall clock (times the speed) is.

export function createSound(model) {
  const audio = document.createElement("audio");
  audio.className = "emonb-audio";
  audio.preload = "auto";
  let t0 = 0;
  let length = 0;
  let url = null;
  let asked = false;
  let blocked = false; // the browser refused to play

  function ask() {
    if (asked || !model.get("has_audio")) return;
    asked = true;
    model.send({ type: "audio" });
  }

  // returns true when the message was the sound
  function onMessage(content, buffers) {
    if (!content || content.type !== "audio") return false;
    if (content.error || !buffers || !buffers.length) return true;
    const b = buffers[0];
    const bytes = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(new Blob([bytes], { type: "audio/wav" }));
    t0 = content.t0;
    length = content.duration;
    audio.src = url;
    audio.dataset.t0 = String(t0);
    return true;
  }

  const covers = (t) => url !== null && t >= t0 && t < t0 + length - 0.02;

  function settings() {
    audio.playbackRate = model.get("speed") || 1;
    audio.muted = model.get("muted");
  }

  // keep the sound where the picture is: start it, move it, or stop it
  function follow(t, playing) {
    settings();
    if (!playing || !covers(t) || blocked) {
      if (!audio.paused) audio.pause();
      return;
    }
    const want = t - t0;
    if (audio.paused) {
      audio.currentTime = want;
      audio.play().catch(() => { blocked = true; });
    } else if (Math.abs(audio.currentTime - want) > 0.15) {
      audio.currentTime = want; // a seek while playing
    }
  }

  // the session time of the sound playing now, or null (the wall clock leads)
  function now() {
    if (audio.paused || audio.readyState < 2 || blocked) return null;
    return t0 + audio.currentTime;
  }

  return {
    audio,
    ask,
    onMessage,
    follow,
    now,
    settings,
    stop() {
      if (!audio.paused) audio.pause();
    },
    destroy() {
      audio.pause();
      audio.removeAttribute("src");
      if (url) URL.revokeObjectURL(url);
    },
  };
}
