// Drives Debian's chromium, headless, through the watch pages of a running
// `rtmpkit serve`, and prints what it saw as one JSON line.
//
//   node watch.mjs watch URL SHOT.png SECONDS BASE_MS
//     Opens the watch page URL and follows its <video> for SECONDS: the
//     highest readyState, currentTime over time, when the first frame was
//     shown, and the glass-to-glass latency of the frames shown. The
//     publisher burns its capture time (wall clock ms - BASE_MS) into the top
//     32 rows of each frame, 20 bits of 32x32 squares, lowest bit on the left;
//     the page reads them back from each frame it presents.
//   node watch.mjs list URL SHOT.png
//     Opens the stream list and returns its rows once one is there.
//   node watch.mjs recording URL SHOT.png SECONDS
//     Opens a watch page, waits for its list of recordings, plays the first
//     listed and follows the <video> for SECONDS.
//   node watch.mjs ladder URL SHOT.png SECONDS
//     Opens the watch page of a multitrack stream, waits for its quality
//     menu, then picks each rendition in turn (as a viewer would, in the
//     menu) and follows the <video> up to SECONDS each: the picture size it
//     reached and the longest time the picture stood still; then "auto".
import puppeteer from "puppeteer-core";

const [mode, url, shot, seconds, base] = process.argv.slice(2);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
});

// Every frame the video presents, with the time burnt into it.
function collect(baseMs) {
  const frames = [];
  window.rtmpkitFrames = frames;
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  function watch() {
    const video = document.querySelector("video");
    if (!video) return setTimeout(watch, 20);
    const onFrame = (_now, meta) => {
      const shown = performance.timeOrigin + meta.expectedDisplayTime;
      let code = null;
      if (video.videoWidth >= 640) {
        canvas.width = 640;
        canvas.height = 32;
        ctx.drawImage(video, 0, 0, 640, 32, 0, 0, 640, 32);
        const row = ctx.getImageData(0, 16, 640, 1).data;
        code = 0;
        for (let k = 0; k < 20; k++) {
          if (row[(32 * k + 16) * 4] > 128) code += 2 ** k;
        }
      }
      frames.push({ shown, media: meta.mediaTime, latency: code === null ? null : shown - (baseMs + code) });
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }
  watch();
}

const result = { mode };
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 800, height: 560 });
  page.on("pageerror", (e) => (result.pageErrors ||= []).push(String(e)));
  if (mode === "watch") {
    await page.evaluateOnNewDocument(collect, Number(base));
    result.opened = Date.now();
    await page.goto(url, { waitUntil: "domcontentloaded" });
    const samples = [];
    let maxReady = 0;
    const end = Date.now() + Number(seconds) * 1000;
    while (Date.now() < end) {
      const s = await page.evaluate(() => {
        const v = document.querySelector("video");
        return { at: Date.now(), ready: v.readyState, time: v.currentTime };
      });
      maxReady = Math.max(maxReady, s.ready);
      samples.push(s);
      await new Promise((r) => setTimeout(r, 250));
    }
    const page_state = await page.evaluate(() => ({
      via: window.rtmpkitPlayer.via,
      errors: window.rtmpkitPlayer.errors,
      status: document.getElementById("status").textContent,
      frames: window.rtmpkitFrames,
      width: document.querySelector("video").videoWidth,
      height: document.querySelector("video").videoHeight,
    }));
    await page.screenshot({ path: shot });
    const frames = page_state.frames;
    Object.assign(result, {
      via: page_state.via,
      errors: page_state.errors,
      status: page_state.status,
      width: page_state.width,
      height: page_state.height,
      maxReady,
      samples,
      frameCount: frames.length,
      firstFrameShown: frames.length ? frames[0].shown : null,
      // [shown wall ms, latency ms] of every decoded frame.
      latencies: frames.filter((f) => f.latency !== null).map((f) => [Math.round(f.shown), Math.round(f.latency)]),
    });
  } else if (mode === "list") {
    await page.goto(url, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => document.querySelectorAll("#streams tr").length > 0, { timeout: 10000 });
    result.rows = await page.evaluate(() =>
      [...document.querySelectorAll("#streams tr")].map((tr) => [...tr.cells].map((c) => c.textContent)),
    );
    result.links = await page.evaluate(() => [...document.querySelectorAll("#streams a")].map((a) => a.getAttribute("href")));
    await page.screenshot({ path: shot });
  } else if (mode === "recording") {
    // The watch page of a stream that is not live: its recordings are
    // listed; the first one listed (the newest) plays for SECONDS.
    await page.goto(url, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => document.querySelectorAll("#rec-list a").length > 0, { timeout: 10000 });
    result.items = await page.evaluate(() => [...document.querySelectorAll("#rec-list li")].map((li) => li.textContent));
    await page.click("#rec-list a");
    const samples = [];
    let maxReady = 0;
    const end = Date.now() + Number(seconds) * 1000;
    while (Date.now() < end) {
      const s = await page.evaluate(() => {
        const v = document.querySelector("video");
        return { at: Date.now(), ready: v.readyState, time: v.currentTime, duration: v.duration, ended: v.ended };
      });
      maxReady = Math.max(maxReady, s.ready);
      samples.push(s);
      await new Promise((r) => setTimeout(r, 250));
    }
    Object.assign(result, await page.evaluate(() => ({
      via: window.rtmpkitPlayer.via,
      recording: window.rtmpkitPlayer.recording,
      errors: window.rtmpkitPlayer.errors,
      width: document.querySelector("video").videoWidth,
    })));
    Object.assign(result, { maxReady, samples });
    await page.screenshot({ path: shot });
  } else if (mode === "ladder") {
    await page.goto(url, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => window.rtmpkitPlayer.levels.length > 1, { timeout: 20000 });
    result.levels = await page.evaluate(() => window.rtmpkitPlayer.levels);
    result.menu = await page.evaluate(() => [...document.querySelectorAll("#levels option")].map((o) => o.textContent));
    // Playing first.
    await page.waitForFunction(() => document.querySelector("video").currentTime > 0.5, { timeout: 20000 });
    result.picked = [];
    const order = [...result.levels.keys()].reverse().concat([-1]);
    for (const level of order) {
      await page.select("#levels", String(level));
      const want = level < 0 ? null : result.levels[level];
      const picked = { level, want, samples: 0 };
      let last = null;
      let stillSince = Date.now();
      let longestStill = 0;
      const end = Date.now() + Number(seconds) * 1000;
      let reachedAt = null;
      while (Date.now() < end) {
        const s = await page.evaluate(() => {
          const v = document.querySelector("video");
          return { time: v.currentTime, size: v.videoWidth + "x" + v.videoHeight, playing: window.rtmpkitPlayer.level };
        });
        picked.samples++;
        const now = Date.now();
        if (last === null || s.time !== last) {
          longestStill = Math.max(longestStill, now - stillSince);
          stillSince = now;
          last = s.time;
        }
        picked.size = s.size;
        picked.playing = s.playing;
        if (want && s.size === want && reachedAt === null) reachedAt = now;
        // Once at the new size, follow it for 2 s more.
        if (reachedAt !== null && now - reachedAt > 2000) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      picked.longestStillMs = Math.max(longestStill, Date.now() - stillSince);
      picked.status = await page.evaluate(() => document.getElementById("status").textContent);
      result.picked.push(picked);
    }
    result.errors = await page.evaluate(() => window.rtmpkitPlayer.errors);
    await page.screenshot({ path: shot });
  } else {
    throw new Error("modes: watch, list, recording, ladder");
  }
} catch (e) {
  result.error = String(e && e.stack ? e.stack : e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
