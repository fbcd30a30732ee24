//! The command-line contract, run as a user runs it: the real binary, real
//! models, real audio. Bad input of every kind must give one clear line on
//! stderr naming the file, a non-zero exit, and no panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voicebotd"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn calls() -> PathBuf {
    repo().join("tests/fixtures/calls")
}

fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VOICEBOTD_MODEL_DIR") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").expect("HOME");
    PathBuf::from(home).join(".cache/voicebotd/models")
}

fn jfk() -> PathBuf {
    let path = model_dir().join("samples/jfk.wav");
    assert!(path.exists(), "{} missing: run scripts/setup.sh", path.display());
    path
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voicebotd-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn voicebotd")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failing run: the given exit code, one error line naming `needle`, no panic.
fn assert_clean_failure(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("voicebotd: error:"))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(line.contains(needle), "{needle:?} not in {line:?}");
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn transcribe_json_has_the_contract_fields_and_the_known_sentence() {
    let out = run(bin().args(["transcribe", "--json", "--lang", "en"]).arg(jfk()));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let v = &lines[0];
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["audio_seconds", "elapsed_seconds", "language", "text"]);
    assert_eq!(v["language"], "en");
    assert!((v["audio_seconds"].as_f64().unwrap() - 11.0).abs() < 0.01);
    let text = v["text"].as_str().unwrap().to_lowercase();
    assert!(text.contains("ask not what your country can do for you"), "{text}");
}

#[test]
fn transcribe_accepts_8khz_and_48khz_stereo_wavs() {
    let dir = scratch("rates");
    let stereo = dir.join("stereo48k.wav");
    let status = Command::new("sox")
        .arg(calls().join("agent-1.wav"))
        .args(["-r", "48000", "-c", "2"])
        .arg(&stereo)
        .status()
        .expect("sox (apt-get install sox)");
    assert!(status.success());
    for file in [calls().join("agent-1.wav"), stereo] {
        let out = run(bin().args(["transcribe", "--lang", "en"]).arg(&file));
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(text.contains("agent"), "{}: {text}", file.display());
    }
}

#[test]
fn transcribe_bad_inputs_fail_cleanly_naming_the_file() {
    let dir = scratch("bad-audio");
    let missing = dir.join("missing.wav");
    assert_clean_failure(&run(bin().arg("transcribe").arg(&missing)), 3, "missing.wav: no such file");

    let not_wav = dir.join("notes.wav");
    std::fs::write(&not_wav, "this is not audio").unwrap();
    assert_clean_failure(&run(bin().arg("transcribe").arg(&not_wav)), 3, "notes.wav: not a WAV file");

    let full = std::fs::read(calls().join("order-1.wav")).unwrap();
    let truncated = dir.join("truncated.wav");
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    assert_clean_failure(&run(bin().arg("transcribe").arg(&truncated)), 3, "truncated.wav: truncated WAV");

    let empty = dir.join("empty.wav");
    std::fs::write(&empty, voicebot_audio::encode_wav(&[], 16_000)).unwrap();
    let out = run(bin().arg("transcribe").arg(&empty));
    assert_clean_failure(&out, 3, "empty.wav: contains no audio (0 seconds)");
}

#[test]
fn a_corrupt_model_fails_with_a_checksum_error() {
    let dir = scratch("corrupt-model");
    std::fs::create_dir_all(dir.join("whisper-tiny.en")).unwrap();
    std::fs::write(dir.join("whisper-tiny.en/ggml-tiny.en.bin"), vec![7u8; 77_704_715]).unwrap();
    let out = run(bin().env("VOICEBOTD_MODEL_DIR", &dir).args(["transcribe", "--lang", "en"]).arg(jfk()));
    assert_clean_failure(&out, 4, "ggml-tiny.en.bin is corrupt");
}

#[test]
fn a_missing_onnx_runtime_fails_naming_the_library() {
    let dir = scratch("no-ort");
    let config = dir.join("voicebotd.toml");
    std::fs::write(&config, "[runtime]\nonnxruntime = \"/opt/none/libonnxruntime.so\"\n").unwrap();
    let out = run(bin().arg("--config").arg(&config).args(["transcribe", "--lang", "en"]).arg(jfk()));
    assert_clean_failure(&out, 4, "/opt/none/libonnxruntime.so");
}

