//! The person a kiosk hands over to: a call to the agent queue that bridges
//! the kiosk's microphone and speaker. The daemon implements it with the SIP
//! user agent (the same ticket headers as a phone transfer); the kiosk only
//! sees 16 kHz audio both ways.

use voicebot_dialog::call::TransferRequest;

/// Places calls to the agent queue.
#[async_trait::async_trait]
pub trait AgentDesk: Send + Sync {
    /// Calls the queue for the hand-over's skill group; returns once a person
    /// answered.
    ///
    /// # Errors
    /// Why nobody could be reached (busy, unreachable, timeout): the kiosk
    /// tells the customer and a call-back ticket follows.
    async fn call(&self, request: TransferRequest) -> Result<Box<dyn AgentLeg>, String>;
}

/// An answered call to an agent.
#[async_trait::async_trait]
pub trait AgentLeg: Send {
    /// The agent's voice, 16 kHz mono, about 20 ms at a time; `None` once the
    /// agent has hung up or the call failed.
    ///
    /// # Cancel safety
    /// Must be cancel-safe: it is polled in a `select!`.
    async fn next_audio(&mut self) -> Option<Vec<f32>>;

    /// The kiosk's microphone to the agent, 16 kHz mono; dropped, never
    /// queued without bound, when the call falls behind.
    fn send_audio(&mut self, pcm: &[f32]);

    /// Ends the call to the agent.
    async fn hang_up(&mut self);
}
