//! WAV decoding and encoding with errors an operator can act on.

use std::fs;
use std::io::{Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavReader, WavSpec, WavWriter};

use crate::{Audio, AudioError};

/// Reads a WAV file of any rate, width and channel count as mono.
///
/// # Errors
/// A missing or unreadable file, a non-WAV file, a truncated file, an
/// unsupported encoding, or a file with no samples.
pub fn read_wav(path: &Path) -> Result<Audio, AudioError> {
    let bytes = fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => AudioError::NotFound { path: path.to_path_buf() },
        _ => AudioError::Read { path: path.to_path_buf(), source },
    })?;
    decode_wav(Cursor::new(bytes), path)
}

/// Decodes WAV data; `origin` names it in errors.
///
/// # Errors
/// As [`read_wav`].
pub fn decode_wav<R: Read + Seek>(reader: R, origin: &Path) -> Result<Audio, AudioError> {
    let path = || origin.to_path_buf();
    let reader = WavReader::new(reader).map_err(|e| classify_open_error(e, path()))?;
    let spec = reader.spec();
    if spec.channels == 0 {
        return Err(AudioError::Unsupported { path: path(), reason: "0 channels".into() });
    }
    if spec.sample_rate < 1000 || spec.sample_rate > 384_000 {
        let reason = format!("sample rate {} Hz", spec.sample_rate);
        return Err(AudioError::Unsupported { path: path(), reason });
    }
    let expected = u64::from(reader.len());
    let interleaved = read_samples(reader, spec, origin, expected)?;
    if interleaved.is_empty() {
        return Err(AudioError::Empty { path: path() });
    }
    Ok(Audio { samples: downmix(&interleaved, spec.channels), sample_rate: spec.sample_rate })
}

fn classify_open_error(error: hound::Error, path: PathBuf) -> AudioError {
    match error {
        // The data is already in memory, so a read error here means it ended early.
        hound::Error::IoError(_) => AudioError::NotWav { path, reason: "file ends inside the header".into() },
        hound::Error::FormatError(reason) => AudioError::NotWav { path, reason: reason.into() },
        hound::Error::Unsupported => {
            AudioError::Unsupported { path, reason: "encoding other than PCM or float".into() }
        }
        other => AudioError::Unsupported { path, reason: other.to_string() },
    }
}

fn read_samples<R: Read>(
    mut reader: WavReader<R>,
    spec: WavSpec,
    origin: &Path,
    expected: u64,
) -> Result<Vec<f32>, AudioError> {
    let mut out = Vec::with_capacity(expected.min(1 << 26) as usize);
    let truncated =
        |actual: usize| AudioError::Truncated { path: origin.to_path_buf(), expected, actual: actual as u64 };
    match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Float, 32) => {
            for s in reader.samples::<f32>() {
                out.push(s.map_err(|_| truncated(out.len()))?);
            }
        }
        (SampleFormat::Int, bits @ 8..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            for s in reader.samples::<i32>() {
                out.push(s.map_err(|_| truncated(out.len()))? as f32 * scale);
            }
        }
        (format, bits) => {
            let reason = format!("{bits}-bit {format:?} samples");
            return Err(AudioError::Unsupported { path: origin.to_path_buf(), reason });
        }
    }
    if (out.len() as u64) < expected {
        return Err(truncated(out.len()));
    }
    Ok(out)
}

fn downmix(interleaved: &[f32], channels: u16) -> Vec<f32> {
    if channels == 1 {
        return interleaved.to_vec();
    }
    let n = f32::from(channels);
    interleaved.chunks_exact(usize::from(channels)).map(|f| f.iter().sum::<f32>() / n).collect()
}

/// Encodes mono audio as 16-bit PCM WAV bytes.
pub fn encode_wav(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    let spec = WavSpec { channels: 1, sample_rate, bits_per_sample: 16, sample_format: SampleFormat::Int };
    let mut cursor = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    {
        // Writing to memory cannot fail short of allocation failure.
        let mut writer = WavWriter::new(&mut cursor, spec).expect("in-memory WAV header");
        for &s in samples {
            let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            writer.write_sample(v).expect("in-memory WAV sample");
        }
        writer.finalize().expect("in-memory WAV finalize");
    }
    cursor.into_inner()
}

