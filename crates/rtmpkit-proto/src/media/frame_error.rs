//! [`FrameError`]: why an encoder's frame was not packaged into a tag.

/// Why an access unit was not packaged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// It holds no NAL unit.
    #[error("the access unit holds no NAL unit")]
    Empty,
    /// Neither Annex B (no start code) nor length-prefixed (the lengths
    /// do not add up).
    #[error("neither Annex B nor 4-byte length-prefixed NAL units")]
    BadLength,
    /// A NAL unit's forbidden_zero_bit is set: this is not H.264 or HEVC.
    #[error("a NAL unit has its forbidden_zero_bit set: not H.264 or HEVC")]
    ForbiddenBit,
    /// No SPS and PPS came yet, in this access unit or before it.
    #[error("no SPS and PPS yet: the first access unit must carry them")]
    NoParameterSets,
    /// The SPS does not parse.
    #[error("the SPS does not parse")]
    BadSps,
    /// An ADTS header does not parse, or its frame length does not fit.
    #[error("a bad ADTS header: {0}")]
    BadAdts(&'static str),
    /// A raw AAC frame came before any AudioSpecificConfig.
    #[error("no AudioSpecificConfig yet: give one (set_aac_config) or write ADTS frames")]
    NoAudioConfig,
    /// The AudioSpecificConfig does not parse.
    #[error("the AudioSpecificConfig does not parse")]
    BadAudioConfig,
    /// OBUs that do not parse.
    #[error("not AV1 OBUs: {0}")]
    NotAv1(&'static str),
    /// An Opus packet or ID header that is not one.
    #[error("not Opus: {0}")]
    NotOpus(&'static str),
    /// pts - dts does not fit FLV's 24-bit composition time.
    #[error("pts - dts = {0} ms does not fit a 24-bit composition time")]
    CompositionTime(i64),
}
