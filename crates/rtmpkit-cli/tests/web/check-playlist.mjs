// Parses an HLS media playlist from stdin with hls-parser in strict mode
// (it throws on any tag or attribute that breaks the spec) and prints what
// it found as one JSON line; exits 1 with the parser's error otherwise.
import HLS from "hls-parser";
import { readFileSync } from "node:fs";

HLS.setOptions({ strictMode: true });
try {
  const p = HLS.parse(readFileSync(0, "utf8"));
  if (p.isMasterPlaylist) throw new Error("a master playlist, not a media playlist");
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
