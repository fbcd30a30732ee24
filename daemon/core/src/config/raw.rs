//! Stage one of config loading: the file's shape, exactly as written.
//!
//! Every key is optional and every table denies unknown keys, so the user's
//! file is parsed on its own and any error points at its own line and key.
//! The embedded default is parsed the same way and fills in what the user
//! left out ([`RawConfig::or`]).

use serde::Deserialize;

/// Declares a config table whose keys are all optional, with a merge.
macro_rules! section {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(pub $field: Option<$ty>,)*
        }

        impl $name {
            /// Keys set here win; the rest come from `fallback`.
            pub fn or(self, fallback: Self) -> Self {
                Self { $($field: self.$field.or(fallback.$field),)* }
            }
        }
    };
}

section!(RawModels { dir: String, verify_checksums: bool });
section!(RawRuntime { onnxruntime: String });
section!(RawAsr {
    language: String,
    threads: u32,
    english_model: String,
    multilingual_model: String,
    no_speech_threshold: f32,
    detect_among: Vec<String>,
    audio_ctx: String,
    temperature_fallback: bool,
});
section!(RawVad {
    model: String,
    threshold: f32,
    min_speech_ms: u32,
    min_silence_ms: u32,
    speech_pad_ms: u32,
});
section!(RawTts { english_voice: String, rate: f32, elder_rate: f32, threads: u32, espeak_data: String });
section!(RawNlu { pack: String, embedding_model: String, sentiment_lexicon: String });
section!(RawSimulate { reply_dir: String });
section!(RawDialog {
    end_of_turn_ms: u32,
    end_of_turn_digits_ms: u32,
    early_end_of_turn_ms: u32,
    barge_in_ms: u32,
    backchannel_max_ms: u32,
    no_input_ms: u32,
    no_input_elder_ms: u32,
    max_no_input_reprompts: u32,
    max_failed_turns: u32,
    confidence_floor: f32,
    valence_limit: i64,
    hand_over_on_worsening: bool,
    elder_lines: Vec<String>,
    vip_callers: Vec<String>,
});
section!(RawMqtt {
    url: String,
    username: String,
    password: String,
    ca_file: String,
    client_cert: String,
    client_key: String,
    keepalive_s: u32,
});
section!(RawFleet {
    device_id: String,
    site: String,
    public_key: String,
    outbox: String,
    outbox_max_tickets: u32,
    outbox_max_mb: u32,
    outbox_max_age_days: u32,
    telemetry_interval_s: u32,
    job_window_s: u32,
});
section!(RawHttp { listen: String, token_file: String });
section!(RawKiosk {
    enabled: bool,
    id: String,
    input: String,
    output: String,
    triggers: Vec<String>,
    gpio_file: String,
    gpio_action: String,
    echo_gate_dbfs: f32,
    rest_s: u32,
});
section!(RawReport {
    store: String,
    publish_hour_utc: u32,
    emotion_retention_h: u32,
    record_retention_days: u32
});
section!(RawSip {
    listen_udp: String,
    listen_tcp: String,
    advertised_address: String,
    allowed_peers: Vec<String>,
    max_calls: u32,
    jitter_ms: u32,
    transfer_mode: String,
    agent_queue: String,
    skill_queues: std::collections::BTreeMap<String, String>,
    uui_purpose: String,
    transfer_timeout_s: u32,
    auth_realm: String,
    auth_users: std::collections::BTreeMap<String, RawSipUser>,
    registrar: String,
    registrar_username: String,
    registrar_password: String,
    registrar_expiry_s: u32,
});

/// One caller account under `[sip.auth_users]`: a password or an HA1 hash.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSipUser {
    pub password: Option<String>,
    pub ha1: Option<String>,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub models: RawModels,
    #[serde(default)]
    pub runtime: RawRuntime,
    #[serde(default)]
    pub asr: RawAsr,
    #[serde(default)]
    pub vad: RawVad,
    #[serde(default)]
    pub tts: RawTts,
    #[serde(default)]
    pub nlu: RawNlu,
    #[serde(default)]
    pub simulate: RawSimulate,
    #[serde(default)]
    pub dialog: RawDialog,
    #[serde(default)]
    pub mqtt: RawMqtt,
    #[serde(default)]
    pub fleet: RawFleet,
    #[serde(default)]
    pub sip: RawSip,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub report: RawReport,
    #[serde(default)]
    pub kiosk: RawKiosk,
}

impl RawConfig {
    /// Tables merged key by key; keys set here win.
    pub fn or(self, fallback: RawConfig) -> RawConfig {
        RawConfig {
            models: self.models.or(fallback.models),
            runtime: self.runtime.or(fallback.runtime),
            asr: self.asr.or(fallback.asr),
            vad: self.vad.or(fallback.vad),
            tts: self.tts.or(fallback.tts),
            nlu: self.nlu.or(fallback.nlu),
            simulate: self.simulate.or(fallback.simulate),
            mqtt: self.mqtt.or(fallback.mqtt),
            fleet: self.fleet.or(fallback.fleet),
            sip: self.sip.or(fallback.sip),
            http: self.http.or(fallback.http),
            report: self.report.or(fallback.report),
            kiosk: self.kiosk.or(fallback.kiosk),
            dialog: self.dialog.or(fallback.dialog),
        }
    }
}
