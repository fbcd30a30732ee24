//! voicebotd's phone lines: a SIP user agent on the ezk stack, one RTP media task
//! per call, and transfer of callers to human agents.
//!
//! Layout, by direction of dependency:
//! - pure: [`wire`] (the message checker), [`sdp`] (offer/answer), [`handover`]
//!   (REFER headers and NOTIFY sipfrag), [`digest`] (digest authentication of callers),
//!   [`garbage`] (recognising ezk's reports of messages it dropped, and their count);
//! - drivers: [`media`] (the per-call RTP task), [`call`] (the per-call signalling
//!   task and the channel API a conversation uses), `bridge` (dialling the agent
//!   queue, for a bridged transfer or a kiosk), [`agent_call`] (a kiosk's call to
//!   an agent), [`registration`] (keeping a registrar binding),
//!   [`agent`] (the endpoint: layers, admission, shutdown).
//!
//! A conversation driver sees only [`IncomingCall`]: caller id, dialled line, a
//! bounded stream of [`CallEvent`]s, a [`BotAudio`] sender and [`CallControl`].
//! A kiosk escalating to a human sees only [`AgentCall`], from
//! [`UserAgent::call_agent`] or an [`AgentDialer`].

pub mod agent;
pub mod agent_call;
mod bridge;
pub mod call;
pub mod digest;
pub mod garbage;
pub mod handover;
pub mod media;
pub mod registration;
pub mod sdp;
pub mod wire;

pub use agent::{SipError, SipStats, SipStatsReader, UserAgent};
pub use agent_call::{AgentCall, AgentCallControl, AgentCallInfo, AgentDialer, AgentVoice, VoiceError};
pub use call::{
    BotAudio, CallControl, CallEvent, CallGone, CallInfo, EndReason, IncomingCall, TransferError, Transferred,
};
pub use handover::Handover;
pub use media::MediaStats;
pub use registration::RegistrationState;
