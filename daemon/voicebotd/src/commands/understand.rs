//! `voicebotd understand [--json] [--lang auto|en|zh]`: one utterance per
//! stdin line in, one result per line out (the same number of lines, in
//! order, so batch scripts can zip them). Models load once.
//!
//! Output has PII masked. A line that is not UTF-8 is reported on stderr by
//! number and answered with an `{"error"}` object; the rest still run, and the
//! exit code is 3 if any line was bad.

use std::io::{BufRead, Write};

use serde::Serialize;
use voicebot_core::config::Config;
use voicebot_core::language::detect_text_language;
use voicebot_core::{Language, LanguageChoice};
use voicebot_engines::loader::{self, EngineNeeds};

use crate::error::CliError;
use crate::nlu::load_analyzer;

#[derive(Serialize)]
struct LineError<'a> {
    error: &'a str,
    line: usize,
}

pub(crate) fn run(config: &Config, json: bool, lang: Option<&str>) -> Result<(), CliError> {
    let choice = super::language_choice(lang, &LanguageChoice::Auto)?;
    let engines = loader::load(config, EngineNeeds { embedder: true, ..Default::default() })?;
    let analyzer = load_analyzer(config, &engines)?;
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut bad_lines = 0usize;
    for (index, line) in stdin.split(b'\n').enumerate() {
        let number = index + 1;
        let bytes = line.map_err(|e| CliError::Failed(format!("cannot read stdin: {e}")))?;
        let Ok(text) = String::from_utf8(bytes) else {
            bad_lines += 1;
            eprintln!("voicebotd: error: stdin line {number}: not UTF-8 text; skipped");
            let out = serde_json::to_string(&LineError { error: "not UTF-8 text", line: number });
            writeln!(stdout, "{}", out.map_err(|e| CliError::Failed(e.to_string()))?).map_err(write_err)?;
            continue;
        };
        let text = text.trim_end_matches('\r').trim();
        let language = match &choice {
            LanguageChoice::Fixed(l) => l.clone(),
            LanguageChoice::Auto => detect_text_language(text),
        };
        let analysis = analyzer.analyze(text, &language, None, None)?.masked();
        let out = if json {
            serde_json::to_string(&analysis).map_err(|e| CliError::Failed(e.to_string()))?
        } else {
            human_line(&analysis, &language)
        };
        writeln!(stdout, "{out}").map_err(write_err)?;
        stdout.flush().map_err(write_err)?;
    }
    if bad_lines > 0 {
        return Err(CliError::BadInput(format!("{bad_lines} stdin line(s) were not UTF-8 text")));
    }
    Ok(())
}

fn write_err(e: std::io::Error) -> CliError {
    CliError::Failed(format!("cannot write stdout: {e}"))
}

fn human_line(a: &voicebot_understanding::analysis::MaskedAnalysis, language: &Language) -> String {
    let slots: Vec<String> = a.slots.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "[{language}] {} ({:.2}){} | emotion {} valence {:+} | slots: {} | {:?}",
        a.intent,
        a.confidence,
        if a.sensitive { " SENSITIVE" } else { "" },
        a.emotion.label.as_str(),
        a.emotion.valence,
        if slots.is_empty() { "-".to_owned() } else { slots.join(", ") },
        a.text,
    )
}
