//! The faster-whisper peer: `bench/fw_server.py` as a child process, asked
//! for one clip at a time so it interleaves with voicebotd clip by clip.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::stats::THREADS;

#[derive(Debug, Clone)]
pub(crate) struct FwArgs {
    pub(crate) python: PathBuf,
    pub(crate) model: PathBuf,
    pub(crate) script: PathBuf,
}

pub(crate) struct FasterWhisper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The server's hello: versions and settings.
    pub(crate) info: Value,
}

impl FasterWhisper {
    pub(crate) fn start(args: &FwArgs) -> Result<FasterWhisper> {
        let mut child = Command::new(&args.python)
            .arg(&args.script)
            .arg("--model-dir")
            .arg(&args.model)
            .arg("--threads")
            .arg(THREADS.to_string())
            .arg("--compute-type")
            .arg("int8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {}", args.python.display()))?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("child stdout")?);
        let mut fw = FasterWhisper { child, stdin, stdout, info: Value::Null };
        let hello = fw.read_line()?;
        if hello.get("ready") != Some(&Value::Bool(true)) {
            bail!("faster-whisper peer did not start: {hello}");
        }
        fw.info = hello;
        Ok(fw)
    }

    fn read_line(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("faster-whisper peer exited");
        }
        Ok(serde_json::from_str(&line)?)
    }

    /// Transcribes the raw 16 kHz f32 file; returns the text and the peer's
    /// own in-process time for the call.
    pub(crate) fn transcribe(&mut self, id: &str, pcm16k_f32: &Path) -> Result<(String, f64)> {
        let request = json!({ "id": id, "path": pcm16k_f32 });
        writeln!(self.stdin, "{request}")?;
        self.stdin.flush()?;
        let reply = self.read_line()?;
        let text = reply["text"].as_str().context("reply text")?.to_owned();
        let seconds = reply["seconds"].as_f64().context("reply seconds")?;
        Ok((text, seconds))
    }
}

impl Drop for FasterWhisper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
