//! A kiosk visit as a conversation's [`Line`]: the microphone in (through the
//! half-duplex echo gate), the speaker out, typed keys, and the hand-over as a
//! call to the agent queue that then bridges the microphone and speaker.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use tracing::{error, info, warn};
use voicebot_audio::ENGINE_RATE;
use voicebot_core::config::KioskAction;
use voicebot_dialog::call::TransferRequest;
use voicebot_live::{ClipKey, HandOver, Handed, Line, LineEnd, LineEvent, LineGone};

use crate::agent::{AgentDesk, AgentLeg};
use crate::half_duplex::EchoGate;
use crate::speaker::{Speaker, SpeakerEvent};
use crate::triggers::Trigger;
use crate::visit::Screen;

/// Agent audio is played in pieces of this many samples (60 ms at 16 kHz):
/// fewer, larger clips for the speaker, a little latency for the agent's voice.
const AGENT_PIECE: usize = 960;

/// Where the hand-over task leaves the answered agent call for the line.
type LegSlot = Arc<Mutex<Option<Box<dyn AgentLeg>>>>;

/// The kiosk's devices and inputs, borrowed for one visit.
pub(crate) struct KioskLine<'a> {
    pub(crate) mic: &'a mut mpsc::Receiver<Vec<f32>>,
    pub(crate) speaker: &'a Speaker,
    pub(crate) speaker_events: &'a mut mpsc::Receiver<SpeakerEvent>,
    pub(crate) triggers: &'a mut mpsc::Receiver<Trigger>,
    pub(crate) triggers_open: bool,
    pub(crate) gate: EchoGate,
    pub(crate) agents: Option<Arc<dyn AgentDesk>>,
    pub(crate) screen: Screen,
    /// Events to hand out before anything else (keys, an "assist" request).
    pub(crate) pending: VecDeque<LineEvent>,
    leg_slot: LegSlot,
    leg: Option<Box<dyn AgentLeg>>,
    agent_piece: Vec<f32>,
    /// Set when the line is over; reported once, then `None` forever.
    ending: Option<LineEnd>,
    finished: bool,
}

impl<'a> KioskLine<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        mic: &'a mut mpsc::Receiver<Vec<f32>>,
        speaker: &'a Speaker,
        speaker_events: &'a mut mpsc::Receiver<SpeakerEvent>,
        triggers: &'a mut mpsc::Receiver<Trigger>,
        triggers_open: bool,
        gate: EchoGate,
        agents: Option<Arc<dyn AgentDesk>>,
        screen: Screen,
    ) -> KioskLine<'a> {
        KioskLine {
            mic,
            speaker,
            speaker_events,
            triggers,
            triggers_open,
            gate,
            agents,
            screen,
            pending: VecDeque::new(),
            leg_slot: Arc::new(Mutex::new(None)),
            leg: None,
            agent_piece: Vec::with_capacity(AGENT_PIECE),
            ending: None,
            finished: false,
        }
    }

    /// Whether the trigger channel is still open (it outlives the visit).
    pub(crate) fn triggers_open(&self) -> bool {
        self.triggers_open
    }

    fn take_trigger(&mut self, trigger: Option<Trigger>) {
        match trigger {
            Some(Trigger::Typed(text)) => self.pending.extend(typed(&text)),
            // "Call assistance" during a conversation: a person, now.
            Some(Trigger::Start { action: KioskAction::Assist, .. }) => {
                self.pending.push_back(LineEvent::PersonRequested);
            }
            Some(Trigger::Start { action: KioskAction::Talk, .. }) => {}
            None => self.triggers_open = false,
        }
    }

    fn play_agent(&mut self, audio: Option<Vec<f32>>) {
        match audio {
            Some(pcm) => {
                self.agent_piece.extend_from_slice(&pcm);
                if self.agent_piece.len() >= AGENT_PIECE {
                    if let Err(e) = self.speaker.play(&self.agent_piece, ENGINE_RATE) {
                        warn!(error = %e, "kiosk: the agent's voice could not be played");
                    }
                    self.agent_piece.clear();
                }
            }
            None => {
                info!("kiosk: the agent has left the call");
                (self.screen)("kiosk: the agent has ended the call");
                self.leg = None;
                self.ending = Some(LineEnd::Gone);
            }
        }
    }
}

