//! Frame-level push: a [`PushSession`] fed by an encoder. Each write takes
//! what an encoder gives (an H.264 or HEVC access unit, an AV1 temporal
//! unit, an AAC or Opus frame) and sends the FLV tags it becomes, built
//! in the protocol core ([`rtmpkit_proto::media`]): sequence headers
//! before the first frame and again when the codec configuration changes,
//! keyframe flags, composition times, and `onMetaData` for the user.

use super::faces::PushSession;
use crate::error::Error;
use rtmpkit_proto::Timestamp;
use rtmpkit_proto::media::{
    AacPackager, Av1Packager, Describer, FrameError, H264Packager, HevcPackager, Media,
    OpusPackager,
};

/// What a push's frame-level writes have sent: the packagers' parameter
/// sets and configs, and the metadata said for the user.
#[derive(Debug, Default)]
pub(crate) struct Packagers {
    h264: H264Packager,
    hevc: HevcPackager,
    av1: Av1Packager,
    aac: AacPackager,
    opus: OpusPackager,
    describer: Describer,
    /// The user sent metadata of their own: none is made for them.
    user_metadata: bool,
}

impl PushSession {
    /// Packages under the lock (no await), then sends what came out, with
    /// `onMetaData` before it when there is something new to say.
    async fn write_packaged(
        &self,
        package: impl FnOnce(&mut Packagers) -> Result<Vec<Media>, FrameError>,
    ) -> Result<(), Error> {
        let mut out = Vec::with_capacity(3);
        {
            let mut p = crate::sync::lock(&self.frames);
            for m in package(&mut p).map_err(Error::Frame)? {
                if !p.user_metadata
                    && let Some(meta) = p.describer.observe(&m)
                {
                    out.push(Err(meta));
                }
                out.push(Ok(m));
            }
        }
        for item in out {
            match item {
                Ok(m) => self.write_media(m).await?,
                Err(meta) => self.send_metadata(meta).await?,
            }
        }
        Ok(())
    }

    /// From now on, the metadata is the user's.
    pub(super) fn user_metadata(&self) {
        crate::sync::lock(&self.frames).user_metadata = true;
    }

    /// Sends one H.264 access unit as an encoder gives it: Annex B (NAL
    /// units after start codes) or 4-byte length-prefixed NAL units,
    /// presented at `pts` and decoded at `dts`. The first call must carry
    /// the SPS and PPS; a sequence header (the AVCDecoderConfigurationRecord,
    /// ISO/IEC 14496-15 §5.2.4.1) goes out before the first frame and again
    /// whenever they change, as with a new resolution. The frame goes out as
    /// an FLV video tag (FLV E.4.3.1): keyframe when it holds an IDR slice,
    /// composition time pts - dts, the NAL units each after its length,
    /// parameter sets and delimiters left out.
    ///
    /// Unless [`PushSession::write_metadata`] or
    /// [`PushSession::write_script_tag`] sent the user's own, `onMetaData`
    /// is sent before the first frame (sizes and codecs), once two seconds
    /// measured the frame rate and bit rates, and when the size changes.
    ///
    /// ```no_run
    /// # async fn f(push: rtmpkit::PushSession, au: &[u8]) -> Result<(), rtmpkit::Error> {
    /// use rtmpkit::Timestamp;
    /// // An encoder's output at 40 ms, no B-frames.
    /// push.write_h264(Timestamp(40), Timestamp(40), au).await?;
    /// # Ok(()) }
    /// ```
    pub async fn write_h264(
        &self,
        pts: Timestamp,
        dts: Timestamp,
        access_unit: &[u8],
    ) -> Result<(), Error> {
        self.write_packaged(|p| p.h264.package(pts.0, dts.0, access_unit))
            .await
    }

    /// Sends one HEVC access unit, as [`PushSession::write_h264`] does
    /// H.264, in Enhanced RTMP `hvc1` tags: the HEVCDecoderConfigurationRecord
    /// (ISO/IEC 14496-15 §8.3.3.1) from the VPS, SPS and PPS as a
    /// SequenceStart, frames as CodedFrames with the composition time (or
    /// CodedFramesX when pts equals dts), keyframes on IRAP pictures.
    pub async fn write_hevc(
        &self,
        pts: Timestamp,
        dts: Timestamp,
        access_unit: &[u8],
    ) -> Result<(), Error> {
        self.write_packaged(|p| p.hevc.package(pts.0, dts.0, access_unit))
            .await
    }

    /// Sends one AV1 temporal unit (OBUs with their size fields, as
    /// encoders write them) in Enhanced RTMP `av01` tags: the
    /// AV1CodecConfigurationRecord of its sequence header as a
    /// SequenceStart, the OBUs without temporal delimiters as CodedFrames;
    /// a keyframe when its frame header says KEY_FRAME.
    pub async fn write_av1(&self, pts: Timestamp, temporal_unit: &[u8]) -> Result<(), Error> {
        self.write_packaged(|p| p.av1.package(pts.0, temporal_unit))
            .await
    }

    /// The AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) of the raw AAC
    /// frames [`PushSession::write_aac`] will be given.
    pub fn set_aac_config(&self, audio_specific_config: &[u8]) -> Result<(), Error> {
        crate::sync::lock(&self.frames)
            .aac
            .set_config(audio_specific_config)
            .map_err(Error::Frame)
    }

    /// Sends AAC audio presented at `pts`: one raw frame (after
    /// [`PushSession::set_aac_config`]), or one or more ADTS frames, whose
    /// headers give the config. The AAC sequence header goes out before
    /// the first frame and again when the config changes.
    pub async fn write_aac(&self, pts: Timestamp, frame: &[u8]) -> Result<(), Error> {
        self.write_packaged(|p| p.aac.package(pts.0, frame)).await
    }

    /// The Opus ID header (RFC 7845 §5.1) to send before the packets of
    /// [`PushSession::write_opus`]; without one, the first packet says
    /// mono or stereo and the pre-skip is 0.
    pub fn set_opus_head(&self, head: &[u8]) -> Result<(), Error> {
        crate::sync::lock(&self.frames)
            .opus
            .set_head(head)
            .map_err(Error::Frame)
    }

    /// Sends one Opus packet presented at `pts`, in Enhanced RTMP `Opus`
    /// audio tags (the ID header first as a SequenceStart).
    pub async fn write_opus(&self, pts: Timestamp, packet: &[u8]) -> Result<(), Error> {
        self.write_packaged(|p| p.opus.package(pts.0, packet)).await
    }
}
