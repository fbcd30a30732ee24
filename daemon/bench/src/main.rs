//! `voicebot-bench`: measures voicebotd's speech engines against reference
//! harnesses run in the same process, interleaved run by run.
//!
//! Every subcommand writes one JSON file; `report` turns them into the
//! markdown tables of BENCHMARKS.md. `scripts/bench.sh` runs them all.

mod asr;
mod audioctx;
mod clips;
mod fleet;
mod fw;
mod latency;
mod nlu;
mod reference;
mod report;
mod sip;
mod stats;
mod tts;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "voicebot-bench", about = "Benchmarks for voicebotd's engines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Makes the clip set: Piper-spoken hotline sentences, the bundled 8 kHz
    /// calls and JFK, each also as raw 16 kHz f32 for the Python peer.
    Clips {
        #[arg(long, default_value = "target/bench/clips")]
        out: PathBuf,
        /// Where the bundled calls and their make.sh live.
        #[arg(long, default_value = "tests/fixtures/calls")]
        calls: PathBuf,
    },
    /// ASR: reference whisper_full harness, voicebotd (Ear and whisper-rs
    /// stream), config levers, language detection and faster-whisper,
    /// interleaved clip by clip.
    Asr {
        #[arg(long, default_value = "target/bench/clips")]
        clips: PathBuf,
        #[arg(long, default_value = "target/bench/asr.json")]
        out: PathBuf,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Python with faster-whisper installed; without it the peer is skipped.
        #[arg(long)]
        fw_python: Option<PathBuf>,
        /// CTranslate2 model directory for faster-whisper.
        #[arg(long)]
        fw_model: Option<PathBuf>,
        #[arg(long, default_value = "bench/fw_server.py")]
        fw_script: PathBuf,
        /// A name for this build in the results (e.g. "portable", "native").
        #[arg(long, default_value = "portable")]
        build: String,
        /// Only the reference and the default voicebotd path (for a second build).
        #[arg(long)]
        core_only: bool,
        /// Print every call.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Cold vs warm streams: first turn on a new stream, with and without
    /// `prepare`, against later turns on the same stream.
    Stream {
        #[arg(long, default_value = "target/bench/clips")]
        clips: PathBuf,
        #[arg(long, default_value = "target/bench/stream.json")]
        out: PathBuf,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Why a fitted encoder window can make a call slower: audio_ctx sweep with
    /// whisper.cpp's own counters (fallbacks, encoder and decoder passes).
    Audioctx {
        #[arg(long, default_value = "target/bench/clips")]
        clips: PathBuf,
        #[arg(long, default_value = "target/bench/audioctx.json")]
        out: PathBuf,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// TTS real-time factor: Piper (English) and espeak-ng (Mandarin).
    Tts {
        #[arg(long, default_value = "target/bench/tts.json")]
        out: PathBuf,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Prints the markdown summary of the JSON results in `dir`.
    Report {
        #[arg(long, default_value = "target/bench")]
        dir: PathBuf,
    },
    /// Voice-to-voice latency: end of caller speech to first reply audio, whole
    /// calls in real time (tiny.en), with a no-speculation reference.
    Latency {
        #[arg(long, default_value = "target/bench/latency.json")]
        out: PathBuf,
        /// Each round runs all 7 calls (21 turns).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Also run every call without the speculative early end of turn.
        #[arg(long)]
        reference: bool,
    },
    /// The phone line from outside: `voicebotd run` on loopback called by a
    /// scripted SIP caller. Call set-up time, voice-to-voice latency over SIP
    /// (with the same calls in process as the reference), the most concurrent
    /// calls held in real time (no RTP gap over 60 ms), and RSS per call.
    Sip {
        #[arg(long, default_value = "target/bench/sip.json")]
        out: PathBuf,
        /// The daemon under test.
        #[arg(long, default_value = "target/release/voicebotd")]
        voicebotd: PathBuf,
        /// Each round runs all 7 calls (21 turns) over SIP.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        /// Calls that only measure set-up (INVITE → 200 OK, then BYE).
        #[arg(long, default_value_t = 20)]
        setups: usize,
        /// The highest concurrency level the ramp tries.
        #[arg(long, default_value_t = 8)]
        max_level: usize,
        /// Skip the in-process reference (`latency`'s calls without SIP).
        #[arg(long)]
        no_reference: bool,
    },
    /// Ticket delivery against a real mosquitto it starts on loopback: publish
    /// latency (hand-over → PUBACK and → a subscriber) against a bare rumqttc
    /// publish, outbox throughput against plain rusqlite, and replay of a
    /// backlog against the bare client.
    Fleet {
        #[arg(long, default_value = "target/bench/fleet.json")]
        out: PathBuf,
        /// Outbox files and the broker's config (wiped first; keep it on the
        /// disk the daemon's outbox uses: fsync is what is measured).
        #[arg(long, default_value = "target/bench/fleet-scratch")]
        scratch: PathBuf,
        /// Latency samples (each through the fleet and the reference).
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Tickets per throughput burst.
        #[arg(long, default_value_t = 500)]
        burst: usize,
        /// Throughput rounds (each: outbox, outbox with history, plain SQLite).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Tickets queued before the replay.
        #[arg(long, default_value_t = 10_000)]
        backlog: usize,
        /// The broker binary (default: mosquitto on PATH, else /usr/sbin/mosquitto).
        #[arg(long)]
        mosquitto: Option<PathBuf>,
    },
    /// Understanding latency (intent + slots + emotion) per utterance.
    Nlu {
        #[arg(long, default_value = "target/bench/nlu.json")]
        out: PathBuf,
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

fn main() -> Result<()> {
    reference::silence_whisper_logs();
    match Cli::parse().command {
        Command::Clips { out, calls } => clips::make(&out, &calls),
        Command::Asr { clips, out, runs, fw_python, fw_model, fw_script, build, core_only, verbose } => {
            asr::run(&asr::AsrArgs {
                clips,
                out,
                runs,
                fw: match (fw_python, fw_model) {
                    (Some(python), Some(model)) => Some(fw::FwArgs { python, model, script: fw_script }),
                    _ => None,
                },
                build,
                core_only,
                verbose,
            })
        }
        Command::Stream { clips, out, runs } => asr::run_stream(&clips, &out, runs),
        Command::Audioctx { clips, out, runs } => audioctx::run(&clips, &out, runs),
        Command::Tts { out, runs } => tts::run(&out, runs),
        Command::Report { dir } => report::run(&dir),
        Command::Nlu { out, runs } => nlu::run(&out, runs),
        Command::Fleet { out, scratch, samples, burst, rounds, backlog, mosquitto } => {
            fleet::run(&fleet::FleetArgs { out, scratch, samples, burst, rounds, backlog, mosquitto })
        }
        Command::Latency { out, rounds, reference } => latency::run(&out, rounds, reference),
        Command::Sip { out, voicebotd, rounds, setups, max_level, no_reference } => {
            sip::run(&sip::SipArgs { voicebotd, out, rounds, setups, max_level, reference: !no_reference })
        }
    }
}
