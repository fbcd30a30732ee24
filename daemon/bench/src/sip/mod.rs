//! The phone line measured from outside: `voicebotd run` (the binary under
//! test, normally the release build) on loopback, called by the scripted SIP
//! caller that the daemon's end-to-end tests use (`uac`, raw UDP SIP and
//! PCMU RTP paced on a 20 ms clock).
//!
//! Four measurements, in this order, all against one daemon:
//! 1. **Call set-up**: INVITE sent → 200 OK received, on an idle daemon, then BYE.
//! 2. **Voice-to-voice over SIP**: the latency benchmark's calls and caller
//!    voices (`latency::CALLS`, espeak-ng, trimmed after the last audible
//!    sample, then resampled to 8 kHz); per turn, the caller's last speech
//!    RTP packet sent → the first reply packet (peak over −50 dBFS) received.
//!    Each call is followed by the same call in process (`latency::call`,
//!    no SIP), so the two are a ratio on the same machine state.
//! 3. **Concurrent calls**: 1, 2, 3 ... simultaneous conversations (started
//!    1 s apart, each a whole scripted call); a level holds when every call
//!    completes with every turn answered and no gap over 60 ms between two
//!    RTP packets from the daemon. The ramp stops at the first level that
//!    does not hold.
//! 4. **RSS per call**: the daemon's VmRSS sampled every 100 ms during each
//!    level; (peak − idle) / calls.

mod call;
mod ramp;
#[path = "../../../voicebotd/tests/common/uac.rs"]
mod uac;

use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use voicebot_conversation::session::CallerTurn;
use voicebot_dialog::call::Timing;

use crate::latency::{self, CALLS, VOICES, percentile};

/// What `voicebot-bench sip` was asked to do.
pub(crate) struct SipArgs {
    pub(crate) voicebotd: PathBuf,
    pub(crate) out: PathBuf,
    pub(crate) rounds: usize,
    pub(crate) setups: usize,
    pub(crate) max_level: usize,
    pub(crate) reference: bool,
}

/// `voicebotd run` as a child process.
struct Daemon {
    child: Child,
    sip: SocketAddr,
}

impl Daemon {
    fn start(voicebotd: &Path, scratch: &Path, max_calls: usize) -> Result<Daemon> {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let sip: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let config = scratch.join("voicebotd.toml");
        std::fs::write(
            &config,
            format!(
                "[models]\nverify_checksums = false\n[asr]\nthreads = {threads}\nlanguage = \"en\"\n\
                 [sip]\nlisten_udp = \"{sip}\"\nlisten_tcp = \"\"\nmax_calls = {max_calls}\n\
                 [fleet]\noutbox = \"{}\"\n[http]\nlisten = \"\"\n",
                scratch.join("outbox.db").display(),
                threads = crate::stats::THREADS,
            ),
        )?;
        let mut child = Command::new(voicebotd)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("VOICEBOTD_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!("{} (build it: cargo build --release -p voicebotd)", voicebotd.display())
            })?;
        let stderr = child.stderr.take().context("daemon stderr")?;
        let log_path = scratch.join("voicebotd.log");
        let mut log = std::fs::File::create(&log_path)?;
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("voicebotd ready") {
                    let _ = ready_tx.send(());
                }
                let _ = writeln!(log, "{line}");
            }
        });
        let daemon = Daemon { child, sip };
        ready.recv_timeout(Duration::from_secs(180)).map_err(|_| {
            anyhow::anyhow!("voicebotd did not get ready within 180 s: see {}", log_path.display())
        })?;
        Ok(daemon)
    }

    fn rss_kib(&self) -> u64 {
        uac::rss_kib(self.child.id()).unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples.iter().map(|&s| (s.clamp(-1.0, 1.0) * 32767.0) as i16).collect()
}

fn summary(values: &[f64]) -> serde_json::Value {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    json!({"n": sorted.len(), "p50_ms": percentile(&sorted, 0.5), "p95_ms": percentile(&sorted, 0.95), "max_ms": sorted.last()})
}

