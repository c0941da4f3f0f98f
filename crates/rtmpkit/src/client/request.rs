//! What a session handle asks of its session task, over a channel: media
//! and metadata to send, a flush, a close. The task answers on the reply.

use crate::error::Error;
use rtmpkit_proto::amf0::Amf0Object;
use rtmpkit_proto::media::Media;
use tokio::sync::oneshot;

/// Where the answer to a request goes.
pub(crate) type Reply = oneshot::Sender<Result<(), Error>>;

/// What a handle asks of the session task.
pub(crate) enum Request {
    Media(Media, Option<Reply>),
    Metadata(Amf0Object, Option<Reply>),
    Flush(Reply),
    Close(Reply),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Request::Media(..) => "Media",
            Request::Metadata(..) => "Metadata",
            Request::Flush(_) => "Flush",
            Request::Close(_) => "Close",
        })
    }
}