#[test]
fn say_writes_speech_that_transcribes_back() {
    let dir = scratch("say");
    let wav = dir.join("hello.wav");
    let out = run(bin().args(["say", "Your parcel arrives tomorrow morning.", "--out"]).arg(&wav));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(bin().args(["transcribe", "--lang", "en"]).arg(&wav));
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.contains("parcel") && text.contains("tomorrow"), "{text}");
}

#[test]
fn say_rejects_bad_arguments_cleanly() {
    let dir = scratch("say-bad");
    let out = run(bin().args(["say", "hi", "--lang", "fr", "--out"]).arg(dir.join("x.wav")));
    assert_clean_failure(&out, 2, "fr");
    let out = run(bin().args(["say", "hi", "--rate", "9", "--out"]).arg(dir.join("x.wav")));
    assert_clean_failure(&out, 2, "--rate");
    let out = run(bin().args(["say", "hi", "--out", "/nonexistent/dir/x.wav"]));
    assert_clean_failure(&out, 1, "/nonexistent/dir/x.wav");
}

#[test]
fn simulate_prints_one_contract_line_per_turn_then_the_outcome() {
    let dir = scratch("simulate");
    let turns = ["order-1.wav", "order-3.wav"].map(|t| calls().join(t));
    let out = run(bin().args(["simulate", "--json", "--lang", "en", "--reply-dir"]).arg(&dir).args(&turns));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3, "two turns and the outcome");
    let fields = [
        "turn",
        "transcript",
        "language",
        "intent",
        "confidence",
        "emotion",
        "reply_text",
        "reply_audio",
        "escalated",
        "reason",
    ];
    for (i, line) in lines[..2].iter().enumerate() {
        for field in fields {
            assert!(line.get(field).is_some(), "turn {i} lacks {field}: {line}");
        }
        assert_eq!(line["turn"], i + 1);
        let reply = PathBuf::from(line["reply_audio"].as_str().unwrap());
        assert!(std::fs::metadata(&reply).unwrap().len() > 10_000, "{}", reply.display());
    }
    assert_eq!(lines[0]["intent"], "order_status");
    assert_eq!(lines[1]["intent"], "goodbye");
    assert_eq!(lines[1]["escalated"], false);
    // The bot only asked for the order number and never answered: not resolved.
    assert_eq!(lines[2]["outcome"], "abandoned");
    assert!(lines[2]["reason"].is_null() && lines[2]["ticket"].is_null(), "{}", lines[2]);
}

#[test]
fn simulate_an_answered_call_ending_in_goodbye_is_resolved() {
    let dir = scratch("simulate-resolved");
    let turns = ["order-1.wav", "order-2.wav", "order-3.wav"].map(|t| calls().join(t));
    let out = run(bin().args(["simulate", "--json", "--lang", "en", "--reply-dir"]).arg(&dir).args(&turns));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4);
    let answer = lines[1]["reply_text"].as_str().unwrap();
    assert!(answer.contains("45712"), "the order number fills the answer: {answer}");
    assert_eq!(lines[3]["outcome"], "resolved", "{}", lines[3]);
}

#[test]
fn simulate_hands_over_a_stolen_card_and_stops() {
    let dir = scratch("simulate-sensitive");
    let turns = ["stolen-1.wav", "order-1.wav"].map(|t| calls().join(t));
    let out = run(bin().args(["simulate", "--json", "--reply-dir"]).arg(&dir).args(&turns));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "no turn after the hand-over, then the outcome");
    assert_eq!(lines[0]["intent"], "account_security");
    assert_eq!(lines[0]["escalated"], true);
    assert_eq!(lines[0]["reason"], "sensitive");
    assert_eq!(lines[1]["outcome"], "escalated");
    assert_eq!(lines[1]["reason"], "sensitive");
    let ticket = &lines[1]["ticket"];
    assert_eq!(ticket["id"].as_str().map(str::len), Some(26), "a ULID: {ticket}");
    assert_eq!(ticket["reason"], "sensitive");
    assert_eq!(ticket["skill_group"], "security");
    assert_eq!(ticket["priority"], 9);
    assert_eq!(ticket["transcript"][0]["speaker"], "bot", "the greeting: {ticket}");
    assert_eq!(ticket["transcript"][1]["speaker"], "caller");
    assert_eq!(ticket["transcript"][1]["intent"], "account_security");
    assert_eq!(ticket["transcript"][2]["speaker"], "bot");
    assert_eq!(ticket["channel"], "phone");
    assert!(ticket["agent_assist"]["suggested_answer"].is_string(), "{ticket}");
    assert!(stderr(&out).contains("turn 2 not played"));
}

