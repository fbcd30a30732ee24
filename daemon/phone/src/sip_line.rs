//! A SIP call as a conversation's [`Line`]: 8 kHz G.711 audio widened to the
//! engines' 16 kHz and bot speech narrowed back (telephone-band filters), RFC
//! 4733 key presses, hang-up by BYE, the hand-over by REFER or a bridged INVITE
//! that carries only the ticket's key and routing.

use voicebot_dialog::call::TransferRequest;
use voicebot_live::{ClipKey, HandOver, Handed, Line, LineEnd, LineEvent, LineGone};
use voicebot_rtp::dtmf::DtmfDigit;
use voicebot_rtp::playout::ClipId;
use voicebot_rtp::telephone_band::{Downsampler, Upsampler};
use voicebot_sip::{CallEvent, EndReason, Handover, IncomingCall, MediaStats};

pub(crate) struct SipLine {
    call: IncomingCall,
    upsampler: Upsampler,
}

impl SipLine {
    pub(crate) fn new(call: IncomingCall) -> SipLine {
        SipLine { call, upsampler: Upsampler::new() }
    }

    pub(crate) fn media_stats(&self) -> MediaStats {
        self.call.control.media_stats()
    }
}

fn key(d: DtmfDigit) -> Option<char> {
    match d.code() {
        c @ 0..=9 => char::from_digit(u32::from(c), 10),
        10 => Some('*'),
        11 => Some('#'),
        _ => None,
    }
}

/// The SIP side of a hand-over (phone transfer or kiosk call): only the
/// ticket's key and routing travel; the ticket itself goes over MQTT.
pub fn handover_for(request: &TransferRequest) -> Handover {
    Handover {
        ticket_id: request.ticket_id.clone(),
        intent: request.intent.clone(),
        emotion: request.emotion.clone(),
        escalation_reason: request.reason.code().to_owned(),
        priority: request.priority.to_string(),
        skill_group: Some(request.skill_group.clone()),
    }
}

fn clip_key(clip: ClipId) -> ClipKey {
    ClipKey(clip.0)
}

#[async_trait::async_trait]
impl Line for SipLine {
    async fn next_event(&mut self) -> Option<LineEvent> {
        loop {
            let event = match self.call.events.recv().await? {
                CallEvent::CallerAudio(samples) => {
                    let mut pcm = Vec::with_capacity(samples.len() * 2);
                    self.upsampler.process(&samples, &mut pcm);
                    LineEvent::Audio(pcm)
                }
                CallEvent::Dtmf(d) => match key(d) {
                    Some(k) => LineEvent::Key(k),
                    None => continue,
                },
                CallEvent::PlaybackFinished(clip) => LineEvent::PlaybackFinished(clip_key(clip)),
                CallEvent::PlaybackStopped(clips) => {
                    LineEvent::PlaybackStopped(clips.into_iter().map(clip_key).collect())
                }
                CallEvent::Ended(reason) => LineEvent::Ended(match reason {
                    EndReason::CallerHungUp | EndReason::AgentHungUp | EndReason::Failed(_) => LineEnd::Gone,
                    EndReason::Transferred => LineEnd::Transferred,
                    EndReason::HungUp | EndReason::Shutdown => LineEnd::Closed,
                }),
            };
            return Some(event);
        }
    }

    async fn play(&mut self, samples: &[f32]) -> Result<ClipKey, LineGone> {
        let mut narrow = Vec::with_capacity(samples.len() / 2 + 1);
        Downsampler::new().process(samples, &mut narrow);
        self.call.audio.play(narrow).await.map(clip_key).map_err(|_| LineGone)
    }

    fn stop(&mut self) {
        self.call.audio.stop();
    }

    async fn hang_up(&mut self) {
        self.call.control.hang_up().await;
    }

    fn hand_over(&mut self, request: &TransferRequest) -> HandOver {
        let control = self.call.control.clone();
        let handover = handover_for(request);
        Box::pin(async move {
            match control.transfer(handover).await {
                Ok(t) if t.bridged => Ok(Handed::Bridged),
                Ok(_) => Ok(Handed::Left),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}
