//! Fragmented MP4 (ISO/IEC 14496-12, CMAF) with no I/O: the boxes, the
//! demuxing of media messages into track units, and a writer that turns
//! a stream into files that are valid at every fragment boundary. LL-HLS
//! and the recorder both write through it.

mod boxes;
mod codecs;
mod demux;
mod scan;
mod writer;

pub use boxes::{Entry, Sample, Track, fragment, init_segment};
pub use demux::{TrackKey, Unit, demux};
pub use scan::{FragmentSpan, fragment_span};
pub use writer::{FileWriter, Written};

#[cfg(test)]
mod tests;
