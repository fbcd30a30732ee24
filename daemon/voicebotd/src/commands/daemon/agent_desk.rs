//! The kiosk's agent desk over SIP: a hand-over from the kiosk calls the agent
//! queue from the box (the same ticket headers as a phone transfer) and turns
//! the call's 8 kHz G.711 audio into the kiosk's 16 kHz and back.

use std::sync::Arc;

use voicebot_dialog::call::TransferRequest;
use voicebot_kiosk::agent::{AgentDesk, AgentLeg};
use voicebot_rtp::telephone_band::{Downsampler, Upsampler};
use voicebot_sip::agent_call::{AgentCall, AgentDialer, VoiceError};
use voicebot_sip::{CallEvent, EndReason};

/// 20 ms at 16 kHz: one frame for the agent after narrowing to 8 kHz.
const WIDE_FRAME: usize = 320;

pub(super) struct SipAgentDesk(pub(super) AgentDialer);

impl SipAgentDesk {
    pub(super) fn shared(dialer: AgentDialer) -> Arc<dyn AgentDesk> {
        Arc::new(SipAgentDesk(dialer))
    }
}

#[async_trait::async_trait]
impl AgentDesk for SipAgentDesk {
    async fn call(&self, request: TransferRequest) -> Result<Box<dyn AgentLeg>, String> {
        let call =
            self.0.call_agent(voicebot_phone::handover_for(&request)).await.map_err(|e| e.to_string())?;
        tracing::info!(queue = %call.info.queue, agent_call_id = %call.info.call_id, "kiosk: agent call answered");
        Ok(Box::new(SipAgentLeg {
            call,
            widen: Upsampler::new(),
            narrow: Downsampler::new(),
            mic: Vec::with_capacity(WIDE_FRAME * 2),
        }))
    }
}

struct SipAgentLeg {
    call: AgentCall,
    widen: Upsampler,
    narrow: Downsampler,
    /// Microphone audio not yet a whole frame.
    mic: Vec<f32>,
}

#[async_trait::async_trait]
impl AgentLeg for SipAgentLeg {
    async fn next_audio(&mut self) -> Option<Vec<f32>> {
        loop {
            match self.call.events.recv().await? {
                CallEvent::CallerAudio(samples) => {
                    let mut wide = Vec::with_capacity(samples.len() * 2);
                    self.widen.process(&samples, &mut wide);
                    return Some(wide);
                }
                CallEvent::Ended(reason) => {
                    if let EndReason::Failed(why) = reason {
                        tracing::warn!(error = %why, "kiosk: the agent call failed");
                    }
                    return None;
                }
                CallEvent::Dtmf(_) | CallEvent::PlaybackFinished(_) | CallEvent::PlaybackStopped(_) => {}
            }
        }
    }

    fn send_audio(&mut self, pcm: &[f32]) {
        self.mic.extend_from_slice(pcm);
        while self.mic.len() >= WIDE_FRAME {
            let mut frame = Vec::with_capacity(WIDE_FRAME / 2);
            self.narrow.process(&self.mic[..WIDE_FRAME], &mut frame);
            self.mic.drain(..WIDE_FRAME);
            match self.call.voice.try_send(frame) {
                // A full queue drops the frame (counted by the call); the end arrives as an event.
                Ok(()) | Err(VoiceError::QueueFull | VoiceError::CallGone) => {}
                Err(e @ VoiceError::FrameLength(_)) => {
                    tracing::warn!(error = %e, "kiosk: bad frame for the agent")
                }
            }
        }
    }

    async fn hang_up(&mut self) {
        self.call.control.hang_up();
    }
}