/// Writes mono audio as a 16-bit PCM WAV file, atomically: a reader never sees
/// half a file, and a failed write (a full disk) leaves no file behind.
///
/// # Errors
/// Fails when the directory is missing or unwritable, or the disk is full.
pub fn write_wav(path: &Path, samples: &[f32], sample_rate: u32) -> Result<(), AudioError> {
    let bytes = encode_wav(samples, sample_rate);
    let tmp = path.with_extension("wav.partial");
    let err = |source| AudioError::Write { path: path.to_path_buf(), source };
    if let Err(e) = fs::write(&tmp, &bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        err(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> &'static Path {
        Path::new("call.wav")
    }

    fn tone(rate: u32, seconds: f32) -> Vec<f32> {
        let n = (rate as f32 * seconds) as usize;
        (0..n).map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.5).collect()
    }

    #[test]
    fn round_trips_mono_16_bit() {
        let samples = tone(8000, 0.5);
        let audio = decode_wav(Cursor::new(encode_wav(&samples, 8000)), origin()).unwrap();
        assert_eq!(audio.sample_rate, 8000);
        assert_eq!(audio.samples.len(), samples.len());
        let max_err = audio.samples.iter().zip(&samples).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(max_err < 1e-4, "{max_err}");
    }

    #[test]
    fn stereo_float_is_downmixed() {
        let spec = WavSpec {
            channels: 2,
            sample_rate: 48_000,
            bits_per_sample: 32,
            sample_format: SampleFormat::Float,
        };
        let mut cursor = Cursor::new(Vec::new());
        let mut w = WavWriter::new(&mut cursor, spec).unwrap();
        for _ in 0..100 {
            w.write_sample(0.5f32).unwrap();
            w.write_sample(-0.1f32).unwrap();
        }
        w.finalize().unwrap();
        cursor.set_position(0);
        let audio = decode_wav(cursor, origin()).unwrap();
        assert_eq!(audio.samples.len(), 100);
        assert!((audio.samples[0] - 0.2).abs() < 1e-6);
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_it() {
        let mut bytes = encode_wav(&tone(16_000, 1.0), 16_000);
        bytes.truncate(bytes.len() / 2);
        let err = decode_wav(Cursor::new(bytes), origin()).unwrap_err();
        assert!(matches!(err, AudioError::Truncated { .. }), "{err}");
        assert!(err.to_string().starts_with("call.wav: truncated"), "{err}");
    }

    #[test]
    fn a_non_wav_file_is_rejected() {
        let err = decode_wav(Cursor::new(b"ID3 this is an mp3 really".to_vec()), origin()).unwrap_err();
        assert!(matches!(err, AudioError::NotWav { .. }), "{err}");
    }

    #[test]
    fn a_header_cut_short_is_rejected() {
        let bytes = encode_wav(&tone(16_000, 0.1), 16_000);
        let err = decode_wav(Cursor::new(bytes[..20].to_vec()), origin()).unwrap_err();
        assert!(matches!(err, AudioError::NotWav { .. }), "{err}");
    }

    #[test]
    fn a_zero_second_file_is_rejected() {
        let err = decode_wav(Cursor::new(encode_wav(&[], 16_000)), origin()).unwrap_err();
        assert_eq!(err.to_string(), "call.wav: contains no audio (0 seconds)");
    }

    #[test]
    fn a_missing_file_says_so() {
        let err = read_wav(Path::new("/nonexistent/x.wav")).unwrap_err();
        assert_eq!(err.to_string(), "/nonexistent/x.wav: no such file");
    }

    #[test]
    fn writing_into_a_missing_directory_fails_cleanly() {
        let err = write_wav(Path::new("/nonexistent/dir/out.wav"), &[0.0; 10], 16_000).unwrap_err();
        assert!(matches!(err, AudioError::Write { .. }), "{err}");
    }
}
