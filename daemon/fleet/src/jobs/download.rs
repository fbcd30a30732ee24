//! Fetching a model file into the staging area, with resume.
//!
//! Blocking code for the job thread. The partial file is named by the
//! expected sha256, so an interrupted download — a dropped connection in this
//! job, or a job re-issued after a restart — continues where it stopped with
//! an HTTP `Range` request instead of starting over. A server that ignores the
//! range (answers 200) is read from the start. Nothing is trusted until the
//! whole file has the expected size and sha256; a file that does not is
//! deleted, so the next try starts clean.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Tries per download (a dropped connection resumes in the next try).
pub const ATTEMPTS: u32 = 5;
const CHUNK: usize = 1 << 16;

/// Where the bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `http://` or `https://`.
    Http(String),
    /// `file://…` or a path (relative paths are relative to the model directory).
    File(PathBuf),
}

impl Source {
    /// Parses a job's `url`.
    ///
    /// # Errors
    /// An unsupported scheme.
    pub fn parse(url: &str, model_dir: &Path) -> Result<Source, String> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Source::Http(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Source::File(PathBuf::from(path)));
        }
        if url.contains("://") {
            return Err(format!("unsupported url {url:?}: use http://, https://, file:// or a path"));
        }
        let path = Path::new(url);
        Ok(Source::File(if path.is_absolute() { path.to_path_buf() } else { model_dir.join(path) }))
    }
}

/// A download's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Bytes received in this job (less than the size after a resume).
    pub received: u64,
    /// Offsets at which a try resumed a partial file.
    pub resumed_at: Vec<u64>,
    pub attempts: u32,
}

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot write the staging file {path}: {source}")]
    Staging { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Local { path: PathBuf, source: io::Error },
    #[error("{url}: {reason} (after {attempts} tries; the partial file is kept for a retry)")]
    Http { url: String, reason: String, attempts: u32 },
    #[error("the source has {actual} bytes, the job says {expected}")]
    WrongSize { expected: u64, actual: u64 },
    #[error("sha256 mismatch: the job says {expected}, the downloaded file has {actual}; it was deleted")]
    WrongHash { expected: String, actual: String },
}

/// Fetches `source` into `part` until it has `size` bytes, then checks its
/// sha256. `progress(have, size)` is called as bytes arrive.
///
/// # Errors
/// See [`DownloadError`]. A wrong size or hash deletes `part`.
pub fn fetch(
    source: &Source,
    part: &Path,
    size: u64,
    sha256: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Fetched, DownloadError> {
    let staging = |source| DownloadError::Staging { path: part.to_path_buf(), source };
    if let Some(dir) = part.parent() {
        std::fs::create_dir_all(dir).map_err(staging)?;
    }
    let mut fetched = Fetched { received: 0, resumed_at: vec![], attempts: 0 };
    match source {
        Source::File(path) => copy_local(path, part, size, &mut fetched, progress)?,
        Source::Http(url) => http(url, part, size, &mut fetched, progress)?,
    }
    let actual = voicebot_core::manifest::sha256_file(part).map_err(staging)?;
    if !actual.eq_ignore_ascii_case(sha256) {
        let _ = std::fs::remove_file(part);
        return Err(DownloadError::WrongHash { expected: sha256.to_owned(), actual });
    }
    Ok(fetched)
}

/// Opens `part` for appending; a file longer than `size` is garbage and restarts.
fn open_part(part: &Path, size: u64) -> io::Result<(File, u64)> {
    let mut file = OpenOptions::new().create(true).read(true).write(true).truncate(false).open(part)?;
    let mut have = file.metadata()?.len();
    if have > size {
        file.set_len(0)?;
        have = 0;
    }
    file.seek(SeekFrom::Start(have))?;
    Ok((file, have))
}

fn copy_local(
    path: &Path,
    part: &Path,
    size: u64,
    fetched: &mut Fetched,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), DownloadError> {
    let local = |source| DownloadError::Local { path: path.to_path_buf(), source };
    let staging = |source| DownloadError::Staging { path: part.to_path_buf(), source };
    let mut src = File::open(path).map_err(local)?;
    let actual = src.metadata().map_err(local)?.len();
    if actual != size {
        return Err(DownloadError::WrongSize { expected: size, actual });
    }
    let (mut dst, have) = open_part(part, size).map_err(staging)?;
    fetched.attempts = 1;
    if have > 0 {
        fetched.resumed_at.push(have);
    }
    src.seek(SeekFrom::Start(have)).map_err(local)?;
    let copied = copy_body(&mut src, &mut dst, size - have, have, size, progress)
        .map_err(|e| e.into_download(path, part, size))?;
    fetched.received = copied;
    dst.sync_all().map_err(staging)
}

/// An error while copying a body: reading (retryable) or writing (not).
enum CopyError {
    Read(io::Error),
    Write(io::Error),
    TooLong,
}

impl CopyError {
    fn into_download(self, src: &Path, part: &Path, size: u64) -> DownloadError {
        match self {
            CopyError::Read(source) => DownloadError::Local { path: src.to_path_buf(), source },
            CopyError::Write(source) => DownloadError::Staging { path: part.to_path_buf(), source },
            // The file grew while it was copied.
            CopyError::TooLong => DownloadError::WrongSize { expected: size, actual: size + 1 },
        }
    }
}

/// Copies up to `want` bytes; more than `want` is an error (the size is part of the job).
fn copy_body(
    src: &mut dyn Read,
    dst: &mut File,
    want: u64,
    start: u64,
    size: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<u64, CopyError> {
    let mut buf = vec![0u8; CHUNK];
    let mut copied = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Keep what arrived: the next try resumes after it.
                let _ = dst.sync_data();
                return Err(CopyError::Read(e));
            }
        };
        if copied + n as u64 > want {
            return Err(CopyError::TooLong);
        }
        dst.write_all(&buf[..n]).map_err(CopyError::Write)?;
        copied += n as u64;
        progress(start + copied, size);
    }
}

