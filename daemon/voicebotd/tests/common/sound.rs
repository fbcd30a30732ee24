//! A virtual sound card for tests, paced in real time, so that the kiosk's
//! real cpal/ALSA path runs without hardware.
//!
//! A private PulseAudio server (own runtime dir and unix socket, anonymous
//! auth, no D-Bus needed) runs two null sinks: `kiosk_caller`, into which the test plays
//! what the "caller" says, and `kiosk_speaker`, which the bot plays to. An
//! asoundrc exposes them to ALSA (so to cpal) as two named PCMs:
//! - [`MIC`] (`kiosk_mic`): capture from the caller sink's monitor;
//! - [`SPEAKER`] (`kiosk_speaker`): playback into the speaker sink.
//!
//! ALSA's own `file`/`null` plugins would need no server, but they are not
//! paced: a capture or playback over `null` runs as fast as the CPU allows,
//! which breaks real-time turn-taking. The null sinks run on the server's
//! clock, like a sound card (kept awake by a 10 ms recorder on each, since an
//! idle null sink sleeps in 2 s blocks).
//!
//! A child process (the daemon) is pointed at the card with [`VirtualSound::env`];
//! the test process itself with [`VirtualSound::export_env`]. The server dies
//! with the [`VirtualSound`], and also when the test process exits without
//! dropping it (it watches a pipe from this process).
//!
//! Tests are skipped, with a loud line, only when `pulseaudio` is not installed
//! and `CI` is unset; under CI a missing piece is a failure.
//!
//! Used from `daemon/voicebotd/tests` (`common::sound`) and from
//! `daemon/kiosk/tests` (`#[path]`), so it uses only `std`.

#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The ALSA PCM that hears what is played with [`VirtualSound::play_to_mic`].
pub const MIC: &str = "kiosk_mic";
/// The ALSA PCM whose output [`VirtualSound::record_speaker`] records.
pub const SPEAKER: &str = "kiosk_speaker";
/// The PulseAudio sink behind [`MIC`] (what the caller "says" goes here).
pub const CALLER_SINK: &str = "kiosk_caller";
/// The PulseAudio sink behind [`SPEAKER`].
pub const SPEAKER_SINK: &str = "kiosk_speaker";

const PACKAGES: &str = "apt-get install pulseaudio pulseaudio-utils libasound2-plugins";

/// A running private PulseAudio server plus the asoundrc that names its sinks.
pub struct VirtualSound {
    dir: PathBuf,
    /// `sh` watching our pipe; it kills the server when the pipe closes.
    guard: Child,
    /// Our end of that pipe; dropping it stops the server.
    pipe: Option<ChildStdin>,
    socket: PathBuf,
    alsa_config_path: String,
    /// Low-latency recorders that keep each null sink awake (see `keep_awake`).
    keepers: Vec<Child>,
}