pub(crate) fn run(args: &SipArgs) -> Result<()> {
    let scratch = args.out.with_extension("work");
    std::fs::create_dir_all(&scratch)?;
    let started = Instant::now();
    let load_at_start = load_average();

    // The callers: the latency benchmark's turns and voices, 16 kHz for the
    // in-process reference and 8 kHz for the phone line.
    let mut wide = Vec::new();
    let mut narrow = Vec::new();
    for (c, texts) in CALLS.iter().enumerate() {
        let voice = VOICES[c % VOICES.len()];
        let mut call_wide = Vec::new();
        let mut call_narrow = Vec::new();
        for (t, text) in texts.iter().enumerate() {
            let samples = latency::speak(text, voice, &scratch, &format!("call{c}-turn{t}"))?;
            call_narrow.push(to_i16(&voicebot_audio::resample(
                &samples,
                voicebot_audio::ENGINE_RATE,
                8_000,
            )?));
            call_wide.push(CallerTurn::Spoken(samples));
        }
        wide.push(call_wide);
        narrow.push(call_narrow);
    }

    let daemon = Daemon::start(&args.voicebotd, &scratch, args.max_level.max(8))?;
    std::thread::sleep(Duration::from_secs(2));
    let idle_kib = daemon.rss_kib();
    eprintln!("voicebotd ready; idle RSS {idle_kib} KiB; load {}", load_average());

    // 1. Set-up time on an idle daemon.
    let mut setups = Vec::new();
    for n in 0..args.setups {
        setups.push(call::set_up_only(daemon.sip, &format!("setup-{n}")).map_err(anyhow::Error::msg)?);
        // Let the call's greeting threads wind down: this measures an idle box.
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("set-up: {}", summary(&setups));

    // 2. Voice-to-voice over SIP, each call followed by the same call in process.
    let loaded = if args.reference { Some(latency::load()?) } else { None };
    let mut over_sip = Vec::new();
    let mut in_process = Vec::new();
    let mut latency_calls = Vec::new();
    for round in 0..args.rounds {
        for (c, turns) in narrow.iter().enumerate() {
            let result = call::converse(daemon.sip, &format!("latency-{round}-{c}"), turns);
            eprintln!(
                "round {round} call {c}: over SIP {:.0?} ms{}",
                result.latencies_ms,
                result.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
            );
            over_sip.extend(result.latencies_ms.iter().copied());
            latency_calls.push(result);
            if let Some(loaded) = &loaded {
                let (latencies, outcome) = latency::call(loaded, &wide[c], Timing::default())?;
                eprintln!("round {round} call {c}: in process {latencies:.0?} ms ({outcome})");
                in_process.extend(latencies);
            }
        }
    }
    drop(loaded);
    let ratio = |a: &[f64], b: &[f64]| crate::stats::median(a) / crate::stats::median(b);
    eprintln!(
        "voice-to-voice over SIP {}; in process {}",
        summary(&over_sip),
        if args.reference { summary(&in_process).to_string() } else { "not run".into() }
    );

    // 3 and 4. The concurrency ramp, with RSS.
    let levels = ramp::run(&daemon, &narrow, args.max_level, idle_kib);
    let sustained = levels.iter().take_while(|l| l.holds).map(|l| l.calls).last().unwrap_or(0);
    // What one more call costs, without the first call's one-time warm-up
    // (ONNX Runtime's arena in the shared TTS session, lazily allocated buffers).
    let marginal: Vec<serde_json::Value> = levels
        .iter()
        .skip(1)
        .map(|l| {
            let per_call = l.peak_rss_kib.saturating_sub(levels[0].peak_rss_kib) / (l.calls as u64 - 1);
            json!({"calls": l.calls, "kib_per_call_over_one": per_call})
        })
        .collect();

    let result = json!({
        "machine": crate::stats::Machine::this(),
        "voicebotd": args.voicebotd,
        "load_average_start": load_at_start,
        "load_average_end": load_average(),
        "wall_seconds": started.elapsed().as_secs_f64(),
        "setup": summary(&setups),
        "setup_ms": setups,
        "voice_to_voice_over_sip": summary(&over_sip),
        "voice_to_voice_in_process": if args.reference { summary(&in_process) } else { serde_json::Value::Null },
        "p50_ratio_sip_over_in_process": if args.reference { json!(ratio(&over_sip, &in_process)) } else { serde_json::Value::Null },
        "latency_calls": latency_calls,
        "in_process_latencies_ms": in_process,
        "idle_rss_kib": idle_kib,
        "gap_limit_ms": call::GAP_LIMIT.as_millis() as u64,
        "rss_marginal": marginal,
        "levels": levels,
        "concurrent_calls_sustained": sustained,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&result)?)?;
    eprintln!("sustained {sustained} concurrent calls; results in {}", args.out.display());
    if args.rounds > 0 && over_sip.is_empty() {
        bail!("no turn over SIP was answered: see {}", scratch.join("voicebotd.log").display());
    }
    Ok(())
}