fn http(
    url: &str,
    part: &Path,
    size: u64,
    fetched: &mut Fetched,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), DownloadError> {
    let staging = |source| DownloadError::Staging { path: part.to_path_buf(), source };
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut last_error = String::new();
    for attempt in 1..=ATTEMPTS {
        fetched.attempts = attempt;
        let (mut file, have) = open_part(part, size).map_err(staging)?;
        if have == size {
            return file.sync_all().map_err(staging);
        }
        if attempt > 1 {
            std::thread::sleep(Duration::from_millis(250 * u64::from(1u32 << (attempt - 2).min(4))));
        }
        let mut request = agent.get(url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let mut response = match request.call() {
            Ok(r) => r,
            Err(e) => {
                last_error = e.to_string();
                tracing::warn!(%url, attempt, error = %last_error, "model download: request failed");
                continue;
            }
        };
        let status = response.status().as_u16();
        let start = match status {
            206 if have > 0 && content_range_start(&response) == Some(have) => {
                fetched.resumed_at.push(have);
                have
            }
            200 | 206 => {
                // A full body (the server ignored or mangled the range): start over.
                file.set_len(0).map_err(staging)?;
                file.seek(SeekFrom::Start(0)).map_err(staging)?;
                0
            }
            416 => {
                // Our partial file does not fit the server's: drop it and retry.
                file.set_len(0).map_err(staging)?;
                last_error = "the server refused the resume range".into();
                continue;
            }
            code => {
                last_error = format!("HTTP {code}");
                if (400..500).contains(&code) && code != 408 && code != 429 {
                    break;
                }
                continue;
            }
        };
        let mut body = response.body_mut().as_reader();
        match copy_body(&mut body, &mut file, size - start, start, size, progress) {
            Ok(n) => {
                fetched.received += n;
                file.sync_all().map_err(staging)?;
                let got = start + n;
                if got == size {
                    return Ok(());
                }
                last_error = format!("the connection closed after {got} of {size} bytes");
            }
            Err(CopyError::Read(e)) => {
                let got = file.metadata().map(|m| m.len()).unwrap_or(start);
                fetched.received += got.saturating_sub(start);
                last_error = format!("the connection failed after {got} of {size} bytes: {e}");
            }
            Err(CopyError::Write(source)) => return Err(staging(source)),
            Err(CopyError::TooLong) => {
                let _ = std::fs::remove_file(part);
                return Err(DownloadError::WrongSize { expected: size, actual: size + 1 });
            }
        }
        tracing::warn!(%url, attempt, error = %last_error, "model download interrupted; resuming");
    }
    Err(DownloadError::Http { url: url.to_owned(), reason: last_error, attempts: fetched.attempts })
}

/// The first byte of a `Content-Range: bytes a-b/n` header.
fn content_range_start(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        let dir = Path::new("/models");
        assert_eq!(Source::parse("https://h/x.bin", dir), Ok(Source::Http("https://h/x.bin".into())));
        assert_eq!(Source::parse("file:///tmp/x.bin", dir), Ok(Source::File("/tmp/x.bin".into())));
        assert_eq!(Source::parse("/tmp/x.bin", dir), Ok(Source::File("/tmp/x.bin".into())));
        assert_eq!(Source::parse("up/x.bin", dir), Ok(Source::File("/models/up/x.bin".into())));
        assert!(Source::parse("ftp://h/x.bin", dir).unwrap_err().contains("unsupported"));
    }

    fn sha(bytes: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn a_local_copy_resumes_a_partial_file_and_checks_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let src = dir.path().join("src.bin");
        std::fs::write(&src, &content).unwrap();
        let part = dir.path().join("staging/x.part");
        std::fs::create_dir_all(part.parent().unwrap()).unwrap();
        std::fs::write(&part, &content[..70_000]).unwrap();
        let got =
            fetch(&Source::File(src), &part, content.len() as u64, &sha(&content), &mut |_, _| {}).unwrap();
        assert_eq!(got.resumed_at, [70_000]);
        assert_eq!(got.received, 130_000);
        assert_eq!(std::fs::read(&part).unwrap(), content);
    }

    #[test]
    fn a_wrong_hash_deletes_the_staged_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        std::fs::write(&src, b"model bytes").unwrap();
        let part = dir.path().join("x.part");
        let err = fetch(&Source::File(src), &part, 11, &sha(b"other bytes"), &mut |_, _| {}).unwrap_err();
        assert!(matches!(err, DownloadError::WrongHash { .. }), "{err}");
        assert!(!part.exists());
    }

    #[test]
    fn a_local_file_of_the_wrong_size_is_refused_before_copying() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        std::fs::write(&src, b"model bytes").unwrap();
        let part = dir.path().join("x.part");
        let err = fetch(&Source::File(src), &part, 12, &sha(b"model bytes"), &mut |_, _| {}).unwrap_err();
        assert!(matches!(err, DownloadError::WrongSize { expected: 12, actual: 11 }), "{err}");
    }
}
