//! Uploaded recordings (an enterprise's 彩铃 sent through the admin API) made into what
//! the network carries: a WAV or MP3 file of whatever rate and channels the editor
//! produced becomes 8 kHz mono 16-bit PCM, the form sihai stores and plays.
//!
//! The conversion is the one the daemon applies to prompt files ([`crate::wav`]: the
//! channels averaged, then [`crate::resample`]'s windowed-sinc low-pass, so nothing
//! above 4 kHz folds back into the voice band); MP3 is decoded by symphonia first.
//! Converting once at upload means the stored audio is exactly what callers hear, the
//! portal can play it back as is, and loading a prompt costs no resampling.
//!
//! What is refused, each with a message for the person uploading: bytes that are
//! neither WAV nor MP3, a file that is damaged, audio with no samples, and audio longer
//! than [`MAX_UPLOAD_SECONDS`] (a ringback loops; ten minutes is far more than any
//! prompt needs, and it bounds the memory and time one upload costs). Pure: no I/O.

use std::io::Cursor;

use thiserror::Error;

use crate::resample::resample;
use crate::tone::SAMPLE_RATE;
use crate::wav::{Audio, WavError, decode_wav};

/// The longest recording accepted: 10 minutes.
pub const MAX_UPLOAD_SECONDS: u32 = 600;

/// The largest WAV file [`convert_upload`] parses: 384 kHz, 32-bit stereo for ten
/// minutes would be larger, but no caller sends a body that size (the API's own limit
/// is lower); this only keeps the parser's promise of a bound.
const MAX_WAV_BYTES: usize = 512 * 1024 * 1024;

/// The kinds of file an upload may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UploadFormat {
    /// RIFF/WAVE, of any encoding [`crate::wav`] reads.
    Wav,
    /// MPEG-1/2 audio layer III.
    Mp3,
}

impl UploadFormat {
    /// The format a `Content-Type` names (`audio/wav`, `audio/x-wav`, `audio/wave`,
    /// `audio/vnd.wave`, `audio/mpeg`, `audio/mp3`), parameters ignored; `None` for
    /// any other type.
    pub fn from_media_type(media_type: &str) -> Option<UploadFormat> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => {
                Some(UploadFormat::Wav)
            }
            "audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg-3" => {
                Some(UploadFormat::Mp3)
            }
            _ => None,
        }
    }

    /// The format the first bytes show: a RIFF/WAVE header, or an ID3v2 tag or an MPEG
    /// audio frame header (11 sync bits, layer III) for MP3.
    pub fn sniff(bytes: &[u8]) -> Option<UploadFormat> {
        if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
            return Some(UploadFormat::Wav);
        }
        if bytes.starts_with(b"ID3") {
            return Some(UploadFormat::Mp3);
        }
        match bytes {
            // Sync bits all set, layer bits `01` (layer III).
            [0xFF, second, ..] if second & 0xE0 == 0xE0 && second & 0x06 == 0x02 => {
                Some(UploadFormat::Mp3)
            }
            _ => None,
        }
    }
}

/// Why an upload cannot be a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UploadError {
    /// Nothing was sent.
    #[error("the file is empty: send a WAV or MP3 recording")]
    Empty,
    /// Neither a WAV nor an MP3 file.
    #[error("not a WAV or MP3 file: send a WAV (RIFF/WAVE) or MP3 recording")]
    Unrecognised,
    /// A WAV file that cannot be read.
    #[error("the WAV file cannot be used: {0}")]
    Wav(#[from] WavError),
    /// An MP3 file that cannot be decoded.
    #[error("the MP3 file cannot be decoded: {0}")]
    Mp3(String),
    /// A file whose audio has no samples.
    #[error("the file holds no audio")]
    NoAudio,
    /// Longer than [`MAX_UPLOAD_SECONDS`].
    #[error(
        "the recording is longer than {max_seconds} s (at least {seconds} s); a ringback or prompt \
         loops, so upload a shorter one"
    )]
    TooLong {
        /// How long the recording is, as far as it was decoded.
        seconds: u64,
        /// The limit.
        max_seconds: u32,
    },
}