/// What a line typed at the kiosk means: `0` alone asks for a person (the
/// stdin "call assistance" key); otherwise its digits, `*` and `#` are keys,
/// and the end of a line of digits ends the number, like `#`.
pub(crate) fn typed(text: &str) -> Vec<LineEvent> {
    if text.trim() == "0" {
        return vec![LineEvent::PersonRequested];
    }
    let mut keys: Vec<char> = text.chars().filter(|c| c.is_ascii_digit() || *c == '*' || *c == '#').collect();
    if keys.last().is_some_and(char::is_ascii_digit) {
        keys.push('#');
    }
    keys.into_iter().map(LineEvent::Key).collect()
}

/// The agent's next audio, or never when no agent is on the line.
async fn agent_audio(leg: &mut Option<Box<dyn AgentLeg>>) -> Option<Vec<f32>> {
    match leg {
        Some(leg) => leg.next_audio().await,
        None => std::future::pending().await,
    }
}

#[async_trait::async_trait]
impl Line for KioskLine<'_> {
    async fn next_event(&mut self) -> Option<LineEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.finished {
                return None;
            }
            if let Some(end) = self.ending.take() {
                self.finished = true;
                return Some(LineEvent::Ended(end));
            }
            if self.leg.is_none()
                && let Some(leg) = self.leg_slot.lock().unwrap_or_else(PoisonError::into_inner).take()
            {
                self.leg = Some(leg);
            }
            tokio::select! {
                frame = self.mic.recv() => match frame {
                    Some(mut pcm) => {
                        self.gate.apply(&mut pcm, self.speaker.is_playing());
                        if let Some(leg) = self.leg.as_mut() {
                            leg.send_audio(&pcm);
                        }
                        return Some(LineEvent::Audio(pcm));
                    }
                    None => {
                        error!("kiosk: the microphone stopped");
                        self.ending = Some(LineEnd::Gone);
                    }
                },
                event = self.speaker_events.recv() => match event {
                    Some(SpeakerEvent::Finished(clip)) => return Some(LineEvent::PlaybackFinished(ClipKey(clip.0))),
                    Some(SpeakerEvent::Stopped(clips)) => {
                        return Some(LineEvent::PlaybackStopped(clips.into_iter().map(|c| ClipKey(c.0)).collect()));
                    }
                    Some(SpeakerEvent::Failed(e)) => {
                        error!(error = %e, "kiosk: the speaker failed");
                        self.ending = Some(LineEnd::Gone);
                    }
                    None => {
                        error!("kiosk: the speaker stopped");
                        self.ending = Some(LineEnd::Gone);
                    }
                },
                trigger = self.triggers.recv(), if self.triggers_open => self.take_trigger(trigger),
                audio = agent_audio(&mut self.leg) => self.play_agent(audio),
            }
        }
    }

    async fn play(&mut self, samples: &[f32]) -> Result<ClipKey, LineGone> {
        self.speaker.play(samples, ENGINE_RATE).map(|clip| ClipKey(clip.0)).map_err(|e| {
            error!(error = %e, "kiosk: cannot play the bot's speech");
            LineGone
        })
    }

    fn stop(&mut self) {
        self.speaker.stop();
    }

    async fn hang_up(&mut self) {
        if let Some(mut leg) = self.leg.take() {
            leg.hang_up().await;
        }
        if !self.finished && self.ending.is_none() {
            self.ending = Some(LineEnd::Closed);
        }
    }

    fn hand_over(&mut self, request: &TransferRequest) -> HandOver {
        (self.screen)(&format!("kiosk: an agent is joining (ticket {})", request.ticket_id));
        let desk = self.agents.clone();
        let slot = Arc::clone(&self.leg_slot);
        let screen = Arc::clone(&self.screen);
        let request = request.clone();
        Box::pin(async move {
            let Some(desk) = desk else {
                return Err("no agent queue to call: the phone line ([sip]) is off".to_owned());
            };
            let leg = desk.call(request).await?;
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(leg);
            info!("kiosk: an agent answered; the microphone and speaker are bridged to the call");
            screen("kiosk: an agent is on the line");
            Ok(Handed::Bridged)
        })
    }
}

#[cfg(test)]
mod tests {
    use voicebot_live::LineEvent;

    use super::typed;

    fn keys(text: &str) -> String {
        typed(text)
            .into_iter()
            .map(|e| match e {
                LineEvent::Key(k) => k,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn typed_lines_give_their_keys_and_zero_alone_asks_for_a_person() {
        assert_eq!(typed(" 0 "), [LineEvent::PersonRequested]);
        assert_eq!(keys("45712"), "45712#");
        assert_eq!(keys(" 4 5 7#x*"), "457#*");
        assert_eq!(keys("hello"), "");
    }
}
