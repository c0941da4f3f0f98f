// Parses an HLS media playlist from stdin with hls-parser in strict mode
// (it throws on any tag or attribute that breaks the spec) and prints what
// it found as one JSON line; exits 1 with the parser's error otherwise.
//   node check-playlist.mjs               a media playlist
//   node check-playlist.mjs multivariant  a multivariant (master) playlist
import HLS from "hls-parser";
import { readFileSync } from "node:fs";

HLS.setOptions({ strictMode: true });
try {
  const p = HLS.parse(readFileSync(0, "utf8"));
  const multivariant = process.argv[2] === "multivariant";
  if (p.isMasterPlaylist !== multivariant) {
    throw new Error(p.isMasterPlaylist ? "a master playlist, not a media playlist" : "a media playlist, not a master playlist");
  }
  if (multivariant) {
    console.log(JSON.stringify({
      independentSegments: p.independentSegments,
      variants: p.variants.map((v) => ({
        uri: v.uri,
        bandwidth: v.bandwidth,
        averageBandwidth: v.averageBandwidth,
        codecs: v.codecs,
        resolution: v.resolution,
        frameRate: v.frameRate,
      })),
    }));
    process.exit(0);
  }
  console.log(JSON.stringify({
    version: p.version,
    targetDuration: p.targetDuration,
    partTargetDuration: p.partTargetDuration,
    mediaSequenceBase: p.mediaSequenceBase,
    endlist: p.endlist,
    canBlockReload: p.lowLatencyCompatibility?.canBlockReload,
    partHoldBack: p.lowLatencyCompatibility?.partHoldBack,
    segments: p.segments.map((s) => ({
      uri: s.uri,
      duration: s.duration,
      map: s.map?.uri,
      programDateTime: s.programDateTime ? s.programDateTime.getTime() : null,
      parts: s.parts.map((x) => ({ uri: x.uri, duration: x.duration, independent: !!x.independent, hint: !!x.hint })),
    })),
  }));
} catch (e) {
  console.error(String(e));
  process.exit(1);
}