/// Decodes an uploaded recording and converts it to 8 kHz mono. `format` is what the
/// upload said it is; `None` sniffs it from the bytes. A file said to be one format but
/// holding the other is read as what it holds.
pub fn convert_upload(bytes: &[u8], format: Option<UploadFormat>) -> Result<Audio, UploadError> {
    if bytes.is_empty() {
        return Err(UploadError::Empty);
    }
    let format = UploadFormat::sniff(bytes)
        .or(format)
        .ok_or(UploadError::Unrecognised)?;
    let samples = match format {
        UploadFormat::Wav => {
            let pcm = decode_wav(bytes, MAX_WAV_BYTES)?;
            let channels = usize::from(pcm.format.channels.max(1));
            check_length(pcm.samples.len() / channels, pcm.format.sample_rate)?;
            to_mono_8k(&pcm.samples, channels, pcm.format.sample_rate)
        }
        UploadFormat::Mp3 => decode_mp3(bytes)?,
    };
    if samples.is_empty() {
        return Err(UploadError::NoAudio);
    }
    Ok(Audio { samples })
}

/// Averages interleaved `channels` into one and resamples from `rate` to 8 kHz.
pub fn to_mono_8k(interleaved: &[i16], channels: usize, rate: u32) -> Vec<i16> {
    let mono: Vec<i16> = if channels <= 1 {
        interleaved.to_vec()
    } else {
        interleaved
            .chunks_exact(channels)
            .map(|frame| {
                let sum: i64 = frame.iter().map(|&s| i64::from(s)).sum();
                (sum / channels as i64) as i16
            })
            .collect()
    };
    resample(&mono, rate, SAMPLE_RATE)
}

/// Refuses `frames` (per channel) at `rate` longer than the limit.
fn check_length(frames: usize, rate: u32) -> Result<(), UploadError> {
    let rate = u64::from(rate.max(1));
    let frames = frames as u64;
    if frames > u64::from(MAX_UPLOAD_SECONDS) * rate {
        return Err(UploadError::TooLong {
            seconds: frames / rate,
            max_seconds: MAX_UPLOAD_SECONDS,
        });
    }
    Ok(())
}

/// Decodes an MP3 file to 8 kHz mono. A damaged frame is skipped (as players do); a
/// file in which no frame decodes is an error. Decoding stops as soon as the audio is
/// known to be too long, so a small file of very long silence costs no more than the
/// limit.
fn decode_mp3(bytes: &[u8]) -> Result<Vec<i16>, UploadError> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
    use symphonia::core::errors::Error;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let fail = |e: Error| UploadError::Mp3(e.to_string());
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(fail)?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or(UploadError::NoAudio)?;
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(fail)?;

    let mut mono: Vec<i16> = Vec::new();
    let mut rate: Option<u32> = None;
    let mut buffer: Option<SampleBuffer<i16>> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(packet) => packet,
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(Error::ResetRequired) => break,
            Err(e) => return Err(fail(e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(Error::DecodeError(_)) | Err(Error::IoError(_)) => continue,
            Err(e) => return Err(fail(e)),
        };
        let spec = *decoded.spec();
        match rate {
            None => rate = Some(spec.rate),
            Some(first) if first != spec.rate => {
                return Err(UploadError::Mp3(format!(
                    "the sample rate changes from {first} Hz to {} Hz mid-file",
                    spec.rate
                )));
            }
            Some(_) => {}
        }
        let channels = spec.channels.count().max(1);
        let needed = decoded.capacity() as u64;
        let buffer = match &mut buffer {
            Some(b) if b.capacity() as u64 >= needed * channels as u64 => b,
            slot => slot.insert(SampleBuffer::new(needed, spec)),
        };
        buffer.copy_interleaved_ref(decoded);
        mono.extend(buffer.samples().chunks_exact(channels).map(|frame| {
            let sum: i64 = frame.iter().map(|&s| i64::from(s)).sum();
            (sum / channels as i64) as i16
        }));
        check_length(mono.len(), spec.rate)?;
    }
    let Some(rate) = rate else {
        return Err(UploadError::NoAudio);
    };
    Ok(resample(&mono, rate, SAMPLE_RATE))
}

