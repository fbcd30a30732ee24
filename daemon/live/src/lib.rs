//! A live conversation on a channel: a phone call, a visit at a kiosk.
//!
//! [`run_conversation`] owns one [`Call`](voicebot_dialog::call::Call) state
//! machine and carries its actions out on a [`Line`]: the channel's audio in
//! and out, its keys, its hang-up and its hand-over to a person. The engines
//! run on the conversation's own worker threads ([`workers`]) so the reactor
//! never waits on inference. The phone line (SIP) and the kiosk (a local
//! microphone and speaker) each implement [`Line`]; everything else is shared.
//!
//! Hand-over: the ticket goes to the [`TicketSink`] (the durable outbox, then
//! MQTT) and only when it is stored does the line's transfer carry its id.

mod call;
mod workers;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use voicebot_core::config::{Config, DialogConfig};
use voicebot_core::{Language, LanguageChoice};
use voicebot_dialog::call::{CallSetup, Channel, LineKind, Timing, TransferRequest};
use voicebot_dialog::escalation::EscalationPolicy;
use voicebot_dialog::ticket::CallContext;
use voicebot_dialog::ticket::Ticket;
use voicebot_engines::loader::Engines;
use voicebot_understanding::analysis::Analyzer;
use voicebot_understanding::pii;

pub use call::{ConversationSummary, run_conversation};

/// Names one piece of bot speech handed to a line, so its end can be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClipKey(pub u64);

/// What happens on a line, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum LineEvent {
    /// Caller audio: 16 kHz mono (`voicebot_audio::ENGINE_RATE`), about 20 ms.
    Audio(Vec<f32>),
    /// A key the caller pressed: `0`–`9`, `*`, `#`.
    Key(char),
    /// The caller asked for a person by other means (a kiosk's "call
    /// assistance" button): a hand-over even while digits are being collected.
    PersonRequested,
    /// The clip's last sample went out.
    PlaybackFinished(ClipKey),
    /// These clips were cut by [`Line::stop`] before they finished.
    PlaybackStopped(Vec<ClipKey>),
    /// The line is over; no more events follow.
    Ended(LineEnd),
}

/// Why a line ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEnd {
    /// The caller left (hung up, walked away), the agent hung up after a
    /// bridged hand-over, or the line failed.
    Gone,
    /// A transfer succeeded and the bot left the call.
    Transferred,
    /// We closed it ([`Line::hang_up`], shutdown).
    Closed,
}

/// The line cannot take more: it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineGone;

/// How a hand-over went on the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handed {
    /// The bot left; the person has the caller ([`LineEnd::Transferred`] follows).
    Left,
    /// The bot stays and relays audio between the caller and the person until
    /// either side ends it ([`LineEnd::Gone`] or [`LineEnd::Closed`]).
    Bridged,
}

/// The hand-over future a line returns: `Err` says why, and the line is still up.
pub type HandOver = std::pin::Pin<Box<dyn Future<Output = Result<Handed, String>> + Send>>;

/// A channel's audio, keys and call control, as the conversation uses them.
#[async_trait::async_trait]
pub trait Line: Send {
    /// The next event; `None` once the line is gone.
    ///
    /// # Cancel safety
    /// Must be cancel-safe: it is polled in a `select!`.
    async fn next_event(&mut self) -> Option<LineEvent>;

    /// Queues 16 kHz mono bot speech after what is queued before it.
    ///
    /// # Errors
    /// [`LineGone`] once the line has ended.
    async fn play(&mut self, samples: &[f32]) -> Result<ClipKey, LineGone>;

    /// Stops the bot at once (barge-in); cut clips are reported as
    /// [`LineEvent::PlaybackStopped`].
    fn stop(&mut self);

    /// Ends the line; [`LineEvent::Ended`] follows.
    async fn hang_up(&mut self);

    /// Starts the hand-over to a person (the ticket is already stored and,
    /// where a broker is up, published). Runs on its own task.
    fn hand_over(&mut self, request: &TransferRequest) -> HandOver;
}

/// Where hand-over tickets go before a transfer (the fleet's outbox).
#[async_trait::async_trait]
pub trait TicketSink: Send + Sync {
    /// Stores the ticket durably (and queues it for publication).
    ///
    /// # Errors
    /// A description of why it could not be stored.
    async fn hand_over(&self, ticket: &Ticket) -> Result<(), String>;

    /// Waits (boundedly) until the stored ticket has reached the agents' side
    /// (the MQTT broker). `true`: published, or there is no broker to wait for
    /// (tickets stay local). `false`: the broker is down or slow; the transfer
    /// goes ahead anyway (never dead air) and the ticket follows from the outbox.
    async fn wait_published(&self, _ticket_id: &str) -> bool {
        true
    }
}

/// What every conversation shares.
pub struct LiveDeps {
    /// The config the daemon started with (`[dialog]` is read from `dialog`).
    pub config: Config,
    /// The `[dialog]` settings in force: a `config_update` job swaps them, and
    /// each conversation takes them when it starts.
    pub dialog: Arc<RwLock<DialogConfig>>,
    pub engines: Engines,
    /// The analyzer for the pack in use; a conversation keeps the one it started with.
    pub analyzer: Arc<dyn Fn() -> Arc<Analyzer> + Send + Sync>,
    pub tickets: Arc<dyn TicketSink>,
}

/// Who is on a line, as the channel knows it when the conversation starts.
#[derive(Debug, Clone)]
pub struct Caller {
    pub channel: Channel,
    /// The dialled number (phone) or the kiosk's id; `None` when unknown.
    pub line: Option<String>,
    /// The caller's number (phone); `None` at a kiosk or when withheld.
    pub number: Option<String>,
}

impl LiveDeps {
    /// The `[dialog]` settings for a conversation starting now.
    pub fn dialog(&self) -> DialogConfig {
        self.dialog.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A conversation's set-up from the settings in force now: the elder-line
    /// and VIP policies by the dialled and calling numbers, the masked caller
    /// id in the ticket, the language, timers and voices.
    pub fn setup(&self, caller: Caller, ticket_id: String) -> CallSetup {
        let dialog = self.dialog();
        let elder = caller.line.as_ref().is_some_and(|line| dialog.elder_lines.contains(line));
        let vip = caller.number.as_ref().is_some_and(|number| dialog.vip_callers.contains(number));
        CallSetup {
            channel: caller.channel,
            line: if elder { LineKind::Elder } else { LineKind::Standard },
            vip,
            language: match self.config.asr.language {
                LanguageChoice::Fixed(Language::Zh) => Language::Zh,
                _ => Language::En,
            },
            timing: Timing::from_config(&dialog),
            policy: EscalationPolicy::from_config(&dialog),
            speaking_rate: self.config.tts.rate,
            elder_rate: self.config.tts.elder_rate,
            context: CallContext {
                channel: caller.channel.code().into(),
                line: caller.line,
                caller_id_masked: caller.number.as_deref().map(pii::mask_phone),
                started_at_ms: now_ms(),
            },
            ticket_id,
            callback_ticket_id: ulid::Ulid::new().to_string(),
        }
    }
}

/// The wall clock in milliseconds since the Unix epoch (ticket times).
pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// How long a caller's speech is kept for recognition.
pub(crate) const CALLER_AUDIO_KEPT: Duration = Duration::from_secs(40);
