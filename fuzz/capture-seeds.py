#!/usr/bin/env python3
"""Makes the seed corpora in fuzz/seeds/ from real sessions.

ffmpeg publishes a short clip to nginx-rtmp and ffmpeg plays it back, both
through a recording TCP proxy on 127.0.0.1; the bytes each way become the
seeds of the handshake, session and chunk targets. FLV and Enhanced RTMP
seeds are cut from FLV files ffmpeg makes here (FFmpeg 9 for HEVC, AV1 and
Opus, when RTMPKIT_FFMPEG9 points at it).

Needs ffmpeg, nginx + libnginx-mod-rtmp. Every process it starts is stopped
by pid. Usage: fuzz/capture-seeds.py   (rewrites fuzz/seeds/)
"""
import os, signal, socket, struct, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")
HS = 1 + 2 * 1536  # C0 C1 C2 / S0 S1 S2
CUT = 48 * 1024  # seeds stay small


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_nginx(port, work):
    os.makedirs(os.path.join(work, "logs"), exist_ok=True)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; worker_processes 1;
pid {work}/nginx.pid; error_log {work}/logs/error.log warn;
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;
  application live {{ live on; record off; }} }} }}
""")
    return subprocess.Popen(["nginx", "-p", work + "/", "-c", conf],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Recorder:
    """Accepts connections on `port`, forwards them to `upstream` and keeps
    the bytes of each direction, per connection."""

    def __init__(self, port, upstream):
        self.sessions = []
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port))
        self.srv.listen(8)
        self.upstream = upstream
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.upstream))
            rec = {"c2s": bytearray(), "s2c": bytearray()}
            self.sessions.append(rec)
            for a, b, key in ((c, u, "c2s"), (u, c, "s2c")):
                threading.Thread(target=self.pump, args=(a, b, rec[key]), daemon=True).start()

    @staticmethod
    def pump(a, b, buf):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                buf.extend(d)
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def write(target, name, data, cut_byte=None):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    # The session, chunk, handshake and FLV targets read their first byte as
    # the size of the pieces the rest is cut into.
    body = bytes([cut_byte]) + bytes(data) if cut_byte is not None else bytes(data)
    with open(os.path.join(d, name), "wb") as f:
        f.write(body)


def flv_tags(path, limit):
    """(tag type, body) of the first `limit` tags of an FLV file."""
    with open(path, "rb") as f:
        data = f.read()
    pos, out = 13, []
    while pos + 11 <= len(data) and len(out) < limit:
        t, size = data[pos], int.from_bytes(data[pos + 1:pos + 4], "big")
        out.append((t, data[pos + 11:pos + 11 + size]))
        pos += 11 + size + 4
    return data, out


# Byte-exact protocol vectors (from ../shared/spec/test-vectors.md), as seeds
# of the chunk decoder and the AMF0 decoder.
VECTORS = {
    "win-ack-size": "02000000000004050000000000000001",
    "set-chunk-size": "02000000000004010000000000000001",
    "set-peer-bandwidth": "0200000000000506000000000000000102",
    "create-stream": "03000000000019140000000002000c63726561746553747265616d00400000000000000005",
    "create-stream-result": "0300000000001d14000000000200075f726573756c74003ff0000000000000050" "03ff0000000000000",
    "play": "050000000000181401000000020004706c617900400800000000000005020004" "74657374",
    "connect": "0300000000008a1400000000020007636f6e6e656374003ff00000000000000300036170700200046c69766500047479706502000a6e6f6e707269766174650008666c617368566572020020464d4c452f332e302028636f6d70617469626c653b206c616c302e33372e342900046670616401000005746355726c02001572746d703a2f2f3132372e302e302e312f6c697665000009",
}


def write_vectors():
    for name, hexed in VECTORS.items():
        data = bytes.fromhex(hexed)
        write("chunk_decoder", "vector-" + name, data, 0xFF)
        if data[0] & 0x3F == 3 and len(data) > 12:
            write("amf0", "vector-" + name, data[12:])
    # Interleaving at peer chunk size 20: Set Chunk Size 20, video csid 6
    # (50 bytes) cut by audio csid 5 (15 bytes).
    inter = bytes.fromhex("02000000000004010000000000000014")
    inter += bytes.fromhex("060003e80000320901000000") + b"v" * 20 + b"\xc6" + b"v" * 20
    inter += bytes.fromhex("050003e80000" "0f0801000000") + b"a" * 15 + b"\xc6" + b"v" * 10
    write("chunk_decoder", "vector-interleaved-chunk-size-20", inter, 0xFF)


def main():
    write_vectors()
    ffmpeg = os.environ.get("FFMPEG", "ffmpeg")
    ffmpeg9 = os.environ.get("RTMPKIT_FFMPEG9")
    work = tempfile.mkdtemp(prefix="rtmpkit-seeds-")
    nport, rport = free_port(), free_port()
    nginx = start_nginx(nport, work)
    procs = [nginx]
    try:
        time.sleep(0.5)
        rec = Recorder(rport, nport)
        clip = os.path.join(work, "clip.flv")
        subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
                        "-t", "2", "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p",
                        "-c:a", "aac", "-b:a", "32k", "-f", "flv", clip], check=True)
        url = f"rtmp://127.0.0.1:{rport}/live/seed"
        pub = subprocess.Popen([ffmpeg, "-hide_banner", "-loglevel", "error", "-re",
                                "-stream_loop", "1", "-i", clip, "-c", "copy", "-f", "flv", url])
        procs.append(pub)
        time.sleep(1.0)
        play = subprocess.Popen([ffmpeg, "-hide_banner", "-loglevel", "error", "-rw_timeout",
                                 "3000000", "-i", url, "-t", "1.5", "-c", "copy", "-f", "null", "-"])
        procs.append(play)
        play.wait(timeout=20)
        pub.wait(timeout=20)
        time.sleep(0.3)
        if len(rec.sessions) < 2:
            sys.exit("capture-seeds: expected a publisher and a player session")
        publisher, player = rec.sessions[0], rec.sessions[1]
        for role, s in (("publish", publisher), ("play", player)):
            c2s, s2c = s["c2s"], s["s2c"]
            write("handshake_server", f"ffmpeg-{role}", c2s[:HS], 0xFF)
            write("handshake_client", f"nginx-{role}", s2c[:HS], 0x7F)
            write("handshake_client", f"nginx-{role}-digest", s2c[:HS], 0xFF)
            write("server_session", f"ffmpeg-{role}", c2s[HS:HS + CUT], 0xFF)
            # client_session: an even first byte plays, an odd one publishes.
            write("client_session", f"nginx-{role}", s2c[HS:HS + CUT], 0xFE if role == "play" else 0xFF)
            write("chunk_decoder", f"ffmpeg-{role}", c2s[HS:HS + CUT], 0xFF)
            write("chunk_decoder", f"nginx-{role}", s2c[HS:HS + CUT], 0xFF)
        # The connect command's first chunk: AMF0 "connect", 1.0, {app, ...}.
        write("amf0", "ffmpeg-connect", publisher["c2s"][HS + 12:HS + 12 + 128])
        data, tags = flv_tags(clip, 40)
        write("flv_reader", "ffmpeg-h264-aac", data[:CUT], 0xFF)
        for i, (t, body) in enumerate(tags[:6]):
            write("enhanced_tags", f"legacy-{t}-{i}", body[:2048])
        if ffmpeg9:
            for name, args in (("hevc", ["-c:v", "libx265"]),
                               ("av1", ["-c:v", "libsvtav1"]),
                               ("vp9", ["-c:v", "libvpx-vp9"])):
                out = os.path.join(work, name + ".flv")
                subprocess.run([ffmpeg9, "-hide_banner", "-loglevel", "error", "-y",
                                "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25",
                                "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "0.5",
                                *args, "-pix_fmt", "yuv420p", "-c:a", "libopus", "-f", "flv", out],
                               check=True)
                data, tags = flv_tags(out, 8)
                write("flv_reader", f"ffmpeg9-{name}", data[:CUT], 0xFF)
                for i, (t, body) in enumerate(tags[:6]):
                    write("enhanced_tags", f"{name}-{t}-{i}", body[:2048])
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
    print("seeds written to", SEEDS)


if __name__ == "__main__":
    main()
