//! The commands a client sends a server (§7.2): connect, createStream,
//! publish, play and their FMLE-era companions.

use super::{ServerEvent, ServerSide, ServerState, Slot, SlotState};
use crate::amf0::Amf0Value;
use crate::chunk::ChunkStreamId;
use crate::error::Result;
use crate::message::{Command, StatusInfo, status};
use crate::session::link::Link;

impl ServerSide {
    pub(super) fn handle_command(
        &mut self,
        link: &mut Link<ServerEvent>,
        msid: u32,
        cmd: Command,
    ) -> Result<()> {
        let tid = cmd.transaction_id;
        if self.state == ServerState::ExpectConnect {
            if cmd.name != "connect" {
                // Skipped, not fatal; the shell's setup deadline bounds
                // how long a client may go on without connecting.
                link.notice(format!("{} before connect, skipped", cmd.name));
                return Ok(());
            }
            let object = cmd.object().cloned().unwrap_or_default();
            let app = object.get_str("app").unwrap_or_default().to_owned();
            self.app = Some(app.clone());
            self.connect_tid = tid;
            self.object_encoding = object.get_number("objectEncoding").unwrap_or(0.0);
            self.state = ServerState::ExpectConnectDecision;
            link.push_event(ServerEvent::ConnectRequested {
                app,
                tc_url: object.get_str("tcUrl").map(str::to_owned),
                object,
            });
            return Ok(());
        }
        if self.state != ServerState::Connected {
            // A client must wait for connect's _result; what it sends
            // before is skipped (a second connect included).
            link.notice(format!("{} before connect was answered, skipped", cmd.name));
            return Ok(());
        }
        match cmd.name.as_str() {
            "createStream" => {
                if self.streams.len() as u32 >= self.config.max_streams {
                    let info = StatusInfo::new(
                        status::LEVEL_ERROR,
                        "NetConnection.Call.Failed",
                        "too many streams",
                    );
                    link.send_command(ChunkStreamId::COMMAND, 0, Command::error(tid, &info));
                    return Ok(());
                }
                let sid = self.next_stream_id;
                self.next_stream_id += 1;
                self.streams.insert(
                    sid,
                    Slot {
                        state: SlotState::Created,
                        name: String::new(),
                    },
                );
                link.send_command(
                    ChunkStreamId::COMMAND,
                    0,
                    Command::result(tid, Amf0Value::Null, sid.into()),
                );
            }
            "releaseStream" => {
                link.send_command(
                    ChunkStreamId::COMMAND,
                    0,
                    Command::result(tid, Amf0Value::Null, Amf0Value::Undefined),
                );
            }
            "FCPublish" => {
                let name = cmd.stream_name().unwrap_or_default().to_owned();
                let info = StatusInfo::new(status::LEVEL_STATUS, status::PUBLISH_START, &name);
                link.send_command(ChunkStreamId::COMMAND, 0, Command::on_fc_publish(&info));
                link.send_command(
                    ChunkStreamId::COMMAND,
                    0,
                    Command::result(tid, Amf0Value::Null, Amf0Value::Undefined),
                );
            }
            "FCUnpublish" => {
                let name = cmd.stream_name().unwrap_or_default().to_owned();
                let info = StatusInfo::new(status::LEVEL_STATUS, status::UNPUBLISH_SUCCESS, &name);
                link.send_command(ChunkStreamId::COMMAND, 0, Command::on_fc_unpublish(&info));
                link.send_command(
                    ChunkStreamId::COMMAND,
                    0,
                    Command::result(tid, Amf0Value::Null, Amf0Value::Undefined),
                );
                let found = self
                    .streams
                    .iter()
                    .find(|(_, s)| s.state == SlotState::Publishing && s.name == name)
                    .map(|(&k, _)| k);
                if let Some(sid) = found {
                    self.end_stream_slot(link, sid, true);
                }
            }
            "publish" => {
                let Some(slot) = self.streams.get_mut(&msid) else {
                    Self::send_status(
                        link,
                        msid,
                        status::LEVEL_ERROR,
                        status::FAILED,
                        "publish on a stream that was not created",
                    );
                    return Ok(());
                };
                let name = cmd.stream_name().unwrap_or_default().to_owned();
                let kind = cmd
                    .args
                    .get(1)
                    .and_then(Amf0Value::as_str)
                    .unwrap_or("live")
                    .to_owned();
                if name.is_empty() {
                    Self::send_status(
                        link,
                        msid,
                        status::LEVEL_ERROR,
                        status::PUBLISH_BAD_NAME,
                        "empty stream name",
                    );
                    return Ok(());
                }
                slot.state = SlotState::PublishRequested;
                slot.name = name.clone();
                link.push_event(ServerEvent::PublishRequested {
                    stream_id: msid,
                    name,
                    kind,
                });
            }
            "play" => {
                let Some(slot) = self.streams.get_mut(&msid) else {
                    Self::send_status(
                        link,
                        msid,
                        status::LEVEL_ERROR,
                        status::FAILED,
                        "play on a stream that was not created",
                    );
                    return Ok(());
                };
                let name = cmd.stream_name().unwrap_or_default().to_owned();
                let start = cmd
                    .args
                    .get(1)
                    .and_then(Amf0Value::as_number)
                    .unwrap_or(-2.0);
                slot.state = SlotState::PlayRequested;
                slot.name = name.clone();
                link.push_event(ServerEvent::PlayRequested {
                    stream_id: msid,
                    name,
                    start,
                });
            }
            "deleteStream" => {
                let sid = cmd.first_number().unwrap_or(0.0);
                if sid >= 0.0 && sid <= f64::from(u32::MAX) {
                    self.end_stream_slot(link, sid as u32, false);
                    self.streams.remove(&(sid as u32));
                }
            }
            "closeStream" => {
                self.end_stream_slot(link, msid, false);
            }
            "_checkbw" | "_result" | "_error" | "onBWDone" | "getStreamLength" | "receiveAudio"
            | "receiveVideo" | "FCSubscribe" | "FCUnsubscribe" | "pause" => {
                link.notice(format!("ignored command {}", cmd.name));
            }
            other => {
                // nginx-rtmp ignores unknown calls; answering with _error tells
                // the client at once instead of leaving it waiting.
                if tid > 0.0 {
                    let info = StatusInfo::new(
                        status::LEVEL_ERROR,
                        "NetConnection.Call.Failed",
                        &format!("unknown command {other}"),
                    );
                    link.send_command(ChunkStreamId::COMMAND, 0, Command::error(tid, &info));
                }
                link.notice(format!("unknown command {other}"));
            }
        }
        Ok(())
    }

    fn end_stream_slot(&mut self, link: &mut Link<ServerEvent>, sid: u32, only_publishing: bool) {
        let Some(slot) = self.streams.get_mut(&sid) else {
            return;
        };
        let ev = match slot.state {
            SlotState::Publishing | SlotState::PublishRequested => {
                ServerEvent::PublishEnded { stream_id: sid }
            }
            SlotState::Playing | SlotState::PlayRequested if !only_publishing => {
                ServerEvent::PlayEnded { stream_id: sid }
            }
            _ => return,
        };
        slot.state = SlotState::Created;
        link.push_event(ev);
    }
}