impl VirtualSound {
    /// Starts the server and writes the asoundrc under a fresh scratch dir.
    ///
    /// `None`, after a loud SKIPPED line, when `pulseaudio` is not installed
    /// and `CI` is unset. Panics (with what to install) in every other failure.
    pub fn start(tag: &str) -> Option<VirtualSound> {
        let Some(pulseaudio) = find_program("pulseaudio") else {
            if std::env::var_os("CI").is_some() {
                panic!("pulseaudio is not installed, and CI is set: the kiosk tests need it ({PACKAGES})");
            }
            eprintln!("\n######## SKIPPED: pulseaudio is not installed ({PACKAGES}) ########\n");
            return None;
        };
        for tool in ["pactl", "pacat", "paplay", "parecord"] {
            assert!(find_program(tool).is_some(), "{tool} is not installed ({PACKAGES})");
        }
        assert!(
            alsa_pulse_plugin_installed(),
            "ALSA's PulseAudio plugin (libasound_module_pcm_pulse.so) is not installed ({PACKAGES})"
        );
        let system_conf = ["/usr/share/alsa/alsa.conf", "/etc/alsa/alsa.conf"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("ALSA's alsa.conf not found (apt-get install libasound2)");

        let dir = std::env::temp_dir().join(format!("voicebotd-sound-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["run", "state", "home"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let socket = dir.join("run/native");
        std::fs::write(dir.join("server.pa"), server_script(&socket)).unwrap();
        let asoundrc = dir.join("asoundrc");
        std::fs::write(&asoundrc, asoundrc_text(&socket)).unwrap();

        // The guard shell starts the server, then waits for our pipe to close
        // (drop, or this process exiting for any reason), stops it and removes the dir.
        let log = std::fs::File::create(dir.join("pulseaudio.log")).unwrap();
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" </dev/null & pid=$!; echo $pid > "$PA_DIR/pulseaudio.pid"; cat >/dev/null; kill $pid 2>/dev/null; wait $pid; rm -rf "$PA_DIR""#)
            .arg("sh")
            .arg(&pulseaudio)
            .args(["-n", "-F"])
            .arg(dir.join("server.pa"))
            .args([
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--system=no",
                "--realtime=no",
                "--high-priority=no",
                "--log-target=stderr",
                "--log-level=warning",
            ])
            .env("PA_DIR", &dir)
            .env("HOME", dir.join("home"))
            .env("XDG_CONFIG_HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("PULSE_RUNTIME_PATH", dir.join("run"))
            .env("PULSE_STATE_PATH", dir.join("state"))
            .env_remove("PULSE_SERVER")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", pulseaudio.display()));
        let pipe = guard.stdin.take();
        let mut sound = VirtualSound {
            alsa_config_path: format!("{system_conf}:{}", asoundrc.display()),
            dir,
            guard,
            pipe,
            socket,
            keepers: Vec::new(),
        };
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            if sound.socket.exists() && sound.pactl(&["info"]).is_ok() {
                break;
            }
            assert!(Instant::now() < until, "pulseaudio did not start:\n{}", sound.server_log());
            std::thread::sleep(Duration::from_millis(50));
        }
        sound.keep_awake();
        Some(sound)
    }

    /// An idle null sink sleeps in blocks of up to 2 s, so a stream that
    /// connects to it (or to its monitor) would first wait that long for its
    /// first period. A 10 ms recorder on each monitor keeps both sinks
    /// running with short blocks, like a sound card; this returns once both
    /// recorders receive audio, i.e. once the sinks are awake. The recorders
    /// exit with the server.
    fn keep_awake(&mut self) {
        let (awake_tx, awake_rx) = std::sync::mpsc::channel();
        for sink in [CALLER_SINK, SPEAKER_SINK] {
            let mut keeper = self
                .tool("pacat")
                .args(["--record", "--raw", "--latency-msec=10"])
                .arg(format!("--device={sink}.monitor"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start pacat: {e}"));
            let mut audio = keeper.stdout.take().unwrap();
            let awake = awake_tx.clone();
            std::thread::spawn(move || {
                let mut first = [0u8; 1];
                if std::io::Read::read_exact(&mut audio, &mut first).is_ok() {
                    let _ = awake.send(());
                }
                let _ = std::io::copy(&mut audio, &mut std::io::sink());
            });
            self.keepers.push(keeper);
        }
        for _ in 0..2 {
            let woke = awake_rx.recv_timeout(Duration::from_secs(10));
            assert!(woke.is_ok(), "the null sinks did not start:\n{}", self.server_log());
        }
    }

    /// The environment a process needs to use the card: add these to a
    /// child's `Command` (the daemon), or see [`VirtualSound::export_env`].
    /// - `ALSA_CONFIG_PATH`: the system's alsa.conf, then this card's asoundrc;
    /// - `PULSE_SERVER`, `PULSE_COOKIE`: this server (so ALSA's `default`/`pulse`
    ///   PCMs use it too, and no client writes a cookie into `$HOME`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ALSA_CONFIG_PATH", self.alsa_config_path.clone()),
            ("PULSE_SERVER", self.server()),
            ("PULSE_COOKIE", self.dir.join("cookie").display().to_string()),
        ]
    }

    /// Sets [`VirtualSound::env`] in this process, for in-process cpal.
    /// ALSA reads its configuration once per process, so call it before the
    /// first ALSA use.
    ///
    /// # Safety
    /// No other thread may read or write the environment meanwhile (C code
    /// such as alsa-lib reads it unlocked): call it before starting threads
    /// that touch audio, e.g. in a `OnceLock` initialiser that every test of
    /// the binary goes through first.
    pub unsafe fn export_env(&self) {
        for (key, value) in self.env() {
            // SAFETY: the caller guarantees no concurrent environment access.
            unsafe { std::env::set_var(key, value) };
        }
    }

    /// The scratch dir (asoundrc, server log); a good place for recordings.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `unix:/path/to/socket`.
    pub fn server(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// Starts playing a WAV into the caller sink: [`MIC`] hears it, in real time.
    pub fn play_to_mic(&self, wav: &Path) -> Child {
        assert!(wav.exists(), "{}: no such file", wav.display());
        self.tool("paplay")
            .arg(format!("--device={CALLER_SINK}"))
            .arg(wav)
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Plays a WAV into the caller sink and waits until it has been played.
    pub fn say(&self, wav: &Path) {
        let status = self.play_to_mic(wav).wait().unwrap();
        assert!(status.success(), "paplay {} failed: {status}", wav.display());
    }

    /// Starts recording what is played to [`SPEAKER`] into a 16 kHz mono
    /// 16-bit WAV at `out`; [`Recording::finish`] stops it.
    pub fn record_speaker(&self, out: &Path) -> Recording {
        let child = self
            .tool("parecord")
            .arg(format!("--device={SPEAKER_SINK}.monitor"))
            .args([
                "--rate=16000",
                "--channels=1",
                "--format=s16le",
                "--file-format=wav",
                "--latency-msec=20",
            ])
            .arg(out)
            .spawn()
            .unwrap();
        // Wait until the server has the recording stream, so nothing played
        // after this returns is missed.
        let until = Instant::now() + Duration::from_secs(10);
        while !self.pactl(&["list", "source-outputs"]).unwrap_or_default().contains("parecord") {
            assert!(Instant::now() < until, "parecord did not connect:\n{}", self.server_log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Recording { child: Some(child), path: out.to_owned() }
    }

    /// Runs `pactl` against this server; its stdout, or its stderr as the error.
    pub fn pactl(&self, args: &[&str]) -> Result<String, String> {
        let out = self.tool("pactl").args(args).output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// What the server has logged (warnings and errors).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pulseaudio.log")).unwrap_or_default()
    }

    fn tool(&self, name: &str) -> Command {
        let mut command = Command::new(name);
        command.arg(format!("--server={}", self.server()));
        command.env("PULSE_COOKIE", self.dir.join("cookie"));
        command
    }
}

impl Drop for VirtualSound {
    fn drop(&mut self) {
        for keeper in &mut self.keepers {
            let _ = keeper.kill();
            let _ = keeper.wait();
        }
        // Closing the pipe makes the guard stop the server.
        drop(self.pipe.take());
        let until = Instant::now() + Duration::from_secs(5);
        while matches!(self.guard.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.guard.try_wait(), Ok(None)) {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join("pulseaudio.pid")) {
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
            }
            let _ = self.guard.kill();
            let _ = self.guard.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `parecord` of the speaker sink.
pub struct Recording {
    child: Option<Child>,
    path: PathBuf,
}

impl Recording {
    /// Stops recording (SIGINT, so the WAV header is completed) and returns the file.
    pub fn finish(mut self) -> PathBuf {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let until = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.path.clone()
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn server_script(socket: &Path) -> String {
    let mut s = Vec::new();
    writeln!(s, "load-module module-native-protocol-unix socket={} auth-anonymous=1", socket.display())
        .unwrap();
    for (sink, what) in [(CALLER_SINK, "Caller"), (SPEAKER_SINK, "Speaker")] {
        writeln!(
            s,
            "load-module module-null-sink sink_name={sink} rate=48000 channels=2 sink_properties=device.description={what}"
        )
        .unwrap();
    }
    writeln!(s, "set-default-sink {SPEAKER_SINK}").unwrap();
    writeln!(s, "set-default-source {CALLER_SINK}.monitor").unwrap();
    String::from_utf8(s).unwrap()
}

/// The PCMs. Each named PCM is an `asym` over the pulse plugin so that it
/// opens in one direction only (the other fails cleanly), and carries a hint
/// so that ALSA's device list, and so cpal, shows it.
fn asoundrc_text(socket: &Path) -> String {
    let server = format!("unix:{}", socket.display());
    format!(
        r#"# The kiosk tests' virtual sound card (daemon/voicebotd/tests/common/sound.rs).
pcm.{MIC}_source {{
    type pulse
    server "{server}"
    device "{CALLER_SINK}.monitor"
    hint.show off
}}
pcm.{MIC} {{
    type asym
    capture.pcm "{MIC}_source"
    hint {{
        show on
        description "Kiosk test microphone (hears the caller sink of the test's PulseAudio server)"
    }}
}}
pcm.{SPEAKER}_sink {{
    type pulse
    server "{server}"
    device "{SPEAKER_SINK}"
    hint.show off
}}
pcm.{SPEAKER} {{
    type asym
    playback.pcm "{SPEAKER}_sink"
    hint {{
        show on
        description "Kiosk test speaker (plays into the speaker sink of the test's PulseAudio server)"
    }}
}}
"#
    )
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/bin", "/usr/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn alsa_pulse_plugin_installed() -> bool {
    let mut dirs: Vec<PathBuf> = vec!["/usr/lib/alsa-lib".into(), "/usr/lib64/alsa-lib".into()];
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(entries.flatten().map(|e| e.path().join("alsa-lib")));
    }
    dirs.iter().any(|d| d.join("libasound_module_pcm_pulse.so").exists())
}