/// The conversation issue's hand-over examples on synthesized speech (espeak-ng, 8 kHz).
#[test]
fn simulate_audio_scenarios_hand_over_for_the_right_reason() {
    let scenarios: [(&[&str], &str); 3] = [
        (&["agent-1.wav"], "requested"),
        (&["nonsense-1.wav", "nonsense-2.wav", "nonsense-3.wav"], "repeated_failure"),
        (&["angry-1.wav"], "negative_emotion"),
    ];
    for (i, (turns, reason)) in scenarios.iter().enumerate() {
        let dir = scratch(&format!("audio-{i}"));
        let paths = turns.iter().map(|t| calls().join(t));
        let out =
            run(bin().args(["simulate", "--json", "--lang", "en", "--reply-dir"]).arg(&dir).args(paths));
        assert!(out.status.success(), "{turns:?}: {}", stderr(&out));
        let lines = json_lines(&out);
        let last = lines.last().expect("outcome line");
        assert_eq!(last["outcome"], "escalated", "{turns:?}: {last}");
        assert_eq!(last["reason"], *reason, "{turns:?}: {last}");
        assert_eq!(last["ticket"]["reason"], *reason);
        assert_eq!(lines.len(), turns.len() + 1, "every turn played, then the outcome");
        let handover = &lines[turns.len() - 1];
        assert_eq!(
            (&handover["escalated"], &handover["reason"]),
            (&serde_json::json!(true), &serde_json::json!(reason))
        );
    }
}

/// Greetings per channel and line: a kiosk greets as a kiosk; an elder line
/// greets slowly, offers a person, and "yes" hands over with priority.
#[test]
fn simulate_channels_and_the_elder_line() {
    let dir = scratch("elder");
    let out = run(bin()
        .args(["simulate", "--text", "--json", "--line", "elder", "--reply-dir"])
        .arg(&dir)
        .arg("yes please"));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["reason"], "elder_line", "{}", lines[0]);
    let ticket = &lines[1]["ticket"];
    assert_eq!(ticket["line"], "elder");
    assert!(ticket["priority"].as_u64().unwrap() >= 7, "{ticket}");
    assert!(ticket["transcript"][0]["text"].as_str().unwrap().contains("speak slowly"), "{ticket}");
    let greeting = dir.join("greeting.wav");
    assert!(std::fs::metadata(&greeting).unwrap().len() > 10_000);

    let dir = scratch("kiosk");
    let out = run(bin()
        .args(["simulate", "--text", "--json", "--channel", "kiosk", "--reply-dir"])
        .arg(&dir)
        .arg("I want to talk to someone"));
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    let ticket = &lines[1]["ticket"];
    assert_eq!(ticket["channel"], "kiosk");
    assert!(ticket["transcript"][0]["text"].as_str().unwrap().contains("branch assistant"), "{ticket}");

    let out = run(bin().args(["simulate", "--text", "--channel", "fax", "hello"]));
    assert_clean_failure(&out, 2, "--channel");
}

#[test]
fn simulate_rejects_a_bad_turn_before_loading_models() {
    let dir = scratch("simulate-bad");
    let bad = dir.join("broken.wav");
    std::fs::write(&bad, b"RIFF").unwrap();
    let out =
        run(bin().args(["simulate", "--reply-dir"]).arg(&dir).arg(calls().join("order-1.wav")).arg(&bad));
    assert_clean_failure(&out, 3, "broken.wav");
}

#[test]
fn the_printed_default_config_checks_and_bad_configs_name_the_key() {
    let dir = scratch("config");
    let out = run(bin().arg("print-default-config"));
    assert!(out.status.success());
    let default = dir.join("default.toml");
    std::fs::write(&default, &out.stdout).unwrap();
    assert!(run(bin().arg("check-config").arg(&default)).status.success());

    let typo = dir.join("typo.toml");
    std::fs::write(&typo, "[asr]\nthreads = 2\nlangauge = \"en\"\n").unwrap();
    assert_clean_failure(&run(bin().arg("check-config").arg(&typo)), 2, "langauge");

    let value = dir.join("value.toml");
    std::fs::write(&value, "[vad]\nthreshold = 1.5\n").unwrap();
    assert_clean_failure(&run(bin().arg("check-config").arg(&value)), 2, "vad.threshold");

    let out = run(bin().arg("check-config").arg(dir.join("absent.toml")));
    assert_clean_failure(&out, 2, "absent.toml");
}

