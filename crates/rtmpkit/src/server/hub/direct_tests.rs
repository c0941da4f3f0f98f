//! The fan-out writing to an idle player's socket itself: what it wrote,
//! what a short write left over and what it queued for the task are,
//! end to end, the published messages in order, none twice or missing.

use super::queue::DirectOut;
use super::tests::{hub, video};
use crate::driver::{IoCounters, SharedTcp};
use rtmpkit_proto::ChunkDecoder;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};

/// A connected pair on loopback with small buffers: the first is the
/// player's socket on the server, the second the player, which reads
/// nothing until told.
async fn small_pair() -> (TcpStream, TcpStream) {
    let listener = TcpSocket::new_v4().expect("socket");
    listener.set_recv_buffer_size(4096).expect("rcvbuf");
    listener
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = listener.listen(1).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let server = TcpSocket::new_v4().expect("socket");
    server.set_send_buffer_size(4096).expect("sndbuf");
    let (server, player) = tokio::join!(server.connect(addr), listener.accept());
    (server.expect("connect"), player.expect("accept").0)
}

#[tokio::test]
async fn direct_writes_short_writes_and_the_queue_add_up_to_the_stream() {
    let (server, mut player) = small_pair().await;
    let h = hub();
    let s = h.publish("live/direct", 1, None, true).unwrap().stream;
    let (_, q) = h.play("live/direct", 2, false);
    let counters = Arc::new(IoCounters::default());
    q.set_direct(DirectOut {
        socket: SharedTcp::new(server),
        counters: counters.clone(),
        chunk_size: 128,
    });
    // A new player starts on a keyframe through its queue; its task
    // sends it and is idle again.
    s.deliver(1, video(0, true, 1000));
    assert!(!q.open_direct(), "the task has a message to send");
    q.take(usize::MAX, &mut Vec::new());
    assert!(q.open_direct(), "an idle player with an empty queue");
    // 1000-byte frames, a keyframe every 10, and one larger than the
    // socket's buffers (it is written short): far more than the buffers
    // take while the player reads nothing.
    for i in 1..300u32 {
        let len = if i == 4 { 60_000 } else { 1000 };
        s.deliver(1, video(i * 40, i % 10 == 0, len));
    }
    let written = counters.written.load(Ordering::Relaxed) as usize;
    assert!(written > 0, "the fan-out wrote to the socket");
    let rest = q.close_direct().expect("it wrote since the way opened");
    assert!(!rest.is_empty(), "the large frame was written short");
    assert!(
        !q.open_direct(),
        "items wait for the task: the way stays closed"
    );
    // What reached the player, then the rest of a short write.
    let mut wire = vec![0; written];
    player.read_exact(&mut wire).await.expect("read");
    wire.extend_from_slice(&rest);
    let mut dec = ChunkDecoder::new();
    dec.push(&wire);
    let mut direct = Vec::new();
    while let Some(m) = dec.next_message().expect("whole chunks") {
        direct.push(m.timestamp.0);
    }
    assert_eq!(
        dec.pending_bytes(),
        0,
        "the rest ends on a message boundary"
    );
    let k = direct.len() as u32 + 1;
    assert!(k > 1 && k < 300, "{} messages went out directly", k - 1);
    assert_eq!(direct, (1..k).map(|i| i * 40).collect::<Vec<_>>());
    // The queue goes on from the next message: nothing lost, nothing twice
    // (the slow-player rules drop what does not fit, from a keyframe on).
    let mut items = Vec::new();
    q.take(usize::MAX, &mut items);
    let mut queued = Vec::new();
    for item in &items {
        item.for_each(|o| {
            if let super::Out::Media(m) = o {
                queued.push(m.timestamp.0);
            }
        });
    }
    assert_eq!(
        queued.first(),
        Some(&(k * 40)),
        "the queue starts where the socket stopped"
    );
    assert!(
        queued.windows(2).all(|w| w[0] < w[1]),
        "in order: {queued:?}"
    );
    // Caught up and idle again: the way opens.
    assert!(q.open_direct());
}