/// 8 kHz mono 16-bit PCM `samples` as a WAV file: the form uploads are stored and
/// served in (any WAV reader, a browser's included, plays it).
pub fn encode_wav_mono(samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes()); // bytes per second
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wav::{WavEncoding, read_wav};

    fn sine(frequency: f64, rate: u32, seconds: f64, amplitude: f64) -> Vec<i16> {
        let count = (f64::from(rate) * seconds) as usize;
        (0..count)
            .map(|n| {
                (amplitude
                    * (2.0 * std::f64::consts::PI * frequency * n as f64 / f64::from(rate)).sin())
                .round() as i16
            })
            .collect()
    }

    /// A 16-bit PCM WAV of interleaved `samples`.
    fn wav(samples: &[i16], channels: u16, rate: u32) -> Vec<u8> {
        let data_len = (samples.len() * 2) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2 * u32::from(channels)).to_le_bytes());
        out.extend_from_slice(&(2 * channels).to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for s in samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// The strength of `frequency` in 8 kHz `samples` (the middle half, away from the
    /// faded ends), by correlation with a sine and a cosine: an amplitude.
    fn strength(samples: &[i16], frequency: f64) -> f64 {
        let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
        let (mut re, mut im) = (0.0, 0.0);
        for (n, &s) in middle.iter().enumerate() {
            let phase = 2.0 * std::f64::consts::PI * frequency * n as f64 / 8000.0;
            re += f64::from(s) * phase.cos();
            im += f64::from(s) * phase.sin();
        }
        2.0 * (re * re + im * im).sqrt() / middle.len() as f64
    }

    fn rms(samples: &[i16]) -> f64 {
        let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
        (middle.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / middle.len() as f64).sqrt()
    }

    #[test]
    fn a_1khz_tone_at_44_1khz_stereo_stays_a_1khz_tone_at_8khz_mono() {
        let tone = sine(1000.0, 44_100, 1.0, 10_000.0);
        let stereo: Vec<i16> = tone.iter().flat_map(|&s| [s, s]).collect();
        let audio =
            convert_upload(&wav(&stereo, 2, 44_100), Some(UploadFormat::Wav)).expect("converts");
        assert_eq!(audio.samples.len(), 8000);
        let at_1k = strength(&audio.samples, 1000.0);
        assert!((at_1k - 10_000.0).abs() < 200.0, "1 kHz amplitude {at_1k}");
        // All of the energy is the tone: nothing else was made of it.
        let total = rms(&audio.samples);
        assert!((total - at_1k / 2f64.sqrt()).abs() < 100.0, "rms {total}");
    }

    #[test]
    fn a_6khz_tone_is_removed_not_folded_to_2khz() {
        let tone = sine(6000.0, 44_100, 1.0, 10_000.0);
        let audio = convert_upload(&wav(&tone, 1, 44_100), None).expect("converts");
        // Dropping samples would leave a 2 kHz whistle of the same strength.
        assert!(strength(&audio.samples, 2000.0) < 10.0);
        assert!(rms(&audio.samples) < 10.0, "rms {}", rms(&audio.samples));
    }

    #[test]
    fn stereo_channels_are_averaged() {
        let left = sine(500.0, 16_000, 0.5, 8000.0);
        let stereo: Vec<i16> = left.iter().flat_map(|&s| [s, 0]).collect();
        let audio = convert_upload(&wav(&stereo, 2, 16_000), None).expect("converts");
        let at_500 = strength(&audio.samples, 500.0);
        assert!((at_500 - 4000.0).abs() < 100.0, "{at_500}");
    }

    #[test]
    fn the_stored_form_reads_back_as_the_same_samples() {
        let samples = sine(440.0, 8000, 0.3, 12_000.0);
        let bytes = encode_wav_mono(&samples);
        let format = decode_wav(&bytes, usize::MAX).expect("valid").format;
        assert_eq!(
            (format.encoding, format.channels, format.sample_rate),
            (WavEncoding::Pcm16, 1, 8000)
        );
        assert_eq!(read_wav(&bytes).expect("valid").samples, samples);
        // Converting the stored form again changes nothing.
        assert_eq!(
            convert_upload(&bytes, None).expect("converts").samples,
            samples
        );
    }

    #[test]
    fn garbage_empty_and_silent_files_are_refused_with_a_reason() {
        assert_eq!(convert_upload(&[], None), Err(UploadError::Empty));
        assert_eq!(
            convert_upload(b"hello, this is not audio", None),
            Err(UploadError::Unrecognised)
        );
        assert_eq!(
            convert_upload(b"hello, this is not audio", Some(UploadFormat::Wav)),
            Err(UploadError::Wav(WavError::NotWave))
        );
        assert!(matches!(
            convert_upload(b"\xFF\xFBnot really an mp3 frame at all", None),
            Err(UploadError::Mp3(_) | UploadError::NoAudio)
        ));
        assert!(matches!(
            convert_upload(b"plain text", Some(UploadFormat::Mp3)),
            Err(UploadError::Mp3(_) | UploadError::NoAudio)
        ));
        assert_eq!(
            convert_upload(&wav(&[], 1, 8000), None),
            Err(UploadError::NoAudio)
        );
        let truncated = &wav(&[1; 100], 1, 8000)[..60];
        assert!(matches!(
            convert_upload(truncated, None),
            Err(UploadError::Wav(WavError::Truncated { .. }))
        ));
    }

    #[test]
    fn more_than_ten_minutes_is_refused() {
        let frames = (MAX_UPLOAD_SECONDS as usize + 1) * 4000;
        let long = wav(&vec![0; frames], 1, 4000);
        assert_eq!(
            convert_upload(&long, None),
            Err(UploadError::TooLong {
                seconds: 601,
                max_seconds: MAX_UPLOAD_SECONDS
            })
        );
        assert!(check_length(MAX_UPLOAD_SECONDS as usize * 4000, 4000).is_ok());
        assert!(check_length(MAX_UPLOAD_SECONDS as usize * 4000 + 1, 4000).is_err());
    }

    /// `tests/fixtures/tone-1khz-1s.mp3` (how it was made: tests/fixtures/README.md).
    const MP3_TONE: &[u8] = include_bytes!("../../../tests/fixtures/tone-1khz-1s.mp3");

    #[test]
    fn an_mp3_of_a_1khz_tone_at_22khz_stereo_becomes_a_1khz_tone_at_8khz_mono() {
        assert_eq!(UploadFormat::sniff(MP3_TONE), Some(UploadFormat::Mp3));
        let audio = convert_upload(MP3_TONE, Some(UploadFormat::Mp3)).expect("decodes");
        // One second, give or take the encoder's padding frames.
        let seconds = audio.samples.len() as f64 / 8000.0;
        assert!((1.0..1.2).contains(&seconds), "{seconds} s");
        // Half scale (the lossy encoding keeps it within a few per cent).
        let at_1k = strength(&audio.samples, 1000.0);
        assert!((at_1k - 16_384.0).abs() < 1500.0, "1 kHz amplitude {at_1k}");
        assert!(strength(&audio.samples, 3000.0) < 300.0);
    }

    #[test]
    fn media_types_and_sniffing() {
        for (media_type, format) in [
            ("audio/wav", Some(UploadFormat::Wav)),
            ("audio/x-wav", Some(UploadFormat::Wav)),
            ("Audio/WAV; codecs=1", Some(UploadFormat::Wav)),
            ("audio/mpeg", Some(UploadFormat::Mp3)),
            ("application/json", None),
            ("application/octet-stream", None),
        ] {
            assert_eq!(
                UploadFormat::from_media_type(media_type),
                format,
                "{media_type}"
            );
        }
        assert_eq!(
            UploadFormat::sniff(&wav(&[0; 4], 1, 8000)),
            Some(UploadFormat::Wav)
        );
        assert_eq!(UploadFormat::sniff(b"ID3\x04\0"), Some(UploadFormat::Mp3));
        assert_eq!(
            UploadFormat::sniff(&[0xFF, 0xFB, 0x90]),
            Some(UploadFormat::Mp3)
        );
        assert_eq!(UploadFormat::sniff(&[0xFF, 0xFD, 0x90]), None, "layer II");
        assert_eq!(UploadFormat::sniff(b"{\"name\":1}"), None);
    }
}