#[test]
fn models_verify_passes_on_the_fetched_models_and_fails_on_an_empty_dir() {
    let out = run(bin().args(["models", "verify"]));
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("whisper-tiny.en/ggml-tiny.en.bin"), "{listing}");

    let empty = scratch("models-empty");
    let out = run(bin().env("VOICEBOTD_MODEL_DIR", &empty).args(["models", "verify"]));
    assert_clean_failure(&out, 4, "models fetch");
    assert!(String::from_utf8_lossy(&out.stdout).contains("MISSING"));
}

#[test]
fn the_daemon_becomes_ready_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let mut child = bin()
        .arg("run")
        .env("VOICEBOTD_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains("voicebotd ready") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("voicebotd ready"), "{seen}");
    // The contract: with no config the phone line answers on 5060, UDP and TCP.
    assert!(
        seen.contains("sip_udp=Some(0.0.0.0:5060)") && seen.contains("sip_tcp=Some(0.0.0.0:5060)"),
        "{seen}"
    );
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
    assert!(exit.success(), "{exit:?}: {rest}");
    assert!(rest.contains("SIGTERM received") && rest.contains("stopped"), "{rest}");
}

fn understand(input: &[u8], args: &[&str]) -> Output {
    use std::io::Write;
    let mut child = bin()
        .arg("understand")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn understand_prints_one_masked_contract_line_per_input_line() {
    let input = "where is my order four five seven one two\nmy card was stolen call me on 020 7946 0958\n\n我要转人工\n";
    let out = understand(input.as_bytes(), &["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 4, "one output per input line, blank included");
    for line in &lines {
        for field in ["text", "language", "intent", "confidence", "slots", "emotion", "sensitive"] {
            assert!(line.get(field).is_some(), "{field} missing: {line}");
        }
        for field in ["valence", "arousal", "label"] {
            assert!(line["emotion"].get(field).is_some(), "emotion.{field} missing: {line}");
        }
    }
    assert_eq!(lines[0]["intent"], "order_status");
    assert_eq!(lines[0]["slots"]["order_number"], "45712");
    assert_eq!(lines[1]["intent"], "account_security");
    assert_eq!(lines[1]["sensitive"], true);
    let masked = lines[1]["text"].as_str().unwrap();
    assert!(masked.contains("*******0958") && !masked.contains("7946"), "{masked}");
    assert_eq!(lines[2]["intent"], "out_of_scope");
    assert_eq!(lines[3]["intent"], "human_agent");
    assert_eq!(lines[3]["language"], "zh");
}

#[test]
fn understand_reports_a_non_utf8_line_and_keeps_going() {
    let out = understand(b"hello\n\xff\xfe bad\ngoodbye\n", &["--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["error"], "not UTF-8 text");
    assert_eq!(lines[2]["intent"], "goodbye");
    assert!(stderr(&out).contains("stdin line 2"), "{}", stderr(&out));
}

#[test]
fn check_pack_accepts_the_default_and_rejects_a_bad_pack_by_line() {
    let dir = scratch("packs");
    let out = run(bin().arg("print-default-pack"));
    assert!(out.status.success());
    let good = dir.join("default.toml");
    std::fs::write(&good, &out.stdout).unwrap();
    let out = run(bin().arg("check-pack").arg(&good));
    assert!(out.status.success(), "{}", stderr(&out));

    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(text.contains("15 intents"), "{text}");
    let bad = dir.join("bad.toml");
    let broken = String::from_utf8(run(bin().arg("print-default-pack")).stdout).unwrap().replacen(
        "name = \"human_agent\"",
        "name = \"Human Agent\"",
        1,
    );
    std::fs::write(&bad, broken).unwrap();
    assert_clean_failure(&run(bin().arg("check-pack").arg(&bad)), 2, "bad.toml, line");
}

#[test]
fn a_bad_pack_in_the_config_stops_start_up_with_its_line() {
    let dir = scratch("bad-pack-config");
    let pack = dir.join("pack.toml");
    std::fs::write(&pack, "[pack]\nname = \"x\"\nversion = \"1\"\nlanguages = [\"en\", \"fr\"]\n").unwrap();
    let config = dir.join("voicebotd.toml");
    std::fs::write(&config, format!("[nlu]\npack = {:?}\n", pack.display().to_string())).unwrap();
    let out = understand(b"hello\n", &["--config", config.to_str().unwrap()]);
    assert_clean_failure(&out, 2, "pack.toml, line 4");
}

/// A running daemon whose stderr lines arrive on a channel.
struct Daemon {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Daemon {
    fn start(config: &Path) -> Daemon {
        use std::io::BufRead;
        let mut child = bin()
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("VOICEBOTD_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines, seen: String::new() }
    }

    /// Waits (at most two minutes) for a line containing every needle.
    fn wait_for(&mut self, needles: &[&str]) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                    if needles.iter().all(|n| line.contains(n)) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line with {needles:?}; daemon said:\n{}", self.seen);
    }

    fn signal(&self, name: &str) {
        let status =
            Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }
}

#[test]
fn sighup_reloads_a_valid_pack_and_keeps_the_old_one_when_the_new_one_is_bad() {
    let dir = scratch("reload");
    let pack = dir.join("pack.toml");
    let default = String::from_utf8(run(bin().arg("print-default-pack")).stdout).unwrap();
    let with_version =
        |v: &str| default.replacen("version = \"2026.11.1\"", &format!("version = \"{v}\""), 1);
    assert!(with_version("7").contains("version = \"7\""), "the default pack's version line changed");
    std::fs::write(&pack, with_version("7")).unwrap();
    let config = dir.join("voicebotd.toml");
    // Ports and an outbox of our own: the defaults belong to the default-config test.
    let own = format!(
        "[sip]\nlisten_udp = \"127.0.0.1:0\"\nlisten_tcp = \"\"\n[http]\nlisten = \"\"\n[fleet]\noutbox = {:?}\n",
        dir.join("outbox.db").display().to_string()
    );
    std::fs::write(&config, format!("[nlu]\npack = {:?}\n{own}", pack.display().to_string())).unwrap();

    let mut daemon = Daemon::start(&config);
    daemon.wait_for(&["voicebotd ready"]);

    std::fs::write(&pack, with_version("8").replacen("[[intent]]", "[[intent]]\ncolour = \"red\"", 1))
        .unwrap();
    daemon.signal("HUP");
    let line = daemon.wait_for(&["knowledge pack rejected"]);
    assert!(line.contains("keeping=7") && line.contains("colour"), "{line}");

    std::fs::write(&pack, with_version("9")).unwrap();
    daemon.signal("HUP");
    let line = daemon.wait_for(&["knowledge pack reloaded"]);
    assert!(line.contains("version=9") && line.contains("previous=7"), "{line}");

    daemon.signal("TERM");
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", daemon.seen);
}

/// The conversation issue's example calls, as typed turns: each ends with the
/// right outcome and reason.
#[test]
fn simulate_text_scenarios_end_with_the_right_outcome() {
    let scenarios: [(&[&str], &str, Option<&str>); 5] = [
        (&["where is my order", "it's four five seven one two", "great, thanks, bye"], "resolved", None),
        (&["I want to speak to an agent"], "escalated", Some("requested")),
        (&["my card was stolen"], "escalated", Some("sensitive")),
        (
            &["purple monkey dishwasher", "the moon is made of cheese", "banana telephone seventeen"],
            "escalated",
            Some("repeated_failure"),
        ),
        (
            &["this is absolutely disgusting, your service is the worst I have ever had"],
            "escalated",
            Some("negative_emotion"),
        ),
    ];
    for (i, (turns, outcome, reason)) in scenarios.iter().enumerate() {
        let dir = scratch(&format!("text-{i}"));
        let out = run(bin().args(["simulate", "--text", "--json", "--reply-dir"]).arg(&dir).args(*turns));
        assert!(out.status.success(), "{turns:?}: {}", stderr(&out));
        let lines = json_lines(&out);
        let last = lines.last().expect("outcome line");
        assert_eq!(last["outcome"], *outcome, "{turns:?}: {last}");
        assert_eq!(last["reason"].as_str(), *reason, "{turns:?}: {last}");
        assert_eq!(
            last["ticket"].is_null(),
            reason.is_none(),
            "{turns:?}: a ticket exactly when handed over"
        );
    }
}
